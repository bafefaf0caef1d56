"""One training run, from a :class:`Config` to a result dict: the logic behind every binary.

``examples/train.py`` (one run), ``examples/demo.py`` (``make demo``) and ``benchmarks/sweep.py``
(a grid of runs) all call :func:`run`; each of their flags is a :class:`Config` field of the same
name, so a value goes from the command line to the op that uses it through this one module.

A run:

1. seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed(seed)``) and turns on
   ``tf.config.experimental.enable_op_determinism()``;
2. loads ``dataset`` (:func:`tfprune.data.load`, shuffled with ``seed``) and builds ``model``
   (:func:`tfprune.models.build`, initialised with ``seed``);
3. prunes it with ``method`` at ``sparsity``:

   * ``dense``: no pruning (``sparsity`` must be 0);
   * ``random``, ``magnitude``, ``snip``, ``grasp``, ``synflow``: pruning at initialization,
     :func:`tfprune.prune_at_init` with global ranking (``scope``); SNIP and GraSP score a balanced
     batch of ``per_class`` training examples per class; masks stay fixed during training;
   * ``tfmot_gradual``: TF-MOT's own ``prune_low_magnitude`` with a ``PolynomialDecay`` schedule
     from 0 to ``sparsity`` (cubic, TF-MOT's default power 3) between step 0 and
     ``tfmot_end_fraction`` (2/3) of the training steps, re-ranking every ``tfmot_frequency``
     (100) steps. TF-MOT ranks per layer (every Dense/Conv kernel at ``sparsity``), the
     peer's own default, and trains for exactly the same epochs, batches and optimizer;

4. trains with ``optimizer`` / ``lr`` for ``epochs`` epochs of ``batch_size`` (Keras progress
   bar when ``verbose=1``), evaluates on the test split, prints the sparsity report;
5. with ``export_tflite``, exports the trained model with :func:`tflite_export.export`
   (sparse, verified against Keras) to ``out_dir/model.tflite``;
6. writes ``out_dir/result.json`` atomically (temporary file + rename) and, with ``tensorboard``,
   TensorBoard logs in ``out_dir/tensorboard`` (loss/accuracy per epoch, ``density/<layer>`` and
   ``sparsity/global`` scalars per epoch, final ``test/accuracy``; for lottery runs one step per
   level).

``method=lottery`` (iterative magnitude pruning with rewinding), ``early_step`` (pruning after k
training steps) and ``sanity`` (shuffle / reinit / invert the masks) run on
:mod:`tfprune.lottery`'s resumable engine instead of a single ``fit``: see :func:`lottery_ticket`
and :func:`train`.

Determinism: two runs with the same config on the same machine and TensorFlow build give
bit-identical masks and metrics (tested). Across machines or CPU instruction sets (oneDNN
kernels) the floating-point sums can differ in the last bits; set ``TF_ENABLE_ONEDNN_OPTS=0``
for the most portable numbers.

Example:
    >>> from tfprune.training import Config, run
    >>> result = run(Config(dataset="fashion_mnist", method="synflow", sparsity=0.98, epochs=3,
    ...                     out_dir="/tmp/synflow98"))
    >>> result["test_accuracy"], result["sparsity"]
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
import warnings
from typing import Any

import numpy as np
import tensorflow as tf

from tfprune import data as tfp_data
from tfprune import models as tfp_models
from tfprune._keras import keras
from tfprune.io import save_json_atomic
from tfprune.api import LayerCollapseWarning, callbacks as pruning_callbacks, prune_at_init
from tfprune.report import sparsity_report
from tfprune.wrapper import strip

#: Pruning-at-initialization methods (scores at θ0, fixed masks).
PAI_METHODS = ("random", "magnitude", "snip", "grasp", "synflow")
#: Every value of ``Config.method``.
METHODS = ("dense",) + PAI_METHODS + ("lottery", "tfmot_gradual")
#: PaI methods that score a mini-batch of data.
DATA_METHODS = ("snip", "grasp")
OPTIMIZERS = ("sgd", "momentum", "adam")
SANITY_CHECKS = ("none", "shuffle", "reinit", "invert")
SCOPES = ("global", "layerwise")
#: ``quantization`` values: the TFLite exporter's modes.
from tflite_export import QUANTIZATIONS  # noqa: E402  (cheap: tflite_export imports TF lazily)

RESULT_FILE = "result.json"


@dataclasses.dataclass
class Config:
    """Everything a run depends on. The binaries' flags have the same names and defaults.

    Attributes:
        dataset: :func:`tfprune.data.names` (``fashion_mnist``, ``mnist5k``, ``digits``, ``synthetic``).
        model: :func:`tfprune.models.names` (``lenet_300_100``, ``conv2``, ...).
        method: one of :data:`METHODS`.
        sparsity: fraction of prunable weights removed, in [0, 1); 0 for ``dense``.
        epochs, batch_size: training length; every method trains the same number of steps.
        lr, optimizer: ``sgd``, ``momentum`` (SGD, momentum 0.9) or ``adam``; constant rate.
        seed: seeds the initialization, the data order, the random scorer, the SNIP/GraSP batch.
        rewind_step: lottery only: rewind surviving weights to their value after this many steps.
        early_step: PaI methods only: train dense for this many steps, then prune (pruning
            early in training).
        sanity: ``none`` or a sanity check of the masks: ``shuffle`` (permute each layer's mask),
            ``reinit`` (keep masks, fresh initial weights), ``invert`` (keep the lowest scores).
        out_dir: where ``result.json`` and TensorBoard logs go (None: nothing written).
        export_tflite, quantization: export the stripped model to a verified sparse ``.tflite``.
        tensorboard: write TensorBoard logs to ``out_dir/tensorboard``.
        max_train, max_test: keep the first examples of each split (quick runs).
        scope: ``global`` (default) or ``layerwise`` ranking for the PaI methods.
        tfmot_frequency, tfmot_end_fraction: TF-MOT ``PolynomialDecay`` frequency and the fraction
            of training over which the sparsity ramps from 0 to the target.
        prune_fraction: lottery: fraction of the remaining weights pruned per level (lowered a
            little so that the last level lands exactly on ``sparsity``, see :func:`lottery_levels`).
        per_class: examples per class in the SNIP/GraSP scoring batch.
        verbose: Keras ``fit`` verbosity (1: progress bar, 2: one line per epoch, 0: silent).
        dataset_options: extra options of :func:`tfprune.data.load` (``synthetic``'s shapes).
    """

    dataset: str = "fashion_mnist"
    model: str = "lenet_300_100"
    method: str = "dense"
    sparsity: float = 0.0
    epochs: int = 8
    batch_size: int = 128
    lr: float = 1.2e-3
    optimizer: str = "adam"
    seed: int = 0
    rewind_step: int = 0
    early_step: int = 0
    sanity: str = "none"
    out_dir: "str | None" = None
    export_tflite: bool = False
    quantization: str = "none"
    tensorboard: bool = False
    max_train: "int | None" = None
    max_test: "int | None" = None
    scope: str = "global"
    tfmot_frequency: int = 100
    tfmot_end_fraction: float = 2.0 / 3.0
    prune_fraction: float = 0.2
    per_class: int = 10
    verbose: int = 1
    dataset_options: "dict[str, Any]" = dataclasses.field(default_factory=dict)

    def replace(self, **changes) -> "Config":
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["dataset_options"] = {k: list(v) if isinstance(v, tuple) else v
                                  for k, v in self.dataset_options.items()}
        return out


def check_config(config: Config) -> Config:
    """Raises ``ValueError`` naming the field and the allowed values for any bad field or combination.

    The binaries' absl validators call the same checks (:func:`config_problems`), so a bad flag
    and a bad ``Config`` get the same message.
    """
    problems = config_problems(config)
    if problems:
        raise ValueError("invalid training config: " + " ".join(problems))
    return config


def _enum_problem(name, value, allowed):
    if value not in allowed:
        return f"{name}={value!r} is not one of {', '.join(allowed)}."
    return None


def config_problems(config: Config) -> "list[str]":
    """Every problem with ``config`` as a sentence naming the flag (empty list: valid)."""
    c = config
    problems = [p for p in (
        _enum_problem("dataset", c.dataset, tfp_data.names()),
        _enum_problem("model", c.model, tfp_models.names()),
        _enum_problem("method", c.method, METHODS),
        _enum_problem("optimizer", c.optimizer, OPTIMIZERS),
        _enum_problem("sanity", c.sanity, SANITY_CHECKS),
        _enum_problem("scope", c.scope, SCOPES),
        _enum_problem("quantization", c.quantization, QUANTIZATIONS),
    ) if p]
    if not (isinstance(c.sparsity, (int, float)) and 0.0 <= c.sparsity < 1.0):
        problems.append(f"sparsity={c.sparsity!r} must be in [0, 1) (0.98 keeps 2% of the weights).")
    for name in ("epochs", "batch_size", "tfmot_frequency", "per_class"):
        value = getattr(c, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{name}={value!r} must be an integer >= 1.")
    for name in ("seed", "rewind_step", "early_step"):
        value = getattr(c, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"{name}={value!r} must be an integer >= 0.")
    for name in ("max_train", "max_test"):
        value = getattr(c, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            problems.append(f"{name}={value!r} must be None or an integer >= 1.")
    if not (isinstance(c.lr, (int, float)) and math.isfinite(c.lr) and c.lr > 0):
        problems.append(f"lr={c.lr!r} must be a positive number.")
    if not (isinstance(c.prune_fraction, (int, float)) and 0.0 < c.prune_fraction < 1.0):
        problems.append(f"prune_fraction={c.prune_fraction!r} must be in (0, 1).")
    if not (isinstance(c.tfmot_end_fraction, (int, float)) and 0.0 < c.tfmot_end_fraction <= 1.0):
        problems.append(f"tfmot_end_fraction={c.tfmot_end_fraction!r} must be in (0, 1].")
    if c.verbose not in (0, 1, 2):
        problems.append(f"verbose={c.verbose!r} must be 0, 1 or 2.")
    # Combinations.
    if c.method == "dense" and isinstance(c.sparsity, (int, float)) and c.sparsity != 0:
        problems.append(f"method=dense trains the unpruned model: sparsity must be 0, got {c.sparsity}.")
    if c.rewind_step and c.method != "lottery":
        problems.append(f"rewind_step={c.rewind_step} applies to method=lottery only (method={c.method}).")
    if c.early_step and c.method not in PAI_METHODS:
        problems.append(f"early_step={c.early_step} applies to the pruning-at-init methods "
                        f"{', '.join(PAI_METHODS)} only (method={c.method}).")
    if c.sanity != "none" and c.method not in PAI_METHODS:
        problems.append(f"sanity={c.sanity} applies to the scoring methods {', '.join(PAI_METHODS)} only "
                        f"(method={c.method}); it checks the masks a score picks at step early_step.")
    if c.method == "lottery" and isinstance(c.sparsity, (int, float)) and c.sparsity == 0:
        problems.append("method=lottery needs sparsity > 0 (the sparsity of its last level).")
    if c.quantization != "none" and not c.export_tflite:
        problems.append(f"quantization={c.quantization} needs export_tflite.")
    if (c.tensorboard or c.export_tflite) and not c.out_dir:
        problems.append("tensorboard and export_tflite write files: set out_dir.")
    return problems


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def read_result(out_dir: str) -> "dict | None":
    """The ``result.json`` of a finished run in ``out_dir``, or None if there is none."""
    path = os.path.join(out_dir, RESULT_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------
# Pieces of a run
# --------------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    """Python/NumPy/TF seeds and deterministic TF ops: same config → same numbers."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def load_data(config: Config):
    return tfp_data.load(config.dataset, batch_size=config.batch_size, seed=config.seed,
                         max_train=config.max_train, max_test=config.max_test, **config.dataset_options)


def build_model(config: Config, datasets):
    return tfp_models.build(config.model, datasets.input_shape, datasets.num_classes, seed=config.seed)


def make_optimizer(config: Config):
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.lr)
    if config.optimizer == "momentum":
        return keras.optimizers.SGD(config.lr, momentum=0.9)
    return keras.optimizers.SGD(config.lr)


def make_loss():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_model(model, config: Config):
    model.compile(make_optimizer(config), make_loss(), metrics=["accuracy"])
    return model


def scoring_batch(config: Config, datasets):
    """The balanced batch SNIP/GraSP score (``per_class`` examples per class), None otherwise."""
    if config.method not in DATA_METHODS:
        return None
    return datasets.balanced_batch(per_class=config.per_class, seed=config.seed)


def tfmot_schedule(config: Config, total_steps: int):
    """TF-MOT's ``PolynomialDecay`` for ``tfmot_gradual``: 0 → ``sparsity`` over the first
    ``tfmot_end_fraction`` of ``total_steps``, every ``tfmot_frequency`` steps.

    ``end_step`` is rounded down to a multiple of the frequency so that the last pruning step
    lands exactly on ``end_step`` (where the schedule reaches the target); for runs shorter than
    the frequency, the frequency shrinks to ``end_step``.
    """
    from tensorflow_model_optimization.python.core.sparsity.keras import pruning_schedule

    end = max(1, int(config.tfmot_end_fraction * total_steps))
    frequency = min(config.tfmot_frequency, end)
    end = (end // frequency) * frequency
    return pruning_schedule.PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(config.sparsity),
                                            begin_step=0, end_step=end, frequency=frequency)


def prune_tfmot_gradual(model, config: Config, total_steps: int):
    from tensorflow_model_optimization.python.core.sparsity.keras import prune

    schedule = tfmot_schedule(config, total_steps)
    return prune.prune_low_magnitude(model, pruning_schedule=schedule), {
        "schedule": "PolynomialDecay", "begin_step": schedule.begin_step, "end_step": schedule.end_step,
        "frequency": schedule.frequency, "power": schedule.power, "ranking": "layerwise magnitude (TF-MOT)"}


class DensitySummaries(keras.callbacks.Callback):
    """Writes ``density/<layer>`` and ``sparsity/global`` scalars at every epoch end (and before
    training), for any model: dense, tfprune-wrapped or TF-MOT-wrapped."""

    def __init__(self, log_dir: str):
        super().__init__()
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "sparsity"))

    def _write(self, step: int):
        report = sparsity_report(self.model, check_paths=False)
        with self.writer.as_default():
            tf.summary.scalar("sparsity/global", report.sparsity, step=step)
            for row in report.rows:
                tf.summary.scalar(f"density/{row.name}", row.density, step=step)
        self.writer.flush()

    def on_train_begin(self, logs=None):
        self._write(0)

    def on_epoch_end(self, epoch, logs=None):
        self._write(epoch + 1)


class ResultSummaries:
    """``density/<layer>``, ``sparsity/global`` and ``test/accuracy``/``test/loss`` scalars of
    result dicts, one step each (runs on the lottery engine: one step per lottery level)."""

    def __init__(self, log_dir: str):
        self.sparsity = tf.summary.create_file_writer(os.path.join(log_dir, "sparsity"))
        self.test = tf.summary.create_file_writer(os.path.join(log_dir, "test"))

    def write(self, result: dict, step: int) -> None:
        with self.sparsity.as_default():
            tf.summary.scalar("sparsity/global", result["sparsity"], step=step)
            for row in result["report"]["layers"]:
                tf.summary.scalar(f"density/{row['name']}", row["density"], step=step)
        with self.test.as_default():
            tf.summary.scalar("test/accuracy", result["test_accuracy"], step=step)
            tf.summary.scalar("test/loss", result["test_loss"], step=step)
        self.sparsity.flush()
        self.test.flush()


def _versions() -> dict:
    import tensorflow_model_optimization as tfmot
    import tfprune
    return {"tfprune": tfprune.__version__, "tensorflow": tf.__version__, "tf_keras": keras.__version__,
            "tfmot": tfmot.__version__, "python": platform.python_version(), "machine": platform.machine()}


def _history(history) -> dict:
    return {k: [float(v) for v in vals] for k, vals in (history.history if history else {}).items()}


# --------------------------------------------------------------------------------------------
# Runs on the tfprune.lottery engine: lottery tickets, pruning early in training, sanity checks
# --------------------------------------------------------------------------------------------
ENGINE_DIR = "run"  # the tfprune.lottery run directory inside out_dir (resumable)


def uses_engine(config: Config) -> bool:
    """Whether the run goes through :mod:`tfprune.lottery` (lottery, ``early_step``, ``sanity``)."""
    return config.method == "lottery" or config.early_step > 0 or config.sanity != "none"


def _training_spec(config: Config):
    """The :class:`tfprune.spec.TrainingSpec` of the runs on the lottery engine."""
    from tfprune.spec import TrainingSpec
    return TrainingSpec(optimizer=lambda: make_optimizer(config), loss=make_loss(), metrics=("accuracy",),
                        batch_size=config.batch_size, epochs=config.epochs, seed=config.seed,
                        verbose={0: 0, 1: 1, 2: 2}[config.verbose], deterministic=True)


def lottery_levels(config: Config) -> "tuple[int, float]":
    """``(levels, prune_fraction)`` of ``method=lottery``: the fewest levels of ``prune_fraction``
    (default 0.2) that reach ``sparsity``, with the fraction then lowered a little so that the
    last level lands exactly on ``sparsity``: ``1 - (1 - sparsity)^(1/levels)``.

    Example: sparsity 0.98, prune_fraction 0.2 → 18 levels of 19.6%.
    """
    from tfprune import lottery
    levels = lottery.levels_for_sparsity(config.sparsity, config.prune_fraction)
    return levels, 1.0 - (1.0 - config.sparsity) ** (1.0 / levels)


def lottery_ticket(config: Config, datasets=None, run_dir=None):
    """The :class:`tfprune.lottery.LotteryTicket` of ``config`` after ``run()`` (resumes a partial run).

    Level 0 trains the dense model for ``epochs``; each level prunes by global magnitude
    (:func:`lottery_levels`), rewinds the survivors to step ``rewind_step`` and retrains
    ``epochs`` (minus the rewind steps). The test split is the validation data.
    """
    from tfprune import lottery
    datasets = datasets or load_data(config)
    levels, fraction = lottery_levels(config)
    lt = lottery.LotteryTicket(
        lambda: build_model(config, datasets), (datasets.x_train, datasets.y_train),
        (datasets.x_test, datasets.y_test), training=_training_spec(config),
        run_dir=run_dir or os.path.join(config.out_dir, ENGINE_DIR), prune_fraction=fraction, levels=levels,
        rewind_step=config.rewind_step, scope=config.scope)
    lt.run()
    return lt


def lottery_level_result(config: Config, lt, level: int) -> dict:
    """The result dict (as :func:`train` writes it) of one level of a finished lottery run."""
    rows = {row.level: row for row in lt.results()}
    row = rows[level]
    m = row.metrics
    report = m["sparsity_report"]
    history = {}
    for epoch in m["history"]:
        for key, value in epoch.items():
            if key not in ("epoch", "start_step", "end_step"):
                history.setdefault(key, []).append(value)
    return _result(config, test_accuracy=row.val_accuracy, test_loss=row.val_loss,
                   train_accuracy=row.train_accuracy, train_loss=row.train_loss, report=report,
                   initial_sparsity=report["sparsity"], prune_time=0.0, train_time=row.wall_time_s,
                   steps=row.steps, steps_per_epoch=lt.train.steps_per_epoch, history=history,
                   method_info={"level": level, "levels": max(rows), "prune_fraction": lt.plan.prune_fraction,
                                "rewind_step": lt.plan.rewind_step, "scope": lt.plan.scope, "run_dir": lt.run_dir,
                                "cumulative_train_time_s": sum(r.wall_time_s for r in rows.values() if r.level <= level),
                                "ranking": "global magnitude of trained weights, rewind to step rewind_step",
                                "level_sparsities": {r.level: r.sparsity for r in rows.values()}})


def _early_or_sanity(config: Config, datasets, log):
    """``early_step`` and/or ``sanity``: :func:`tfprune.lottery.prune_early` / ``sanity_checks``."""
    from tfprune import lottery
    from tfprune.io import load_npz
    from tfprune.lottery import _state

    run_dir = os.path.join(config.out_dir, ENGINE_DIR)
    common = dict(method=config.method, sparsity=config.sparsity, prune_step=config.early_step,
                  scope=config.scope, score_data=scoring_batch(config, datasets), train_dense=False,
                  training=_training_spec(config), run_dir=run_dir)
    args = (lambda: build_model(config, datasets), (datasets.x_train, datasets.y_train),
            (datasets.x_test, datasets.y_test))
    if config.sanity != "none":
        results = lottery.sanity_checks(*args, variants=[config.sanity], **common)
        phase = config.sanity
    else:
        results = lottery.prune_early(*args, **common)
        phase = "level_1"
    row = [r for r in results if r.name == phase][0]
    # The trained model of that phase: its masks and trained weights on a fresh build.
    model = lottery.apply_ticket(build_model(config, datasets), os.path.join(run_dir, phase, "mask.npz"))
    _state.set_layer_weights(model, load_npz(os.path.join(run_dir, phase, "trained_weights.npz")))
    m = row.metrics
    history = {}
    for epoch in m["history"]:
        for key, value in epoch.items():
            if key not in ("epoch", "start_step", "end_step"):
                history.setdefault(key, []).append(value)
    result = _result(config, test_accuracy=row.val_accuracy, test_loss=row.val_loss,
                     train_accuracy=row.train_accuracy, train_loss=row.train_loss, report=m["sparsity_report"],
                     initial_sparsity=m["sparsity_report"]["sparsity"], prune_time=0.0, train_time=row.wall_time_s,
                     steps=row.steps, steps_per_epoch=datasets.steps_per_epoch, history=history,
                     method_info={"phase": phase, "prune_step": config.early_step, "sanity": config.sanity,
                                  "scope": config.scope, "run_dir": run_dir,
                                  "api": "tfprune.lottery.sanity_checks" if config.sanity != "none"
                                  else "tfprune.lottery.prune_early"})
    return model, result


# --------------------------------------------------------------------------------------------
# TFLite export
# --------------------------------------------------------------------------------------------
TFLITE_FILE = "model.tflite"


def export_tflite(model, config: Config, datasets, log=print) -> dict:
    """Exports ``model`` (wrappers stripped by the exporter) to ``out_dir/model.tflite`` with
    :func:`tflite_export.export` (sparse encoding, verified against Keras on 16 test inputs;
    int8 calibrates on 200 training inputs); returns its report as a dict, with ``error`` set
    (and nothing written) when no variant passed verification."""
    import tflite_export

    path = os.path.join(config.out_dir, TFLITE_FILE)
    representative = datasets.x_train[:200] if config.quantization == "int8" else None
    try:
        report = tflite_export.export(model, path, quantization=config.quantization,
                                      representative_data=representative, sparse=True, block="auto",
                                      verify_with=datasets.x_test[:16])
    except tflite_export.ExportError as e:
        log(f"TFLite export failed verification, nothing written: {e}")
        out = e.report.to_dict() if getattr(e, "report", None) is not None else {}
        out["error"] = str(e)
        return out
    log("")
    log(str(report))
    return report.to_dict()


# --------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------
def _result(config: Config, *, test_accuracy, test_loss, train_accuracy, train_loss, report: dict,
            initial_sparsity, prune_time, train_time, steps, steps_per_epoch, history, method_info) -> dict:
    return {
        "config": config.to_dict(),
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "test_loss": None if test_loss is None else float(test_loss),
        "train_accuracy": train_accuracy,
        "train_loss": train_loss,
        "target_sparsity": float(config.sparsity),
        "sparsity": report["sparsity"],
        "initial_sparsity": initial_sparsity,
        "collapsed": list(report["collapsed"]),
        "report": report,
        "prune_time_s": prune_time,
        "train_time_s": train_time,
        "steps": steps,
        "steps_per_epoch": steps_per_epoch,
        "history": history,
        "method_info": method_info,
        "tflite": None,
        "versions": _versions(),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run(config: Config, *, log=print) -> dict:
    """Trains, evaluates and (optionally) exports one configuration; returns the result dict.

    See :func:`train` for the keys; :func:`train` also returns the trained model.
    """
    return train(config, log=log)[1]


def train(config: Config, *, log=print):
    """Like :func:`run`, but returns ``(trained model, result dict)``.

    The same dict is written to ``config.out_dir/result.json`` (atomically) when ``out_dir``
    is set. Keys: ``config``, ``test_accuracy``, ``test_loss``, ``train_accuracy``,
    ``train_loss``, ``sparsity`` (measured), ``target_sparsity``, ``collapsed`` (layer names),
    ``report`` (per-layer rows), ``prune_time_s``, ``train_time_s``, ``steps``, ``history``,
    ``method_info``, ``tflite`` (export report or None), ``versions``.

    ``method=lottery``, ``early_step`` and ``sanity`` run on :mod:`tfprune.lottery`'s resumable
    engine in ``out_dir/run`` (rerun the same config to continue an interrupted run); their
    ``test_accuracy`` is the engine's evaluation of the test split after the last epoch.
    """
    check_config(config)
    if uses_engine(config) and not config.out_dir:
        raise ValueError("out_dir: method=lottery, early_step and sanity keep a resumable run directory; set out_dir.")
    if config.out_dir:
        os.makedirs(config.out_dir, exist_ok=True)
    keras.backend.clear_session()
    seed_everything(config.seed)
    datasets = load_data(config)
    log(f"training {config.model} on {config.dataset}: method={config.method} sparsity={config.sparsity} "
        f"epochs={config.epochs} ({config.epochs * datasets.steps_per_epoch} steps) seed={config.seed}"
        + (f" early_step={config.early_step}" if config.early_step else "")
        + (f" sanity={config.sanity}" if config.sanity != "none" else "")
        + (f" rewind_step={config.rewind_step}" if config.method == "lottery" else ""))
    log_dir = os.path.join(config.out_dir, "tensorboard") if config.tensorboard else None
    if config.method == "lottery":
        lt = lottery_ticket(config, datasets)
        levels = max(row.level for row in lt.results())
        model, result = lt.model(levels), lottery_level_result(config, lt, levels)
        log(str(lt.results()))
        if log_dir:  # the trajectory: one step per level
            summaries = ResultSummaries(log_dir)
            for level in range(levels + 1):
                summaries.write(lottery_level_result(config, lt, level), step=level)
    elif uses_engine(config):
        model, result = _early_or_sanity(config, datasets, log)
        if log_dir:
            ResultSummaries(log_dir).write(result, step=config.epochs)
    else:
        model, result = _train_with_fit(config, datasets, log)

    log("")
    log(str(sparsity_report(model)))
    log(f"test accuracy: {result['test_accuracy']:.4f}  (loss {result['test_loss']:.4f}, "
        f"train time {result['train_time_s']:.1f} s, prune time {result['prune_time_s']:.1f} s)")
    if config.export_tflite:
        result["tflite"] = export_tflite(model, config, datasets, log)
    if config.out_dir:
        path = os.path.join(config.out_dir, RESULT_FILE)
        save_json_atomic(path, result)
        log(f"wrote {path}")
    return model, result


def _train_with_fit(config: Config, datasets, log):
    """dense, pruning at init and tfmot_gradual: prune (or not), then one ``fit``."""
    model = build_model(config, datasets)
    steps_per_epoch = datasets.steps_per_epoch
    total_steps = config.epochs * steps_per_epoch
    method_info: dict = {}
    caught: list = []
    t0 = time.perf_counter()
    if config.method in PAI_METHODS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LayerCollapseWarning)
            model = prune_at_init(model, config.method, config.sparsity, data=scoring_batch(config, datasets),
                                  loss=make_loss(), scope=config.scope, seed=config.seed)
        method_info = {"scope": config.scope, "per_class": config.per_class if config.method in DATA_METHODS else None}
    elif config.method == "tfmot_gradual":
        model, method_info = prune_tfmot_gradual(model, config, total_steps)
    prune_time = time.perf_counter() - t0
    for w in caught:
        if issubclass(w.category, LayerCollapseWarning):
            log(f"WARNING: {w.message}")
    initial = sparsity_report(model, check_paths=False)

    compile_model(model, config)
    callbacks = pruning_callbacks() if config.method != "dense" else []
    log_dir = os.path.join(config.out_dir, "tensorboard") if config.tensorboard else None
    if log_dir:
        callbacks += [keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0),
                      DensitySummaries(log_dir)]
    t0 = time.perf_counter()
    history = model.fit(datasets.train, epochs=config.epochs, callbacks=callbacks, verbose=config.verbose)
    train_time = time.perf_counter() - t0

    test_loss, test_acc = model.evaluate(datasets.test, verbose=0)
    report = sparsity_report(model)
    if log_dir:
        with tf.summary.create_file_writer(os.path.join(log_dir, "test")).as_default():
            tf.summary.scalar("test/accuracy", test_acc, step=config.epochs)
            tf.summary.scalar("test/loss", test_loss, step=config.epochs)
    hist = _history(history)
    result = _result(config, test_accuracy=test_acc, test_loss=test_loss,
                     train_accuracy=hist.get("accuracy", [None])[-1], train_loss=hist.get("loss", [None])[-1],
                     report=report.to_dict(), initial_sparsity=initial.sparsity, prune_time=prune_time,
                     train_time=train_time, steps=total_steps, steps_per_epoch=steps_per_epoch, history=hist,
                     method_info=method_info)
    return model, result
