"""Pruning early in training: any scorer applied at training step k instead of at step 0.

:func:`prune_early` trains the dense model (level 0, keeping θk and the optimizer state at
step k), scores θk with any registered method (``magnitude``, ``random``, ``snip``, ``grasp``,
``synflow``, or your own) through :func:`tfprune.compute_masks`, and continues training the
pruned network from θk, step k to step T (level 1), not from θ0. With ``prune_step=0`` it is
pruning at initialization. Same run-directory format and resumability as
:class:`tfprune.lottery.LotteryTicket`.
"""
from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np

from tfprune.allocation import check_sparsity
from tfprune.api import compute_masks
from tfprune.lottery._data import EvalData, TrainData, _digest
from tfprune.lottery._engine import Engine
from tfprune.lottery.masks import invert_keep
from tfprune.lottery.results import RunResults
from tfprune.lottery.run import SCOPES, _check_int, _steps, load_results
from tfprune.scoring import get_scorer

__all__ = ["prune_early"]


class _EarlySetup:
    """Argument checks and the dense phase shared by :func:`prune_early` and the sanity checks."""

    def __init__(self, train_data, validation_data, *, method, sparsity, prune_step, epochs, steps, batch_size,
                 steps_per_epoch, validation_batch_size, scope, score_data, score_loss, method_options,
                 train_dense, reset_optimizer):
        get_scorer(method)  # clear error for an unknown method
        self.method = method
        self.sparsity = check_sparsity(sparsity)
        if scope not in SCOPES:
            raise ValueError(f"scope: got {scope!r}; allowed: {', '.join(map(repr, SCOPES))}.")
        self.scope = scope
        self.train = TrainData(train_data, batch_size, steps_per_epoch)
        self.val = EvalData(validation_data, validation_batch_size or batch_size)
        self.total_steps = _steps(epochs, steps, self.train.steps_per_epoch, "epochs", "steps")
        self.prune_step = _check_int(prune_step, "prune_step", 0)
        if self.prune_step >= self.total_steps:
            raise ValueError(f"prune_step: got {prune_step}; allowed: an integer step in [0, {self.total_steps}), "
                             f"smaller than the training length ({self.total_steps} steps).")
        self.score_data = score_data if score_data is not None else (
            self.train.head(batch_size) if get_scorer(method).needs_data else None)
        self.score_loss = score_loss
        self.method_options = dict(method_options or {})
        self.train_dense = bool(train_dense)
        self.reset_optimizer = bool(reset_optimizer)

    def settings(self) -> dict:
        data = self.score_data
        if isinstance(data, (tuple, list)) and len(data) == 2:
            data = [_digest(np.asarray(data[0])), _digest(np.asarray(data[1]))]
        elif data is not None:
            data = repr(getattr(data, "element_spec", type(data).__name__))
        return {"method": self.method, "sparsity": self.sparsity, "prune_step": self.prune_step,
                "total_steps": self.total_steps, "scope": self.scope, "score_data": data,
                "score_loss": self.score_loss if isinstance(self.score_loss, (str, type(None))) else repr(self.score_loss),
                "method_options": self.method_options, "train_dense": self.train_dense,
                "reset_optimizer": self.reset_optimizer}

    def dense_phase(self, engine: Engine) -> dict:
        """Level 0: dense training to T (or only to k), capturing θk and the optimizer at k."""
        end = self.total_steps if self.train_dense else self.prune_step
        return engine.train_phase("level_0", {}, lambda: (engine.init_weights, None), 0, end, level=0,
                                  capture_step=self.prune_step)

    def rewind_point(self, engine: Engine):
        return engine.load_rewind_point("level_0")

    def masks(self, engine: Engine, method: str, seed: int, invert: bool = False):
        """Scores θk with ``method`` through the core and returns the masks (``invert``: the
        other end of the ranking is kept — for GraSP the highest scores)."""
        weights, _ = self.rewind_point(engine)
        engine.set_masks({})
        engine.set_weights(weights)
        keep = invert_keep(get_scorer(method).keep) if invert else None
        return compute_masks(engine.model, method, self.sparsity, data=self.score_data, loss=self.score_loss,
                             scope=self.scope, seed=seed, keep=keep, **self.method_options)


_SETUP_ARGS = ("method", "sparsity", "prune_step", "epochs", "steps", "batch_size", "steps_per_epoch",
               "validation_batch_size", "scope", "score_data", "score_loss", "method_options", "train_dense",
               "reset_optimizer")
_ENGINE_ARGS = ("run_dir", "compile_fn", "optimizer", "loss", "metrics", "seed", "callbacks", "verbose",
                "continue_lr_schedule", "deterministic")


def build_setup_and_engine(model, train_data, validation_data, args: Mapping):
    """The checked setup and the training engine of a prune-early run (shared with the sanity
    checks); ``args`` holds the public function's keyword arguments by name."""
    setup = _EarlySetup(train_data, validation_data, **{k: args[k] for k in _SETUP_ARGS})
    engine = Engine(model, setup.train, setup.val, **{k: args[k] for k in _ENGINE_ARGS})
    return setup, engine


def prune_early(model, train_data, validation_data=None, *, method: str, sparsity: float, prune_step: int,
                run_dir, epochs: "int | None" = None, steps: "int | None" = None, batch_size: int = 32,
                steps_per_epoch: "int | None" = None, validation_batch_size: "int | None" = None,
                scope: str = "global", score_data=None, score_loss=None,
                method_options: "Mapping | None" = None, train_dense: bool = True, reset_optimizer: bool = False,
                optimizer="adam", loss=None, metrics: Sequence = ("accuracy",), compile_fn=None,
                callbacks: Sequence = (), seed: "int | None" = None, verbose: int = 0,
                continue_lr_schedule: bool = False, deterministic: bool = False) -> RunResults:
    """Prunes with ``method`` after ``prune_step`` training steps and keeps training from there.

    Args:
        model, train_data, validation_data, run_dir, batching, compile settings, callbacks,
            seed, verbose, deterministic: as for :class:`tfprune.lottery.LotteryTicket`.
        method: a registered scorer (``magnitude``, ``random``, ``snip``, ``grasp``,
            ``synflow``, ...); its own settings (SynFlow's 100 rounds, GraSP keeping the lowest
            scores) apply.
        sparsity: target sparsity of the pruned network, in [0, 1).
        prune_step: k, the training step at which the weights are scored (0 = at init).
        epochs / steps: T, the total training length (exactly one); the pruned network trains
            steps k..T.
        score_data, score_loss: data (``(x, y)`` or a dataset) and loss for SNIP/GraSP; default
            the first ``batch_size`` training examples and the compiled loss.
        method_options: options of the method (``temperature`` for GraSP, ...).
        train_dense: also train the dense network to T (level 0, the reference); if False
            level 0 stops at step k.
        reset_optimizer: start the pruned training with a new optimizer instead of the
            optimizer state at step k.

    Returns:
        :class:`RunResults` with ``level_0`` (dense) and ``level_1`` (pruned at step k).

    Example:
        >>> res = prune_early(build, (x, y), (xv, yv), method="snip", sparsity=0.9, prune_step=200,
        ...                   epochs=5, run_dir="runs/snip_k200", loss="sparse_categorical_crossentropy")
        >>> print(res)
    """
    setup, engine = build_setup_and_engine(model, train_data, validation_data, locals())
    engine.open("early", setup.settings())
    try:
        rows = [setup.dense_phase(engine)]
        engine.write_summary(rows, complete=False)
        if not engine.is_complete("level_1"):
            if os.path.exists(engine.path("level_1", "mask.npz")):
                masks = engine.load_masks("level_1")
            else:
                masks = setup.masks(engine, method, seed=engine.seed)

            def start():
                weights, optimizer_state = setup.rewind_point(engine)
                return weights, (None if setup.reset_optimizer else optimizer_state)

            rows.append(engine.train_phase("level_1", masks, start, setup.prune_step, setup.total_steps, level=1,
                                           info={"method": method, "prune_step": setup.prune_step}))
        else:
            rows.append(engine.load_metrics("level_1"))
        engine.write_summary(rows, complete=True, extra={"title": f"{method} at step {setup.prune_step}"})
    finally:
        engine.close()
    results = load_results(run_dir)
    return RunResults(results.rows, title=f"Pruning with {method} at step {setup.prune_step} "
                                          f"(sparsity {setup.sparsity})")
