"""absl flags of the binaries, generated from :class:`Config` and the registries.

Every ``Config`` field is a flag of the same name and default, and so is every field of every
registered procedure's settings dataclass (with its help text, allowed values and bounds);
``--method`` takes any procedure or registered scorer. :func:`config_from_flags` copies the
values back by name. A bad value or combination stops the binary before anything is built,
with one line naming the flag (the same sentences as :func:`check_config`).

``--keras=3 --backend=jax|torch|tensorflow`` runs on Keras 3 (``--keras=2``, tf_keras, is the
default). Keras reads its backend once per process, when ``keras`` or TensorFlow is first
imported, so a binary calls :func:`select_keras` on its command line before anything imports
them (it sets ``KERAS_BACKEND``); :func:`tfprune.experiment.flavor.select` checks it again when
the run starts.

``--plugin=MODULE`` (repeatable) imports a module of yours before the flags are defined, so
that the scorers and procedures it registers are ``--method`` values, e.g.::

    python examples/train.py --plugin=my_scorers --method=my_scorer --sparsity=0.9

``--strategy=mirrored|multi_worker`` (:func:`define_strategy_flags`) trains every built-in
procedure (tf_keras) under a ``tf.distribute`` strategy (``multi_worker`` reads ``TF_CONFIG``;
``--cpu_replicas=N`` mirrors over N logical CPU devices, for trying it on one machine); see
docs/distributed_training.md.

Both definers are idempotent, so binaries imported into one process (tests) share the flags.
"""
from __future__ import annotations

import dataclasses
import importlib
import os
import signal
import sys
import threading
import time

from absl import flags

from tfprune.experiment import config as cfg
from tfprune.experiment import data as tfp_data
from tfprune.experiment import flavor as tfp_flavor
from tfprune.experiment import models as tfp_models
from tfprune.experiment import registry

DEFAULTS = cfg.Config()
#: Config fields that are not flags (API only).
NOT_FLAGS = ("dataset_options", "settings")
#: The flags of one run only (the sweep has lists instead).
RUN_FLAGS = ("method", "sparsity", "seed", "export_tflite", "quantization", "tensorboard")
_HELP = {
    "dataset": "dataset (tfprune.experiment.data).", "model": "model (tfprune.experiment.models).",
    "epochs": "training epochs (every method trains the same steps).",
    "batch_size": "training and test batch size.", "lr": "learning rate (constant).",
    "optimizer": "sgd, momentum (SGD with momentum 0.9) or adam.",
    "max_train": "keep only the first N training examples (quick runs).",
    "max_test": "keep only the first N test examples (quick runs).",
    "verbose": "Keras fit verbosity: 1 progress bar, 2 one line/epoch, 0 quiet.",
    "sparsity": "fraction of prunable weights removed, in [0, 1).",
    "seed": "seed of the initialization, data order and scorers.",
    "keras": "2: tf_keras (TF-MOT's Keras, on TensorFlow); 3: Keras 3 on --backend.",
    "backend": "Keras 3 backend (with --keras=3; sets KERAS_BACKEND for the run).",
    "export_tflite": "export the trained model to a verified sparse .tflite.",
    "quantization": "TFLite quantization (with --export_tflite).",
    "tensorboard": "write TensorBoard logs to out_dir/tensorboard.",
}


def _argv_value(argv, name: str) -> "str | None":
    """The last value of ``--name=v`` / ``--name v`` (or one dash) in ``argv`` (before ``--``)."""
    value = None
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        for dashes in ("--", "-"):
            if arg.startswith(f"{dashes}{name}="):
                value = arg.split("=", 1)[1]
            elif arg == f"{dashes}{name}" and i + 1 < len(argv):
                value = argv[i + 1]
    return value


def select_keras(argv=None) -> None:
    """For ``--keras=3`` in ``argv`` (default ``sys.argv``), sets ``KERAS_BACKEND`` to ``--backend``
    (default tensorflow) before anything imports Keras: call it first in a binary. Bad values
    are left to the flag parser, which names the flag, the value and what is allowed."""
    argv = sys.argv if argv is None else argv
    if _argv_value(argv, "keras") != "3":
        return
    backend = _argv_value(argv, "backend") or tfp_flavor.DEFAULT_BACKEND
    if backend in tfp_flavor.BACKENDS:
        tfp_flavor.select(3, backend)


def plugin_modules(argv) -> "list[str]":
    """The ``--plugin`` values in ``argv`` (``--plugin=m`` or ``--plugin m``)."""
    out = []
    for i, arg in enumerate(argv):
        if arg.startswith("--plugin="):
            out.append(arg.split("=", 1)[1])
        elif arg == "--plugin" and i + 1 < len(argv):
            out.append(argv[i + 1])
    return out


def import_plugins(argv=None) -> "list[str]":
    """Imports every ``--plugin`` module named in ``argv`` (default ``sys.argv``); a module that
    cannot be imported stops the binary with one line naming it."""
    names = plugin_modules(sys.argv if argv is None else argv)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as e:  # noqa: BLE001 - reported as a flag error, one line
            raise SystemExit(f"FATAL Flags parsing error: --plugin={name}: cannot import it ({type(e).__name__}: "
                             f"{e}); give an importable module name (on PYTHONPATH or in the current directory).")
    return names


def _define_setting(name, field, owners, fv):
    meta = field.metadata
    kind = registry._kind(field)
    help_ = meta.get("help", "") + f" [{', '.join(owners)}]"
    choices = meta.get("choices")
    if choices is not None:
        choices = list(choices() if callable(choices) else choices)
        if field.default not in choices:  # e.g. scorer="" (set by --method=<scorer>)
            flags.DEFINE_string(name, field.default, help_ + f" One of: {', '.join(choices)}.", **fv)
        else:
            flags.DEFINE_enum(name, field.default, choices, help_, **fv)
    elif kind is int:
        flags.DEFINE_integer(name, field.default, help_, lower_bound=meta.get("minimum"), **fv)
    elif kind is float:
        flags.DEFINE_float(name, field.default, help_, **fv)
        if meta.get("minimum") is not None or meta.get("maximum") is not None:
            bad = registry.bounds_problem(field, float("inf") if meta.get("maximum") is not None else float("-inf"))
            flags.register_validator(name, lambda v, f=field: registry.bounds_problem(f, v) is None,
                                     message=f"--{name} {bad}.", **fv)
    elif kind is bool:
        flags.DEFINE_bool(name, field.default, help_, **fv)
    else:
        flags.DEFINE_string(name, field.default, help_, **fv)


def define_common_flags(flag_values=flags.FLAGS, *, out_dir_help: str = "output directory") -> None:
    """The flags every binary takes: data, model, training, out_dir, and every procedure setting."""
    if "dataset" in flag_values:
        return
    fv = {"flag_values": flag_values}
    d = DEFAULTS
    flags.DEFINE_enum("dataset", d.dataset, list(tfp_data.names()), _HELP["dataset"], **fv)
    flags.DEFINE_enum("model", d.model, list(tfp_models.names()), _HELP["model"], **fv)
    flags.DEFINE_integer("epochs", d.epochs, _HELP["epochs"], lower_bound=1, **fv)
    flags.DEFINE_integer("batch_size", d.batch_size, _HELP["batch_size"], lower_bound=1, **fv)
    flags.DEFINE_float("lr", d.lr, _HELP["lr"], **fv)
    flags.DEFINE_enum("optimizer", d.optimizer, list(cfg.OPTIMIZERS), _HELP["optimizer"], **fv)
    flags.DEFINE_integer("keras", d.keras, _HELP["keras"], **fv)
    flags.register_validator("keras", lambda v: v in tfp_flavor.KERAS,
                             message="--keras must be 2 (tf_keras) or 3 (Keras 3).", **fv)
    flags.DEFINE_enum("backend", d.backend, list(tfp_flavor.BACKENDS), _HELP["backend"], **fv)

    def check_keras(values):  # (before the binaries' combination check: the short message comes first)
        problems = tfp_flavor.problems(values["keras"], values["backend"])
        if problems:
            raise flags.ValidationError(" ".join("--" + p for p in problems))
        return True

    flags.register_multi_flags_validator(["keras", "backend"], check_keras, **fv)
    flags.DEFINE_string("out_dir", None, out_dir_help, **fv)
    flags.DEFINE_integer("max_train", None, _HELP["max_train"], lower_bound=1, **fv)
    flags.DEFINE_integer("max_test", None, _HELP["max_test"], lower_bound=1, **fv)
    flags.DEFINE_integer("verbose", d.verbose, _HELP["verbose"], lower_bound=0, upper_bound=2, **fv)
    flags.DEFINE_multi_string("plugin", [], "import this module first (repeatable): the scorers and procedures "
                              "it registers become --method values.", **fv)
    flags.register_validator("lr", lambda v: v > 0, message="--lr must be > 0.", **fv)
    for name, (field, owners) in registry.all_settings_fields().items():
        _define_setting(name, field, owners, fv)


#: ``--strategy`` values: :data:`tfprune.lottery.distribute.STRATEGIES` (named here: defining the flags
#: imports no TensorFlow, which ``tfprune.lottery`` does; a test checks that both agree).
STRATEGIES = ("none", "mirrored", "multi_worker")


def define_strategy_flags(flag_values=flags.FLAGS) -> None:
    """``--strategy`` and ``--cpu_replicas`` (:mod:`tfprune.lottery.distribute`)."""
    if "strategy" in flag_values:
        return
    fv = {"flag_values": flag_values}
    flags.DEFINE_enum("strategy", "none", list(STRATEGIES), "tf.distribute strategy to train under (every "
                      "built-in method, tf_keras): mirrored (this machine's GPUs, or "
                      "--cpu_replicas) or multi_worker (the cluster in TF_CONFIG; the chief writes the run "
                      "directory, which every worker must see).", **fv)
    flags.DEFINE_integer("cpu_replicas", None, "with --strategy=mirrored: split the CPU into this many logical "
                         "devices and mirror over them (to try a strategy on one machine).", lower_bound=1, **fv)
    flags.register_multi_flags_validator(
        ["strategy", "cpu_replicas"], lambda v: v["cpu_replicas"] is None or v["strategy"] == "mirrored",
        message="--cpu_replicas needs --strategy=mirrored.", **fv)


def strategy_from_flags(flag_values=flags.FLAGS):
    """The strategy ``--strategy`` names (None for ``none``); call it before anything runs TensorFlow."""
    from tfprune.lottery import distribute

    return distribute.make_strategy(flag_values["strategy"].value, flag_values["cpu_replicas"].value)


def define_run_flags(flag_values=flags.FLAGS) -> None:
    """The flags of one training run (``examples/train.py``) and their combination check."""
    define_common_flags(flag_values, out_dir_help="writes result.json (and TensorBoard logs, .tflite) here; default "
                        "runs/<dataset>-<model>-<method>-s<sparsity>-seed<seed>.")
    define_strategy_flags(flag_values)
    if "method" in flag_values:
        return
    fv = {"flag_values": flag_values}
    d = DEFAULTS
    methods = registry.method_names()
    flags.DEFINE_enum("method", d.method, list(methods), "pruning method: " + "; ".join(
        f"{p}: {registry.get_procedure(p).description}" for p in registry.procedure_names())
        + "; or a registered scorer name (prune_at_init with it).", **fv)
    flags.DEFINE_float("sparsity", d.sparsity, _HELP["sparsity"], lower_bound=0.0, **fv)
    flags.DEFINE_integer("seed", d.seed, _HELP["seed"], lower_bound=0, **fv)
    flags.DEFINE_bool("export_tflite", d.export_tflite, _HELP["export_tflite"], **fv)
    flags.DEFINE_enum("quantization", d.quantization, list(cfg.QUANTIZATIONS), _HELP["quantization"], **fv)
    flags.DEFINE_bool("tensorboard", d.tensorboard, _HELP["tensorboard"], **fv)
    flags.DEFINE_bool("overwrite", False, "replace the outputs of a different run found in --out_dir (without it, "
                      "such an out_dir is refused; a rerun of the same flags resumes or replaces).", **fv)
    flags.register_validator("sparsity", lambda v: v < 1.0,
                             message="--sparsity must be < 1 (0.98 keeps 2% of the weights).", **fv)

    def check_keras(values):  # (before the combination check: the short message comes first)
        problems = cfg.keras2_only_problems(values["keras"], tensorboard=values["tensorboard"])
        if values["method"] in registry.method_names():
            problem = cfg.procedure_keras_problem(values["method"], registry.resolve(values["method"], {}),
                                                  values["keras"])
            problems += [problem] if problem else []
        if problems:
            raise flags.ValidationError(" ".join("--" + p for p in problems))
        return True

    flags.register_multi_flags_validator(["keras", "method", "tensorboard"], check_keras, **fv)

    def check_combination(values):
        config = _config(values, out_dir=values.get("out_dir") or "<default out_dir>")
        problems = cfg.config_problems(config)
        if problems:
            raise flags.ValidationError(" ".join("--" + p for p in problems))
        return True

    names = [n for n in _config_flag_names() + list(registry.all_settings_fields()) if n in flag_values]
    flags.register_multi_flags_validator(names, check_combination, **fv)


def _config_flag_names() -> "list[str]":
    return [f.name for f in dataclasses.fields(cfg.Config) if f.name not in NOT_FLAGS]


def _config(values, **overrides) -> cfg.Config:
    """A Config from flag values: Config fields by name, settings that differ from their default."""
    fields = {n: values[n] for n in _config_flag_names() if n in values}
    settings = {n: values[n] for n, (field, _) in registry.all_settings_fields().items()
                if n in values and values[n] != field.default}
    fields.update(overrides)
    return cfg.Config(**fields, settings=settings)


def run_binary(main) -> None:
    """``absl.app.run(main)``, with the errors a user can cause as one line and Ctrl-C as a clean exit.

    ``ValueError``/``TypeError``/``OSError`` from a run (a bad combination found late, an out_dir
    holding another run, a disk full, ...) print ``error: <message>`` and exit with status 2;
    ``TFPRUNE_TRACEBACK=1`` shows the traceback instead. Ctrl-C exits with status 130 and says what
    is on disk: every file is written atomically, so nothing is half-written.
    """
    from absl import app

    interrupt = {"at": None, "handled": False}

    def redeliver():
        # An interrupt that lands while a gc callback runs is swallowed ("Exception ignored in
        # <function _xla_gc_callback>": TensorFlow imports JAX when it is installed, and JAX
        # registers one). Send it again once, unless it was handled within half a second (a
        # second interrupt while the first unwinds is harmless: every write removes its
        # temporary file on any exception).
        time.sleep(0.5)
        if not interrupt["handled"]:
            signal.raise_signal(signal.SIGINT)

    def on_sigint(signum, frame):
        if interrupt["at"] is None:
            interrupt["at"] = time.monotonic()
            threading.Thread(target=redeliver, daemon=True).start()
        raise KeyboardInterrupt

    def guarded(argv):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, on_sigint)
        try:
            try:
                return main(argv)
            except Exception as e:
                # The interrupt can surface as another exception: TensorFlow's tf_stack asserts
                # ("Concurrent access?") when a KeyboardInterrupt unwinds through its context.
                if interrupt["at"] is not None:
                    raise KeyboardInterrupt from e
                raise
        except KeyboardInterrupt:
            interrupt["handled"] = True
            print("\ninterrupted: every file written so far is complete (atomic writes); rerun the same command "
                  "to resume a resumable run (lottery, finetune, early, sanity, sweeps).", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
            # Every file is closed by now (the run's finally blocks ran while the interrupt unwound);
            # TensorFlow's runtime threads, stopped mid-step, can crash the interpreter's normal
            # shutdown, so leave without it.
            os._exit(130)
        except (ValueError, TypeError, OSError) as e:
            if os.environ.get("TFPRUNE_TRACEBACK"):
                raise
            message = " ".join(str(e).split())
            print(f"error: {message}  (TFPRUNE_TRACEBACK=1 shows the traceback)", file=sys.stderr)
            return 2

    app.run(guarded)


def grid_settings(flag_values, quick: "dict | None", lists) -> "tuple[cfg.Config, dict]":
    """``(base Config, {name: list flag value})`` of a grid binary (the sweep, Missing the Mark):
    with ``quick``, its values replace those of the flags not given on the command line; the runs'
    verbosity defaults to 0 (the binary prints one line per cell)."""
    overrides, values = {}, {name: flag_values[name].value for name in lists}
    for name, value in (quick or {}).items():
        if not flag_values[name].present:
            (values if name in values else overrides)[name] = value
    overrides.setdefault("verbose", flag_values["verbose"].value if flag_values["verbose"].present else 0)
    return config_from_flags(flag_values, **overrides), values


def config_from_flags(flag_values=flags.FLAGS, **overrides) -> cfg.Config:
    """A :class:`Config` from every defined flag named like one of its fields or settings."""
    names = _config_flag_names() + list(registry.all_settings_fields())
    return _config({n: flag_values[n].value for n in names if n in flag_values}, **overrides)
