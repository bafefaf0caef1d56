"""Pruning early in training: any scorer applied at training step k instead of at step 0.

:func:`prune_early` trains the dense model (level 0, keeping θk and the optimizer state at
step k), scores θk with any registered method (``magnitude``, ``random``, ``snip``, ``grasp``,
``synflow``, or your own) through :func:`tfprune.compute_masks`, and continues training the
pruned network from θk, step k to step T (level 1), not from θ0. With ``prune_step=0`` it is
pruning at initialization. Same run-directory format and resumability as
:class:`tfprune.lottery.LotteryTicket`.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Any, Mapping

import numpy as np

from tfprune import checks
from tfprune.allocation import check_sparsity
from tfprune.api import compute_masks
from tfprune.lottery._data import _digest, data_for
from tfprune.lottery._engine import Engine
from tfprune.lottery.masks import SCOPES, invert_keep
from tfprune.lottery.results import RunResults, load_results
from tfprune.scoring import get_scorer
from tfprune.spec import TrainingSpec

__all__ = ["EarlySettings", "prune_early"]


@dataclasses.dataclass(frozen=True)
class EarlySettings:
    """What to prune and when, for :func:`prune_early` and :func:`tfprune.lottery.sanity_checks`
    (checked when made; the arguments of those functions, see there)."""

    method: str
    sparsity: float
    prune_step: int = 0
    scope: str = "global"
    score_data: Any = None
    score_loss: Any = None
    method_options: "Mapping | None" = None
    train_dense: bool = True
    reset_optimizer: bool = False

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        get_scorer(self.method)  # clear error for an unknown method
        set_("sparsity", check_sparsity(self.sparsity))
        set_("prune_step", checks.integer(self.prune_step, "prune_step", 0))
        checks.choice(self.scope, "scope", SCOPES)
        set_("method_options", dict(self.method_options or {}))
        set_("train_dense", bool(self.train_dense))
        set_("reset_optimizer", bool(self.reset_optimizer))


class _EarlySetup:
    """The data, the length and the dense phase shared by :func:`prune_early` and the sanity
    checks."""

    def __init__(self, train_data, validation_data, training: TrainingSpec, settings: EarlySettings):
        self.train, self.val = data_for(train_data, validation_data, training)
        self.total_steps = training.total_steps(self.train.steps_per_epoch, epochs_name="training.epochs",
                                                steps_name="training.steps")
        self.prune_step = settings.prune_step
        if self.prune_step >= self.total_steps:
            raise ValueError(f"prune_step: got {self.prune_step}; allowed: an integer step in [0, {self.total_steps}), "
                             f"smaller than the training length ({self.total_steps} steps).")
        self.score_data = settings.score_data if settings.score_data is not None else (
            self.train.head(training.batch_size) if get_scorer(settings.method).needs_data else None)
        self.settings = settings

    def config(self) -> dict:
        """The settings as ``config.json`` records them."""
        s, data = self.settings, self.score_data
        if isinstance(data, (tuple, list)) and len(data) == 2:
            data = [_digest(np.asarray(data[0])), _digest(np.asarray(data[1]))]
        elif data is not None:
            data = repr(getattr(data, "element_spec", type(data).__name__))
        return {"method": s.method, "sparsity": s.sparsity, "prune_step": self.prune_step,
                "total_steps": self.total_steps, "scope": s.scope, "score_data": data,
                "score_loss": s.score_loss if isinstance(s.score_loss, (str, type(None))) else repr(s.score_loss),
                "method_options": s.method_options, "train_dense": s.train_dense,
                "reset_optimizer": s.reset_optimizer}

    def dense_phase(self, engine: Engine) -> dict:
        """Level 0: dense training to T (or only to k), capturing θk and the optimizer at k."""
        end = self.total_steps if self.settings.train_dense else self.prune_step
        return engine.train_phase("level_0", {}, lambda: (engine.init_weights, None), 0, end, level=0,
                                  capture_step=self.prune_step)

    def rewind_point(self, engine: Engine):
        return engine.load_rewind_point("level_0")

    def masks(self, engine: Engine, seed: int, invert: bool = False):
        """Scores θk with the method through the core and returns the masks (``invert``: the
        other end of the ranking is kept — for GraSP the highest scores)."""
        s = self.settings
        weights, _ = self.rewind_point(engine)
        engine.set_masks({})
        engine.set_weights(weights)
        keep = invert_keep(get_scorer(s.method).keep) if invert else None
        return compute_masks(engine.model, s.method, s.sparsity, data=self.score_data, loss=s.score_loss,
                             scope=s.scope, seed=seed, keep=keep, **s.method_options)


def prune_early(model, train_data, validation_data=None, *, training: TrainingSpec, run_dir, method: str,
                sparsity: float, prune_step: int, scope: str = "global", score_data=None, score_loss=None,
                method_options: "Mapping | None" = None, train_dense: bool = True,
                reset_optimizer: bool = False) -> RunResults:
    """Prunes with ``method`` after ``prune_step`` training steps and keeps training from there.

    Args:
        model, train_data, validation_data, run_dir: as for :class:`tfprune.lottery.LotteryTicket`.
        training: a :class:`tfprune.spec.TrainingSpec`; its ``epochs``/``steps`` is T, the total
            training length (required); the pruned network trains steps k..T.
        method: a registered scorer (``magnitude``, ``random``, ``snip``, ``grasp``,
            ``synflow``, ...); its own settings (SynFlow's 100 rounds, GraSP keeping the lowest
            scores) apply.
        sparsity: target sparsity of the pruned network, in [0, 1).
        prune_step: k, the training step at which the weights are scored (0 = at init).
        score_data, score_loss: data (``(x, y)`` or a dataset) and loss for SNIP/GraSP; default
            the first ``training.batch_size`` training examples and the compiled loss.
        method_options: options of the method (``temperature`` for GraSP, ...).
        train_dense: also train the dense network to T (level 0, the reference); if False
            level 0 stops at step k.
        reset_optimizer: start the pruned training with a new optimizer instead of the
            optimizer state at step k.

    Returns:
        :class:`RunResults` with ``level_0`` (dense) and ``level_1`` (pruned at step k).

    Example:

        >>> res = prune_early(build_lenet, (x, y), (x_val, y_val), method="snip", sparsity=0.9, prune_step=2,
        ...                   run_dir="runs/snip_k2",
        ...                   training=TrainingSpec(loss=loss, epochs=2, batch_size=32, seed=0, verbose=0))
        >>> [(r.name, r.start_step, r.end_step) for r in res]   # print(res): the table
        [('level_0', 0, 6), ('level_1', 2, 6)]
    """
    settings = EarlySettings(method=method, sparsity=sparsity, prune_step=prune_step, scope=scope,
                             score_data=score_data, score_loss=score_loss, method_options=method_options,
                             train_dense=train_dense, reset_optimizer=reset_optimizer)
    setup = _EarlySetup(train_data, validation_data, training, settings)
    engine = Engine(model, setup.train, setup.val, run_dir=run_dir, training=training)
    extra = {"title": f"{method} at step {setup.prune_step}"}
    try:
        done = engine.prepare("early", setup.config()).finished(["level_0", "level_1"])
        if done is not None:  # nothing to train: no lock, no write unless the summary is stale
            engine.write_summary(done, complete=True, extra=extra, best_effort=True)
            engine.barrier()
            return RunResults(load_results(run_dir).rows, title=f"Pruning with {method} at step "
                                                                f"{setup.prune_step} (sparsity {settings.sparsity})")
        engine.open("early", setup.config())
        rows = [setup.dense_phase(engine)]
        engine.write_summary(rows, complete=False)
        if not engine.is_complete("level_1"):
            if os.path.exists(engine.path("level_1", "mask.npz")):
                masks = engine.load_masks("level_1")
            else:
                masks = setup.masks(engine, seed=engine.seed)

            def start():
                weights, optimizer_state = setup.rewind_point(engine)
                return weights, (None if settings.reset_optimizer else optimizer_state)

            rows.append(engine.train_phase("level_1", masks, start, setup.prune_step, setup.total_steps, level=1,
                                           info={"method": method, "prune_step": setup.prune_step}))
        else:
            rows.append(engine.load_metrics("level_1"))
        engine.write_summary(rows, complete=True, extra=extra)
        engine.barrier()  # (multi-worker: the chief's files are complete before anyone reads them)
    finally:
        engine.close()
    return RunResults(load_results(run_dir).rows, title=f"Pruning with {method} at step {setup.prune_step} "
                                                        f"(sparsity {settings.sparsity})")
