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
files) and the run resumes where it stopped when called again with the same arguments.
"""
from __future__ import annotations

import math
import os
from typing import Mapping, Sequence

import numpy as np

from tfprune import _keras
from tfprune.io import load_json
from tfprune.lottery import _state
from tfprune.lottery._data import EvalData, TrainData
from tfprune.lottery._engine import Engine
from tfprune.lottery.masks import _check_fraction, check_layer_fractions, level_densities, prune_level
from tfprune.lottery.results import LevelResult, RunResults
from tfprune.lottery.ticket import apply_ticket, load_ticket
from tfprune.scoring import compute_scores, get_scorer

__all__ = ["LotteryTicket", "levels_for_sparsity", "load_results", "lottery_ticket", "magnitude_after_training",
           "prune_finetune"]

STRATEGIES = ("rewind", "finetune")
SCOPES = ("global", "layerwise")


def _check_int(value, argument, minimum=0, allowed=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{argument}: got {value!r}; allowed: {allowed or f'an integer >= {minimum}'}.")
    return int(value)


def _steps(epochs, steps, steps_per_epoch, epochs_name, steps_name, *, minimum=1, required=True):
    if epochs is not None and steps is not None:
        raise ValueError(f"{epochs_name}/{steps_name}: got both ({epochs!r}, {steps!r}); allowed: exactly one.")
    if epochs is None and steps is None:
        if required:
            raise ValueError(f"{epochs_name}/{steps_name}: got neither; pass {epochs_name}=... or {steps_name}=....")
        return None
    if epochs is not None:
        return _check_int(epochs, epochs_name, minimum) * steps_per_epoch
    return _check_int(steps, steps_name, minimum)


def _check_target(value, argument):
    try:
        target = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{argument}: expected a number in (0, 1), got {value!r}.") from None
    if not 0.0 < target < 1.0 or math.isnan(target):
        raise ValueError(f"{argument}: got {value!r}; allowed: a sparsity strictly between 0 and 1 (0.98 = 98% of "
                         "the weights pruned).")
    return target


def levels_for_sparsity(target_sparsity: float, prune_fraction: float,
                        layer_sizes: "Mapping[str, int] | None" = None,
                        layer_fractions: "Mapping[str, float] | None" = None) -> int:
    """Smallest number of levels whose planned sparsity reaches ``target_sparsity``.

    Without per-layer rates this is ``ceil(log(1 - target) / log(1 - prune_fraction))``.

    Example:
        >>> levels_for_sparsity(0.98, 0.2)
        18
    """
    target = _check_target(target_sparsity, "target_sparsity")
    fraction = _check_fraction(prune_fraction, "prune_fraction")
    layer_fractions = dict(layer_fractions or {})
    if layer_sizes is None or not layer_fractions:
        return max(1, math.ceil(math.log(1.0 - target) / math.log(1.0 - fraction) - 1e-9))
    total = sum(layer_sizes.values())
    for level in range(1, 100_000):
        joint, own = level_densities(level, fraction, layer_fractions)
        kept = sum(n * own.get(name, joint) for name, n in layer_sizes.items())
        if kept / total <= 1.0 - target + 1e-12:
            return level
    raise ValueError(f"target_sparsity: {target} cannot be reached with prune_fraction={fraction} and "
                     f"layer_prune_fractions={layer_fractions} (a layer that is never pruned keeps too many weights).")


def load_results(run_dir) -> RunResults:
    """The completed rows of the run in ``run_dir`` (levels in order, or sanity-check variants)."""
    run_dir = os.fspath(run_dir)
    if not os.path.exists(os.path.join(run_dir, "config.json")):
        raise FileNotFoundError(f"run_dir: {run_dir!r} holds no tfprune run (no config.json).")
    summary_path = os.path.join(run_dir, "summary.json")
    summary = load_json(summary_path) if os.path.exists(summary_path) else {}
    names = [row["name"] for row in summary.get("rows", [])]
    if all(name.startswith("level_") for name in names):
        # a level run: also the levels completed after the last summary was written
        levels = sorted(int(d.split("_", 1)[1]) for d in os.listdir(run_dir)
                        if d.startswith("level_") and d.split("_", 1)[1].isdigit())
        names += [f"level_{n}" for n in levels if f"level_{n}" not in names]
    rows = []
    for name in names:
        path = os.path.join(run_dir, name, "metrics.json")
        if os.path.exists(path):
            rows.append(LevelResult.from_metrics(load_json(path)))
    if all(r.level is not None for r in rows):
        rows.sort(key=lambda r: r.level)
    return RunResults(tuple(rows), title=summary.get("title", ""))


class LotteryTicket:
    """Iterative magnitude pruning with rewinding (lottery tickets), resumable.

    Args:
        model: a built tf_keras Sequential/Functional model (its current weights are θ0; it is
            cloned, never modified) or a zero-argument function returning one (called after
            seeding, so θ0 is reproducible).
        train_data: ``(x, y)`` arrays (shuffled per epoch from the seed; exact resume), a
            batched finite ``tf.data.Dataset`` (iterated as is: it must give the same order at
            every iteration for an exact resume), or a callable ``epoch -> Dataset``.
        validation_data: ``(x, y)`` arrays or a batched dataset, evaluated after every epoch.
        run_dir: directory of the run (created; a finished or partial run of the same
            configuration is continued; another configuration is refused).
        prune_fraction: fraction of the *remaining* weights pruned per level, in (0, 1).
        levels: number of pruning levels after the dense level 0; or
        target_sparsity: prune until this sparsity is reached (exactly one of the two).
        rewind_step: k, the training step whose weights the survivors are reset to
            (0 = θ0, the original LTH; Frankle et al. 2020 use a small k for deep nets); must
            be smaller than the steps per level. Levels ≥ 1 train from step k to step T.
        strategy: ``"rewind"`` (lottery tickets) or ``"finetune"`` (Train–(Prune–Finetune)ⁿ:
            survivors keep their trained values and are fine-tuned ``finetune_steps``).
        layer_prune_fractions: ``{layer: fraction}`` for layers pruned layerwise at their own
            rate (``{"output": prune_fraction / 2}`` as in the LTH paper; 0 keeps it dense).
        scope: ``"global"`` (default, OpenLTH) or ``"layerwise"`` magnitude ranking of the
            other layers.
        epochs_per_level / steps_per_level: T, the length of level 0 (exactly one).
        finetune_epochs / finetune_steps: fine-tuning per level for ``strategy="finetune"``
            (default T; 0 = prune without fine-tuning, evaluate only).
        batch_size, steps_per_epoch, validation_batch_size: batching (steps_per_epoch is
            required for datasets of unknown length).
        optimizer, loss, metrics: compile settings; ``optimizer`` is a name, a serialized config,
            an optimizer (its config is reused) or a factory; a new one is made per level. Or
        compile_fn: ``compile_fn(model)`` compiling the model with a *new* optimizer.
        callbacks: extra Keras callbacks for every ``fit`` call (one call per epoch; the pruning
            step callback is added). Callback state is not checkpointed.
        seed: seeds θ0 (with a factory), the data order and every training segment. None draws
            one and stores it in run_dir.
        verbose: 0 silent, 1 one line per level, 2 also ``fit``'s line per epoch.
        continue_lr_schedule: give the recreated optimizer ``iterations = rewind_step`` so a
            step-based learning-rate schedule continues from step k (as OpenLTH's); Keras' Adam
            also uses this counter for bias correction, so leave it False with Adam.
        deterministic: enable TF op determinism (``tf.config.experimental.enable_op_determinism``)
            while the run trains, so that a resumed run is bit-identical to an uninterrupted one;
            the previous setting is restored when ``run()`` returns.

    Density: each level keeps ``round(N · (1 - p)^n)`` of the N jointly ranked weights (to one
    weight, no accumulated rounding; per layer with ``scope="layerwise"`` or a layer rate).

    Example:
        >>> lt = LotteryTicket(build_lenet, (x, y), (x_val, y_val), run_dir="runs/lenet",
        ...                    loss="sparse_categorical_crossentropy", epochs_per_level=2,
        ...                    prune_fraction=0.2, target_sparsity=0.98, seed=0)
        >>> results = lt.run()        # call again after a crash: it continues
        >>> print(results)            # level, sparsity, accuracies, * = best
        >>> ticket = lt.masks(level=results.best.level)
    """

    def __init__(self, model, train_data, validation_data=None, *, run_dir, prune_fraction: float = 0.2,
                 levels: "int | None" = None, target_sparsity: "float | None" = None, rewind_step: int = 0,
                 strategy: str = "rewind", layer_prune_fractions: "Mapping[str, float] | None" = None,
                 scope: str = "global", epochs_per_level: "int | None" = None, steps_per_level: "int | None" = None,
                 finetune_epochs: "int | None" = None, finetune_steps: "int | None" = None, batch_size: int = 32,
                 steps_per_epoch: "int | None" = None, validation_batch_size: "int | None" = None,
                 optimizer="adam", loss=None, metrics: Sequence = ("accuracy",), compile_fn=None,
                 callbacks: Sequence = (), seed: "int | None" = None, verbose: int = 0,
                 continue_lr_schedule: bool = False, deterministic: bool = False):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy: got {strategy!r}; allowed: {', '.join(map(repr, STRATEGIES))}.")
        if scope not in SCOPES:
            raise ValueError(f"scope: got {scope!r}; allowed: {', '.join(map(repr, SCOPES))}.")
        self.prune_fraction = _check_fraction(prune_fraction, "prune_fraction")
        if (levels is None) == (target_sparsity is None):
            raise ValueError(f"levels/target_sparsity: got levels={levels!r}, target_sparsity={target_sparsity!r}; "
                             "allowed: exactly one of them (a number of pruning levels, or a sparsity to reach).")
        self.levels = None if levels is None else _check_int(levels, "levels", 1)
        self.target_sparsity = None if target_sparsity is None else _check_target(target_sparsity, "target_sparsity")
        self.train = TrainData(train_data, batch_size, steps_per_epoch)
        self.val = EvalData(validation_data, validation_batch_size or batch_size)
        spe = self.train.steps_per_epoch
        self.steps_per_level = _steps(epochs_per_level, steps_per_level, spe, "epochs_per_level", "steps_per_level")
        self.rewind_step = _check_int(rewind_step, "rewind_step", 0)
        if strategy == "rewind" and self.rewind_step >= self.steps_per_level:
            raise ValueError(f"rewind_step: got {rewind_step}; allowed: an integer step in [0, {self.steps_per_level}), "
                             f"smaller than the steps per level ({self.steps_per_level} = "
                             + (f"{epochs_per_level} epochs x {spe} steps" if epochs_per_level is not None
                                else "steps_per_level") + ").")
        if strategy == "finetune":
            if self.rewind_step:
                raise ValueError(f"rewind_step: got {rewind_step}; allowed: 0 with strategy='finetune' (fine-tuning "
                                 "continues from the trained weights, nothing is rewound).")
            self.finetune_steps = _steps(finetune_epochs, finetune_steps, spe, "finetune_epochs", "finetune_steps",
                                         minimum=0, required=False)
            if self.finetune_steps is None:
                self.finetune_steps = self.steps_per_level
        else:
            if finetune_epochs is not None or finetune_steps is not None:
                raise ValueError("finetune_epochs/finetune_steps: only used with strategy='finetune'; with "
                                 "strategy='rewind' every level trains from the rewind step to steps_per_level.")
            self.finetune_steps = None
        self.strategy, self.scope = strategy, scope
        self.layer_prune_fractions = dict(layer_prune_fractions or {})
        self.run_dir = os.fspath(run_dir)
        self._model = model
        self._engine_kwargs = dict(compile_fn=compile_fn, optimizer=optimizer, loss=loss, metrics=metrics, seed=seed,
                                   callbacks=callbacks, verbose=verbose, continue_lr_schedule=continue_lr_schedule,
                                   deterministic=deterministic)
        self.num_levels = self.levels  # known after run() when target_sparsity is given

    # -------------------------------------------------------------------------------------

    def _settings(self) -> dict:
        return {"strategy": self.strategy, "prune_fraction": self.prune_fraction, "levels": self.levels,
                "target_sparsity": self.target_sparsity, "rewind_step": self.rewind_step,
                "layer_prune_fractions": self.layer_prune_fractions, "scope": self.scope,
                "steps_per_level": self.steps_per_level, "finetune_steps": self.finetune_steps,
                "criterion": "magnitude"}

    def _level_range(self, level: int) -> "tuple[int, int]":
        if level == 0:
            return 0, self.steps_per_level
        if self.strategy == "rewind":
            return self.rewind_step, self.steps_per_level
        return 0, self.finetune_steps

    def run(self) -> RunResults:
        """Trains every level not yet complete in run_dir; returns :meth:`results`."""
        engine = Engine(self._model, self.train, self.val, run_dir=self.run_dir, **self._engine_kwargs)
        engine.open("lottery", self._settings())
        try:
            fractions = check_layer_fractions(self.layer_prune_fractions, engine.prunable)
            if self.levels is None:
                sizes = {n: int(np.prod(k.shape)) for n, k in _keras.prunable_kernels(engine.model).items()}
                self.num_levels = levels_for_sparsity(self.target_sparsity, self.prune_fraction, sizes, fractions)
            names = [f"level_{n}" for n in range(self.num_levels + 1)]
            if all(engine.is_complete(n) for n in names):
                return self.results()
            rows = []
            capture = self.rewind_step if self.strategy == "rewind" else None
            rows.append(engine.train_phase("level_0", {}, lambda: (engine.init_weights, None), 0, self.steps_per_level,
                                           level=0, capture_step=capture))
            engine.write_summary(rows, complete=self.num_levels == 0)
            for level in range(1, self.num_levels + 1):
                rows.append(self._train_level(engine, level, fractions))
                engine.write_summary(rows, complete=level == self.num_levels)
        finally:
            engine.close()
        return self.results()

    def _train_level(self, engine: Engine, level: int, fractions) -> dict:
        name, previous_name = f"level_{level}", f"level_{level - 1}"
        if engine.is_complete(name):
            return engine.load_metrics(name)
        if os.path.exists(engine.path(name, "mask.npz")):
            masks = engine.load_masks(name)
        else:
            previous = engine.load_masks(previous_name)
            engine.set_masks(previous)
            engine.set_weights(engine.load_weights(engine.path(previous_name, "trained_weights.npz")))
            scores = compute_scores(engine.model, "magnitude", masks=previous)
            masks = prune_level(scores, previous, level, self.prune_fraction, layer_fractions=fractions,
                                scope=self.scope, keep=get_scorer("magnitude").keep)
        if self.strategy == "rewind":
            def start():
                weights, _ = engine.load_rewind_point("level_0")
                return weights, None
        else:
            def start():
                return engine.load_weights(engine.path(previous_name, "trained_weights.npz")), None
        first, last = self._level_range(level)
        return engine.train_phase(name, masks, start, first, last, level=level,
                                  info={"strategy": self.strategy, "prune_fraction": self.prune_fraction})

    # -- accessors -------------------------------------------------------------------------

    def results(self) -> RunResults:
        """The completed levels in run_dir (also of a run still in progress)."""
        results = load_results(self.run_dir)
        title = (f"Lottery ticket ({self.strategy}, rewind_step={self.rewind_step}, prune_fraction="
                 f"{self.prune_fraction})" if self.strategy == "rewind" else
                 f"Train-(Prune-Finetune)^n (prune_fraction={self.prune_fraction}, finetune_steps={self.finetune_steps})")
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

    def masks(self, level: int = -1) -> "dict[str, np.ndarray]":
        """The masks of ``level`` (negative: counted from the last completed level)."""
        return load_ticket(os.path.join(self._level_dir(level), "mask.npz")).masks

    def ticket_path(self, level: int = -1) -> str:
        """The ticket file (``mask.npz``) of ``level``, for :func:`tfprune.lottery.apply_ticket`."""
        return os.path.join(self._level_dir(level), "mask.npz")

    def model(self, level: int = -1, weights: str = "trained"):
        """A new wrapped model with the masks of ``level`` and its ``"trained"`` or ``"rewind"``
        (start-of-training) weights. Not compiled."""
        if weights not in ("trained", "rewind"):
            raise ValueError(f"weights: got {weights!r}; allowed: 'trained', 'rewind'.")
        directory = self._level_dir(level)
        from tfprune._keras import keras
        source = self._model
        if isinstance(source, keras.Model):
            plain = keras.models.clone_model(source)
        else:
            plain = source()
        names = [_keras.inner_layer(l).name for l in plain.layers]
        stored = load_json(os.path.join(self.run_dir, "config.json")).get("layer_names", names)
        rename = {a: b for a, b in zip(stored, names) if a != b}
        pruned = apply_ticket(plain, os.path.join(directory, "mask.npz"), match="order" if rename else "name")
        from tfprune.io import load_npz
        _state.set_layer_weights(pruned, load_npz(os.path.join(directory, f"{weights}_weights.npz")), rename=rename)
        return pruned


def lottery_ticket(model, train_data, validation_data=None, **kwargs) -> RunResults:
    """``LotteryTicket(model, train_data, validation_data, **kwargs).run()``.

    Example:
        >>> results = lottery_ticket(build, (x, y), (xv, yv), run_dir="runs/lt", levels=5,
        ...                          epochs_per_level=2, loss="sparse_categorical_crossentropy")
    """
    return LotteryTicket(model, train_data, validation_data, **kwargs).run()


def prune_finetune(model, train_data, validation_data=None, *, prune_fraction: float = 0.2, **kwargs) -> RunResults:
    """Iterative Train–(Prune–Finetune)ⁿ by global magnitude (the baseline of the LTH papers).

    Same arguments and run_dir format as :class:`LotteryTicket` (``levels`` or
    ``target_sparsity``, ``finetune_epochs``/``finetune_steps`` per level, default the level-0
    length); the survivors keep their trained values instead of being rewound.

    Example:
        >>> prune_finetune(build, (x, y), (xv, yv), run_dir="runs/ft", levels=5, epochs_per_level=2,
        ...                finetune_epochs=1, loss="sparse_categorical_crossentropy")
    """
    return LotteryTicket(model, train_data, validation_data, strategy="finetune", prune_fraction=prune_fraction,
                         **kwargs).run()


def magnitude_after_training(model, train_data, validation_data=None, *, sparsity: float, **kwargs) -> RunResults:
    """One-shot magnitude pruning after training: train dense (level 0), prune the trained
    weights to ``sparsity`` by global magnitude, fine-tune ``finetune_epochs``/``finetune_steps``
    (default: as long as level 0; 0 = no fine-tuning) — level 1.

    Example:
        >>> res = magnitude_after_training(build, (x, y), (xv, yv), sparsity=0.9, run_dir="runs/mag",
        ...                                epochs_per_level=3, finetune_epochs=1, loss="sparse_categorical_crossentropy")
        >>> res[1].sparsity
        0.9
    """
    fraction = _check_target(sparsity, "sparsity")
    return LotteryTicket(model, train_data, validation_data, strategy="finetune", prune_fraction=fraction, levels=1,
                         **kwargs).run()
