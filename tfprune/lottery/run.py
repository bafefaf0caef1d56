"""Iterative magnitude pruning: lottery tickets with rewinding, and the prune → fine-tune baselines.

:class:`LotteryTicket` runs OpenLTH's procedure (Frankle & Carbin 2019; Frankle et al. 2020):

* level 0 trains the dense model for ``T`` steps (from θ0), saving θk at ``rewind_step`` k;
* level n ≥ 1 prunes ``prune_fraction`` of the weights that survived level n-1, ranked by the
  global magnitude of level n-1's *trained* weights (optionally some layers at their own rate,
  e.g. the output layer at half rate as in the LTH paper), rewinds the survivors to θk
  (``rewind_step=0``: back to θ0, the original LTH), recreates the optimizer and trains from
  step k to step T again, on the same data order.

``strategy="finetune"`` is the classic baseline Train–(Prune–Finetune)ⁿ: the survivors keep
their trained values and are fine-tuned for ``finetune_steps`` with a new optimizer;
:func:`magnitude_after_training` is its one-shot form (prune once to a sparsity, fine-tune).

Every level is written to ``run_dir/level_<n>/`` (see :mod:`tfprune.lottery._engine` for the
files) and the run resumes where it stopped when called again with the same arguments. A
finished run is returned without the lock or any write (it may lie on read-only media).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Mapping

import numpy as np

from tfprune import checks
from tfprune.lottery import _files, _kit, _state
from tfprune.lottery._data import data_for
from tfprune.lottery._engine import Engine
from tfprune.lottery.criterion import Criterion
from tfprune.lottery.masks import (SCOPES, check_layer_fractions, check_prune_fraction, check_target_sparsity,
                                   levels_for_sparsity, prune_level)
from tfprune.lottery.results import RunResults, load_results
from tfprune.lottery.ticket import apply_ticket, ticket_from_arrays
from tfprune.spec import TrainingSpec

__all__ = ["LevelPlan", "LotteryTicket", "lottery_ticket", "magnitude_after_training", "prune_finetune"]

STRATEGIES = ("rewind", "finetune")


@dataclasses.dataclass(frozen=True)
class LevelPlan:
    """The checked settings of a :class:`LotteryTicket` run, lengths in steps (``config.json``
    records them: :meth:`config`)."""

    strategy: str
    prune_fraction: float
    levels: "int | None"
    target_sparsity: "float | None"
    rewind_step: int
    layer_prune_fractions: dict
    scope: str
    steps_per_level: int
    finetune_steps: "int | None"

    def config(self) -> dict:
        return dataclasses.asdict(self)

    def level_range(self, level: int) -> "tuple[int, int]":
        """The global steps ``(first, last)`` level ``level`` trains."""
        if level == 0:
            return 0, self.steps_per_level
        if self.strategy == "rewind":
            return self.rewind_step, self.steps_per_level
        return 0, self.finetune_steps


def _finetune_length(epochs, steps, steps_per_epoch: int, default: int) -> int:
    if epochs is not None and steps is not None:
        raise ValueError(f"finetune_epochs/finetune_steps: got both ({epochs!r}, {steps!r}); allowed: at most one.")
    if epochs is not None:
        return checks.integer(epochs, "finetune_epochs", 0) * steps_per_epoch
    if steps is not None:
        return checks.integer(steps, "finetune_steps", 0)
    return default


def _plan(training: TrainingSpec, steps_per_epoch: int, *, strategy, prune_fraction, levels, target_sparsity,
          rewind_step, layer_prune_fractions, scope, finetune_epochs, finetune_steps) -> LevelPlan:
    checks.choice(strategy, "strategy", STRATEGIES)
    checks.choice(scope, "scope", SCOPES)
    prune_fraction = check_prune_fraction(prune_fraction)
    if (levels is None) == (target_sparsity is None):
        raise ValueError(f"levels/target_sparsity: got levels={levels!r}, target_sparsity={target_sparsity!r}; "
                         "allowed: exactly one of them (a number of pruning levels, or a sparsity to reach).")
    levels = None if levels is None else checks.integer(levels, "levels", 1)
    target_sparsity = None if target_sparsity is None else check_target_sparsity(target_sparsity)
    per_level = training.total_steps(steps_per_epoch, epochs_name="training.epochs", steps_name="training.steps")
    rewind = checks.integer(rewind_step, "rewind_step", 0)
    if strategy == "rewind" and rewind >= per_level:
        length = (f"{training.epochs} epochs x {steps_per_epoch} steps" if training.epochs is not None
                  else "training.steps")
        raise ValueError(f"rewind_step: got {rewind_step}; allowed: an integer step in [0, {per_level}), smaller "
                         f"than the steps per level ({per_level} = {length}).")
    if strategy == "finetune":
        if rewind:
            raise ValueError(f"rewind_step: got {rewind_step}; allowed: 0 with strategy='finetune' (fine-tuning "
                             "continues from the trained weights, nothing is rewound).")
        finetune = _finetune_length(finetune_epochs, finetune_steps, steps_per_epoch, per_level)
    elif finetune_epochs is not None or finetune_steps is not None:
        raise ValueError(f"finetune_epochs/finetune_steps: got ({finetune_epochs!r}, {finetune_steps!r}); allowed: "
                         "None with strategy='rewind' (every level trains from the rewind step to the level length).")
    else:
        finetune = None
    return LevelPlan(strategy=strategy, prune_fraction=prune_fraction, levels=levels, target_sparsity=target_sparsity,
                     rewind_step=rewind, layer_prune_fractions=dict(layer_prune_fractions or {}), scope=scope,
                     steps_per_level=per_level, finetune_steps=finetune)


class LotteryTicket:
    """Iterative magnitude pruning with rewinding (lottery tickets), resumable.

    Args:
        model: a built tf_keras Sequential/Functional model or a built Keras 3 model, on any
            backend (its current weights are θ0; it is cloned, never modified), or a
            zero-argument function returning one (called after seeding, so θ0 is reproducible).
            Both Keras write the same run directory (:mod:`tfprune.lottery._kit`).
        train_data: ``(x, y)`` arrays (shuffled per epoch from the seed; exact resume), a
            batched finite ``tf.data.Dataset`` (iterated as is: it must give the same order at
            every iteration for an exact resume), or a callable ``epoch -> Dataset``.
        validation_data: ``(x, y)`` arrays or a batched dataset, evaluated after every epoch.
        training: a :class:`tfprune.spec.TrainingSpec`: optimizer (a new one per level), loss,
            metrics or ``compile_fn``, batching, callbacks (one ``fit`` call per epoch; the pruning
            step callback is added; their state is not checkpointed), seed (None draws one and
            stores it in run_dir), verbose, ``continue_lr_schedule`` (give the recreated optimizer
            ``iterations = rewind_step``; Keras' Adam also uses this counter for bias correction,
            so leave it False with Adam), ``deterministic`` (TF op determinism while the run
            trains: a resumed run is bit-identical to an uninterrupted one). Its ``epochs`` or
            ``steps`` is T, the length of level 0 (required).
        run_dir: directory of the run (created; a finished or partial run of the same
            configuration is continued; another configuration is refused).
        prune_fraction: fraction of the *remaining* weights pruned per level, in (0, 1).
        levels: number of pruning levels after the dense level 0; or
        target_sparsity: prune until this sparsity is reached (exactly one of the two).
        rewind_step: k, the training step whose weights the survivors are reset to
            (0 = θ0, the original LTH; Frankle et al. 2020 use a small k for deep nets); must
            be smaller than T. Levels ≥ 1 train from step k to step T.
        strategy: ``"rewind"`` (lottery tickets) or ``"finetune"`` (Train–(Prune–Finetune)ⁿ:
            survivors keep their trained values and are fine-tuned ``finetune_steps``).
        layer_prune_fractions: ``{layer: fraction}`` for layers pruned layerwise at their own
            rate (``{"output": prune_fraction / 2}`` as in the LTH paper; 0 keeps it dense).
        scope: ``"global"`` (default, OpenLTH) or ``"layerwise"`` magnitude ranking of the
            other layers.
        finetune_epochs / finetune_steps: fine-tuning per level for ``strategy="finetune"``
            (default T; 0 = prune without fine-tuning, evaluate only).
        criterion: what each level ranks the surviving weights by, a
            :class:`tfprune.lottery.Criterion` (default: global magnitude of the trained weights;
            ``Criterion("obd", data=(x, y))``: Optimal Brain Damage). Part of the run's identity.

    Density: each level keeps ``round(N · (1 - p)^n)`` of the N jointly ranked weights (to one
    weight, no accumulated rounding; per layer with ``scope="layerwise"`` or a layer rate).

    Example (``build_lenet`` returns a small tf_keras model with logit outputs):

        >>> training = TrainingSpec(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...                         epochs=1, batch_size=32, seed=0, verbose=0)
        >>> lt = LotteryTicket(build_lenet, (x, y), (x_val, y_val), training=training, run_dir="runs/lenet",
        ...                    prune_fraction=0.5, target_sparsity=0.75)
        >>> results = lt.run()        # call again after a crash: it continues
        >>> [(r.level, r.sparsity) for r in results]   # print(results): the table, * = best
        [(0, 0.0), (1, 0.5), (2, 0.75)]
        >>> ticket = lt.masks(level=results.best.level)
        >>> lt.run() == results       # finished: nothing is trained again
        True
    """

    def __init__(self, model, train_data, validation_data=None, *, training: TrainingSpec, run_dir,
                 prune_fraction: float = 0.2, levels: "int | None" = None, target_sparsity: "float | None" = None,
                 rewind_step: int = 0, strategy: str = "rewind",
                 layer_prune_fractions: "Mapping[str, float] | None" = None, scope: str = "global",
                 finetune_epochs: "int | None" = None, finetune_steps: "int | None" = None,
                 criterion: "Criterion | None" = None):
        if criterion is not None and not isinstance(criterion, Criterion):
            raise TypeError(f"criterion: expected a tfprune.lottery.Criterion, got {type(criterion).__name__}.")
        self.criterion = criterion or Criterion()
        self.train, self.val = data_for(train_data, validation_data, training)
        self.training = training
        self.plan = _plan(training, self.train.steps_per_epoch, strategy=strategy, prune_fraction=prune_fraction,
                          levels=levels, target_sparsity=target_sparsity, rewind_step=rewind_step,
                          layer_prune_fractions=layer_prune_fractions, scope=scope,
                          finetune_epochs=finetune_epochs, finetune_steps=finetune_steps)
        self.run_dir = os.fspath(run_dir)
        self._model = model
        self.num_levels = self.plan.levels  # known after run() when target_sparsity is given

    # -------------------------------------------------------------------------------------

    def run(self) -> RunResults:
        """Trains every level not yet complete in run_dir; returns :meth:`results`."""
        plan = self.plan
        engine = Engine(self._model, self.train, self.val, run_dir=self.run_dir, training=self.training)
        try:
            engine.prepare("lottery", self.config())
            fractions = check_layer_fractions(plan.layer_prune_fractions, engine.prunable)
            if plan.levels is None:
                sizes = {n: int(np.prod(k.shape)) for n, k in engine.kit.prunable_kernels(engine.model).items()}
                self.num_levels = levels_for_sparsity(plan.target_sparsity, plan.prune_fraction, sizes, fractions)
            names = [f"level_{n}" for n in range(self.num_levels + 1)]
            done = engine.finished(names)
            if done is not None:  # nothing to train: no lock, no write unless the summary is stale
                engine.write_summary(done, complete=True, best_effort=True)
                engine.barrier()
                return self.results()
            engine.open("lottery", self.config())
            capture = plan.rewind_step if plan.strategy == "rewind" else None
            rows = [engine.train_phase("level_0", {}, lambda: (engine.init_weights, None), *plan.level_range(0),
                                       level=0, capture_step=capture)]
            engine.write_summary(rows, complete=self.num_levels == 0)
            for level in range(1, self.num_levels + 1):
                rows.append(self._train_level(engine, level, fractions))
                engine.write_summary(rows, complete=level == self.num_levels)
            engine.barrier()  # (multi-worker: the chief's files are complete before anyone reads them)
        finally:
            engine.close()
        return self.results()

    def _train_level(self, engine: Engine, level: int, fractions) -> dict:
        plan = self.plan
        name, previous_name = f"level_{level}", f"level_{level - 1}"
        if engine.is_complete(name):
            return engine.load_metrics(name)
        if os.path.exists(engine.path(name, "mask.npz")):
            masks = engine.load_masks(name)
        else:
            previous = engine.load_masks(previous_name)
            engine.set_masks(previous)
            engine.set_weights(engine.load_weights(engine.path(previous_name, "trained_weights.npz")))
            scores = self.criterion.scores(engine.model, previous, self.training.loss)
            masks = prune_level(scores, previous, level, plan.prune_fraction, layer_fractions=fractions,
                                scope=plan.scope, keep=self.criterion.keep)
        if plan.strategy == "rewind":
            def start():
                weights, _ = engine.load_rewind_point("level_0")
                return weights, None
        else:
            def start():
                return engine.load_weights(engine.path(previous_name, "trained_weights.npz")), None
        return engine.train_phase(name, masks, start, *plan.level_range(level), level=level,
                                  info={"strategy": plan.strategy, "prune_fraction": plan.prune_fraction})

    def config(self) -> dict:
        """The run's identity in ``config.json``: the level plan and the criterion."""
        return {**self.plan.config(), **self.criterion.config()}

    # -- accessors -------------------------------------------------------------------------

    def results(self) -> RunResults:
        """The completed levels in run_dir (also of a run still in progress)."""
        results = load_results(self.run_dir)
        plan = self.plan
        title = (f"Lottery ticket ({plan.strategy}, rewind_step={plan.rewind_step}, prune_fraction="
                 f"{plan.prune_fraction})" if plan.strategy == "rewind" else
                 f"Train-(Prune-Finetune)^n (prune_fraction={plan.prune_fraction}, "
                 f"finetune_steps={plan.finetune_steps}, criterion={self.criterion.method})")
        return RunResults(results.rows, title=title)

    def summary(self) -> str:
        """The results table as text."""
        return self.results().table()

    def _level_dir(self, level: int) -> str:
        if level < 0:
            done = [r.level for r in load_results(self.run_dir).rows]
            if not done:
                raise ValueError(f"level: run_dir {self.run_dir!r} has no completed level yet.")
            level = done[level]
        path = os.path.join(self.run_dir, f"level_{level}")
        if not os.path.exists(os.path.join(path, "mask.npz")):
            raise ValueError(f"level: got {level!r}; run_dir {self.run_dir!r} has no level {level} (yet).")
        return path

    def _ticket(self, directory: str):
        path = os.path.join(directory, "mask.npz")
        return ticket_from_arrays(_files.read_npz(path), path)

    def masks(self, level: int = -1) -> "dict[str, np.ndarray]":
        """The masks of ``level`` (negative: counted from the last completed level)."""
        return self._ticket(self._level_dir(level)).masks

    def ticket_path(self, level: int = -1) -> str:
        """The ticket file (``mask.npz``) of ``level``, for :func:`tfprune.lottery.apply_ticket`."""
        return os.path.join(self._level_dir(level), "mask.npz")

    def model(self, level: int = -1, weights: str = "trained"):
        """A new wrapped model with the masks of ``level`` and its ``"trained"`` or ``"rewind"``
        (start-of-training) weights. Not compiled."""
        if weights not in ("trained", "rewind"):
            raise ValueError(f"weights: got {weights!r}; allowed: 'trained', 'rewind'.")
        directory = self._level_dir(level)
        source = self._model
        plain = _kit.kit_for(source).clone(source) if _kit.is_model(source) else source()
        names = [name for name, _ in _kit.kit_for(plain).top_layers(plain)]
        stored = _files.read_json(os.path.join(self.run_dir, "config.json")).get("layer_names", names)
        rename = {a: b for a, b in zip(stored, names) if a != b}
        pruned = apply_ticket(plain, self._ticket(directory), match="order" if rename else "name")
        _state.set_layer_weights(pruned, _files.read_npz(os.path.join(directory, f"{weights}_weights.npz")),
                                 rename=rename)
        return pruned


def lottery_ticket(model, train_data, validation_data=None, *, training: TrainingSpec, run_dir,
                   prune_fraction: float = 0.2, levels: "int | None" = None, target_sparsity: "float | None" = None,
                   rewind_step: int = 0, layer_prune_fractions: "Mapping[str, float] | None" = None,
                   scope: str = "global") -> RunResults:
    """Lottery tickets with rewinding in one call: ``LotteryTicket(...).run()`` (same arguments).

    Example:

        >>> results = lottery_ticket(build_lenet, (x, y), (x_val, y_val), run_dir="runs/lt", levels=2, rewind_step=1,
        ...                          training=TrainingSpec(loss=loss, epochs=1, batch_size=32, seed=0, verbose=0))
        >>> [(r.level, r.start_step, r.end_step) for r in results]   # levels >= 1 train from step 1
        [(0, 0, 3), (1, 1, 3), (2, 1, 3)]
    """
    return LotteryTicket(model, train_data, validation_data, training=training, run_dir=run_dir,
                         prune_fraction=prune_fraction, levels=levels, target_sparsity=target_sparsity,
                         rewind_step=rewind_step, layer_prune_fractions=layer_prune_fractions, scope=scope).run()


def prune_finetune(model, train_data, validation_data=None, *, training: TrainingSpec, run_dir,
                   prune_fraction: float = 0.2, levels: "int | None" = None, target_sparsity: "float | None" = None,
                   layer_prune_fractions: "Mapping[str, float] | None" = None, scope: str = "global",
                   finetune_epochs: "int | None" = None, finetune_steps: "int | None" = None,
                   rewind_step: int = 0) -> RunResults:
    """Iterative Train–(Prune–Finetune)ⁿ by global magnitude (the baseline of the LTH papers).

    Same arguments and run_dir format as :class:`LotteryTicket` (``levels`` or
    ``target_sparsity``; ``training.epochs``/``steps`` is the length of level 0;
    ``finetune_epochs``/``finetune_steps`` per level, default the level-0 length); the
    survivors keep their trained values instead of being rewound (``rewind_step`` must be 0).

    Example:

        >>> results = prune_finetune(build_lenet, (x, y), (x_val, y_val), run_dir="runs/ft", levels=2,
        ...                          finetune_epochs=1, training=TrainingSpec(loss=loss, epochs=2, batch_size=32, seed=0, verbose=0))
        >>> [(r.level, r.kept, r.steps) for r in results]   # 1,088 weights, 20% of the rest per level
        [(0, 1088, 6), (1, 870, 3), (2, 696, 3)]
    """
    return LotteryTicket(model, train_data, validation_data, training=training, run_dir=run_dir,
                         strategy="finetune", prune_fraction=prune_fraction, levels=levels,
                         target_sparsity=target_sparsity, rewind_step=rewind_step,
                         layer_prune_fractions=layer_prune_fractions, scope=scope,
                         finetune_epochs=finetune_epochs, finetune_steps=finetune_steps).run()


def magnitude_after_training(model, train_data, validation_data=None, *, training: TrainingSpec, run_dir,
                             sparsity: float, layer_prune_fractions: "Mapping[str, float] | None" = None,
                             scope: str = "global", finetune_epochs: "int | None" = None,
                             finetune_steps: "int | None" = None) -> RunResults:
    """One-shot magnitude pruning after training: train dense for ``training.epochs``/``steps``
    (level 0), prune the trained weights to ``sparsity`` by global magnitude, fine-tune
    ``finetune_epochs``/``finetune_steps`` (default: as long as level 0; 0 = no fine-tuning) —
    level 1.

    Example:

        >>> res = magnitude_after_training(build_lenet, (x, y), (x_val, y_val), sparsity=0.9, run_dir="runs/mag",
        ...                                finetune_epochs=1,
        ...                                training=TrainingSpec(loss=loss, epochs=2, batch_size=32, seed=0, verbose=0))
        >>> res[1].kept, round(res[1].sparsity, 4)     # 0.9 to one weight: 109 of 1,088 kept
        (109, 0.8998)
    """
    fraction = check_target_sparsity(sparsity, "sparsity")
    return LotteryTicket(model, train_data, validation_data, training=training, run_dir=run_dir,
                         strategy="finetune", prune_fraction=fraction, levels=1,
                         layer_prune_fractions=layer_prune_fractions, scope=scope,
                         finetune_epochs=finetune_epochs, finetune_steps=finetune_steps).run()
