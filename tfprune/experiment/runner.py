"""One run, from a :class:`Config` to a result dict: seed, data, model, the procedure, outputs.

A run:

1. checks the config (:func:`check_config`), picks its Keras (:mod:`tfprune.experiment.flavor`:
   tf_keras, or Keras 3 on the config's backend, which this process must run), seeds Python,
   NumPy, TensorFlow and the backend (``keras.utils.set_random_seed(seed)``) and turns on TF op
   determinism for the run (off again afterwards if it was off);
2. loads ``dataset`` and builds ``model`` in that Keras (both seeded);
3. hands a :class:`RunContext` to the procedure ``method`` resolves to
   (:mod:`tfprune.experiment.procedures`), which prunes and trains and returns
   ``(trained model, result dict)`` built with :func:`make_result`;
4. prints the sparsity report and the test accuracy; with ``export_tflite`` exports the
   trained model (:mod:`tfprune.experiment.export`);
5. writes, atomically, the trained model with its masks: ``out_dir/model.h5`` for tf_keras (load
   it with :func:`tfprune.load_model`, export it with ``python -m tflite_export --model=...``) or
   ``out_dir/model.keras`` for Keras 3 (``keras.saving.load_model`` after ``import tfprune``);
   ``out_dir/ticket.npz`` (its masks, :func:`tfprune.lottery.load_ticket`),
   ``out_dir/init_weights.npz`` (the masked weights its training started from: with the ticket,
   the untrained subnetwork, :func:`tfprune.lottery.load_phase_weights`) and, last,
   ``out_dir/result.json``.

Determinism: two runs with the same config on the same machine and TensorFlow build give
bit-identical masks and metrics (tested). Across machines or CPU instruction sets (oneDNN
kernels) the floating-point sums can differ in the last bits; set ``TF_ENABLE_ONEDNN_OPTS=0``
for the most portable numbers.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import os
import platform
import shutil
import time
from typing import Any, Callable

import tensorflow as tf

from tfprune import scoring
from tfprune.experiment import data as tfp_data
from tfprune.experiment import flavor as tfp_flavor
from tfprune.experiment import models as tfp_models
from tfprune.experiment import registry
from tfprune.experiment.config import RESULT_FILE, Config, check_config, result_conflict
from tfprune.io import save_json_atomic
from tfprune.report import sparsity_report
from tfprune.spec import TrainingSpec, op_determinism

ENGINE_DIR = "run"  # the tfprune.lottery run directory inside out_dir (resumable)
MODEL_FILE = "model.h5"  # tf_keras: the trained model, wrappers included (tfprune.load_model; python -m tflite_export)
KERAS3_MODEL_FILE = "model.keras"  # Keras 3: the trained model with its masks (keras.saving.load_model)
TICKET_FILE = "ticket.npz"  # its masks with their architecture (tfprune.lottery.load_ticket / apply_ticket)
INIT_WEIGHTS_FILE = "init_weights.npz"  # the masked weights training started from (lottery.load_phase_weights)


def load_data(config: Config):
    return tfp_data.load(config.dataset, batch_size=config.batch_size, seed=config.seed,
                         max_train=config.max_train, max_test=config.max_test, **config.dataset_options)


def _keras(keras):
    if keras is None:
        from tfprune._keras import keras as tf_keras
        return tf_keras
    return keras


def make_optimizer(config: Config, keras=None):
    """The config's optimizer, of the Keras module ``keras`` (None: tf_keras)."""
    keras = _keras(keras)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.lr)
    if config.optimizer == "momentum":
        return keras.optimizers.SGD(config.lr, momentum=0.9)
    return keras.optimizers.SGD(config.lr)


def make_loss(keras=None):
    """The zoo's models output logits (a loss of the Keras module ``keras``; None: tf_keras)."""
    return _keras(keras).losses.SparseCategoricalCrossentropy(from_logits=True)


@dataclasses.dataclass
class RunContext:
    """What a procedure gets: the config, its typed settings, the data, its Keras (``flavor``:
    build models, optimizers and losses with ``flavor.keras``) and the run's helpers.

    ``start_weights``: a procedure may set the masked weights its trained model started from
    (``{"<layer>::<i>": array}``), written to ``init_weights.npz`` beside the ticket."""

    config: Config
    settings: Any
    datasets: Any
    log: Callable = print
    flavor: Any = None
    start_weights: "dict | None" = None
    strategy: Any = None  # a tf.distribute.Strategy the procedure trains under (None: the default)

    def __post_init__(self):
        if self.flavor is None:
            self.flavor = tfp_flavor.get(self.config)

    def build_model(self):
        """The zoo model of the config in its Keras, initialised from its seed (a fresh build every call)."""
        return tfp_models.build(self.config.model, self.datasets.input_shape, self.datasets.num_classes,
                                seed=self.config.seed, keras=self.flavor.keras)

    def make_loss(self):
        return make_loss(self.flavor.keras)

    def spec(self) -> TrainingSpec:
        """The training knobs of the config as the library's :class:`~tfprune.TrainingSpec`."""
        c, keras = self.config, self.flavor.keras
        return TrainingSpec(optimizer=lambda: make_optimizer(c, keras), loss=make_loss(keras), metrics=("accuracy",),
                            batch_size=c.batch_size, epochs=c.epochs, seed=c.seed, verbose=c.verbose,
                            deterministic=True, distribute=self.strategy)

    @property
    def log_dir(self) -> "str | None":
        return os.path.join(self.config.out_dir, "tensorboard") if self.config.tensorboard else None

    @property
    def run_dir(self) -> str:
        return os.path.join(self.config.out_dir, ENGINE_DIR)

    def scoring_batch(self):
        """The balanced batch a data-dependent scorer scores (``per_class`` examples per class), else None."""
        scorer = self.config.scorer
        if scorer is None or not scoring.get_scorer(scorer).needs_data:
            return None
        return self.datasets.balanced_batch(per_class=self.settings.per_class, seed=self.config.seed)


def versions(flavor=None) -> dict:
    """The versions behind a run (tf_keras's for a run of no given ``flavor``)."""
    import tfprune
    from tfprune._keras import keras as tf_keras
    return {"tfprune": tfprune.__version__, "tensorflow": tf.__version__, "tf_keras": tf_keras.__version__,
            **(flavor.versions() if flavor is not None else {}),
            "tfmot": importlib.metadata.version("tensorflow-model-optimization"),
            "python": platform.python_version(), "machine": platform.machine()}


def make_result(ctx: RunContext, *, test_accuracy, test_loss, train_accuracy, train_loss, report: dict,
                initial_sparsity, prune_time, train_time, steps, history, method_info) -> dict:
    """The result dict every procedure returns (and ``result.json`` holds)."""
    return {
        "config": ctx.config.to_dict(),
        "procedure": ctx.config.procedure.name,
        "test_accuracy": None if test_accuracy is None else float(test_accuracy),
        "test_loss": None if test_loss is None else float(test_loss),
        "train_accuracy": train_accuracy,
        "train_loss": train_loss,
        "target_sparsity": float(ctx.config.sparsity),
        "sparsity": report["sparsity"],
        "initial_sparsity": initial_sparsity,
        "collapsed": list(report["collapsed"]),
        "report": report,
        "prune_time_s": prune_time,
        "train_time_s": train_time,
        "steps": steps,
        "steps_per_epoch": ctx.datasets.steps_per_epoch,
        "history": history,
        "method_info": method_info,
        "tflite": None,
        "versions": versions(ctx.flavor),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _describe(config: Config, steps: int) -> str:
    """The run's first log line: what trains, how long, and every non-default setting."""
    defaults = {f.name: f.default for f in dataclasses.fields(config.procedure.settings)}
    extra = "".join(f" {k}={v}" for k, v in config.to_dict()["settings"].items()
                    if k != "scorer" and v != defaults.get(k))
    on = "" if config.keras == 2 else f" on Keras 3 ({config.backend})"
    return (f"training {config.model}{on} on {config.dataset}: method={config.method} sparsity={config.sparsity} "
            f"epochs={config.epochs} ({steps} steps) seed={config.seed}{extra}")


def _check_strategy(config: Config, strategy) -> None:
    if strategy is None:
        return
    name = type(strategy).__name__
    if not config.procedure.distributes:
        raise ValueError(f"strategy: got a {name} with method={config.method}; allowed: no strategy (the procedures "
                         "that train under one: "
                         f"{', '.join(p for p in registry.procedure_names() if registry.get_procedure(p).distributes)}).")
    if config.keras != 2:
        raise ValueError(f"strategy: got a {name} with keras={config.keras}; allowed: a strategy with keras=2 "
                         "(tf_keras) only.")


def _start(config: Config, log, strategy=None) -> RunContext:
    """Picks the Keras, seeds and loads the data: the context a procedure runs in."""
    _check_strategy(config, strategy)
    flavor = tfp_flavor.get(config)
    flavor.clear_session()
    flavor.seed(config.seed)
    datasets = load_data(config)
    log(_describe(config, config.epochs * datasets.steps_per_epoch))
    return RunContext(config, config.typed_settings(), datasets, log, flavor, strategy=strategy)


def trajectory(config: Config, *, log=print) -> "list[dict]":
    """The result of every level of a level-by-level procedure (``lottery``, ``finetune``) trained
    to ``config.sparsity``: the sweep's cells of such a method come from one of these per seed."""
    check_config(config)
    if config.procedure.trajectory is None:
        raise ValueError(f"method: {config.method} has no trajectory (it trains one model per sparsity).")
    with _out_dir(config, overwrite=False), op_determinism():
        return config.procedure.trajectory(_start(config, log))


#: What a run writes in ``out_dir`` (``overwrite=True`` removes these first).
OUTPUTS = (RESULT_FILE, MODEL_FILE, KERAS3_MODEL_FILE, TICKET_FILE, INIT_WEIGHTS_FILE, "model.tflite", ENGINE_DIR,
           "tensorboard")


@contextlib.contextmanager
def _out_dir(config: Config, overwrite: bool):
    """Claims ``config.out_dir`` for the run: refuses one holding another run's result (unless
    ``overwrite``: its outputs are removed), creates it, and removes it again if the run fails
    before writing anything there."""
    if not config.out_dir:
        yield
        return
    conflict = result_conflict(config)
    if conflict and not overwrite:
        raise FileExistsError(conflict)
    if conflict:
        for name in OUTPUTS:
            path = os.path.join(config.out_dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)
    created = not os.path.isdir(config.out_dir)
    os.makedirs(config.out_dir, exist_ok=True)
    try:
        yield
    except BaseException:
        if created and not os.listdir(config.out_dir):
            os.rmdir(config.out_dir)
        raise


def run(config: Config, *, log=print, overwrite: bool = False, strategy=None) -> dict:
    """Trains, evaluates and (optionally) exports one configuration; returns the result dict."""
    return train(config, log=log, overwrite=overwrite, strategy=strategy)[1]


def train(config: Config, *, log=print, overwrite: bool = False, strategy=None):
    """Like :func:`run`, but returns ``(trained model, result dict)``.

    An ``out_dir`` holding the result of a *different* run is refused unless ``overwrite`` (a
    rerun of the same configuration is fine: it replaces the result, or resumes a run directory).

    The dict is also written to ``config.out_dir/result.json`` (atomically) when ``out_dir`` is
    set. Keys: ``config``, ``procedure``, ``test_accuracy``, ``test_loss``, ``train_accuracy``,
    ``train_loss``, ``sparsity`` (measured), ``target_sparsity``, ``collapsed`` (layer names),
    ``report`` (per-layer rows), ``prune_time_s``, ``train_time_s``, ``steps``, ``history``,
    ``method_info``, ``tflite`` (export report or None), ``versions``.

    Procedures on :mod:`tfprune.lottery`'s resumable engine (``lottery``, ``finetune``,
    ``early``, ``sanity``) keep their run directory in ``out_dir/run``: rerun the same config to
    continue an interrupted run.

    ``strategy``: a ``tf.distribute.Strategy`` (:func:`tfprune.lottery.distribute.make_strategy`)
    the procedures on the engine train under (tf_keras only; others refuse it). Under a
    multi-worker strategy every worker runs this with the same config and ``out_dir`` (a
    directory all of them see); the chief writes the run directory and the outputs.
    """
    check_config(config)
    with _out_dir(config, overwrite), op_determinism():
        ctx = _start(config, log, strategy)
        model, result = config.procedure.run(ctx)
        _finish(ctx, model, result)
    return model, result


def _finish(ctx: RunContext, model, result: dict) -> None:
    """Prints the report; exports; writes the model, its ticket and (last) ``result.json``."""
    config, log = ctx.config, ctx.log
    log("")
    log(str(sparsity_report(model)))
    log(f"test accuracy: {result['test_accuracy']:.4f}  (loss {result['test_loss']:.4f}, "
        f"train time {result['train_time_s']:.1f} s, prune time {result['prune_time_s']:.1f} s)")
    from tfprune.lottery.distribute import is_chief

    if not is_chief(ctx.strategy):  # another worker of a multi-worker run: the chief writes the outputs
        return
    if config.export_tflite:
        from tfprune.experiment.export import export_tflite
        result["tflite"] = export_tflite(model, config, ctx.datasets, log)
    if config.out_dir:
        save_model(model, config.out_dir, ctx.flavor, ctx.start_weights)
        path = os.path.join(config.out_dir, RESULT_FILE)
        save_json_atomic(path, result)
        written = [ctx.flavor.model_file, TICKET_FILE] + ([INIT_WEIGHTS_FILE] if ctx.start_weights else [])
        log(f"wrote {path} (and {', '.join(written)})")


def save_model(model, out_dir: str, flavor=None, start_weights: "dict | None" = None) -> None:
    """The trained model with its masks (``model.h5``, tf_keras; ``model.keras``, Keras 3),
    ``ticket.npz`` and, given ``start_weights``, ``init_weights.npz``, each atomically."""
    from tfprune import get_masks, lottery
    from tfprune.io import atomic_path, save_npz_atomic

    flavor = flavor or tfp_flavor.get(Config())
    with atomic_path(os.path.join(out_dir, flavor.model_file)) as tmp:
        flavor.save(model, tmp)
    lottery.save_ticket(os.path.join(out_dir, TICKET_FILE), get_masks(model), model)
    if start_weights:
        save_npz_atomic(os.path.join(out_dir, INIT_WEIGHTS_FILE), start_weights, checksum=True)
