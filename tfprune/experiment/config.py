"""One run's configuration (:class:`Config`) and its validation, generated from the registries.

``Config`` holds what every run shares (data, model, training length and optimizer, seed,
outputs); ``settings`` holds the procedure's own settings by name (``rewind_step`` for
``lottery``, ``scope``/``per_class`` for the scorer procedures, ...), checked against the
procedure's settings dataclass. The binaries' flags have the same names and defaults.

Example:
    >>> config = Config(dataset="synthetic", method="lottery", sparsity=0.75, settings={"rewind_step": 2})
    >>> config.procedure.name, config.typed_settings().rewind_step
    ('lottery', 2)
    >>> config_problems(Config(method="synflow", sparsity=0.9, settings={"rewind_step": 100}))
    ['rewind_step=100 applies to method=lottery only (method=synflow).']
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from typing import Any

from tfprune import scoring
from tfprune.experiment import data as tfp_data
from tfprune.experiment import flavor as tfp_flavor
from tfprune.experiment import models as tfp_models
from tfprune.experiment import registry

OPTIMIZERS = ("sgd", "momentum", "adam")
#: ``quantization`` values: the TFLite exporter's modes (kept in sync by a test).
QUANTIZATIONS = ("none", "float16", "dynamic", "int8", "smallest")
RESULT_FILE = "result.json"


@dataclasses.dataclass
class Config:
    """Everything a run depends on.

    Attributes:
        dataset: :func:`tfprune.experiment.data.names` (``fashion_mnist``, ``mnist5k``, ``digits``, ``synthetic``).
        model: :func:`tfprune.experiment.models.names` (``lenet_300_100``, ``conv2``, ...).
        method: a procedure (:func:`~tfprune.experiment.procedure_names`) or a registered scorer
            (shorthand for ``prune_at_init``/``early``/``sanity`` with that scorer).
        sparsity: fraction of prunable weights removed, in [0, 1); 0 for ``dense``.
        epochs, batch_size: training length; every method trains the same number of steps.
        lr, optimizer: ``sgd``, ``momentum`` (SGD, momentum 0.9) or ``adam``; constant rate.
        seed: seeds the initialization, the data order, the random scorer, the SNIP/GraSP batch.
        keras: 2 (tf_keras, the default) or 3 (Keras 3); backend: Keras 3's backend, ``tensorflow``,
            ``jax`` or ``torch`` (``tensorflow`` for keras=2). See :mod:`tfprune.experiment.flavor`.
        out_dir: where ``result.json`` (and TensorBoard logs, ``model.tflite``, run directories) go.
        export_tflite, quantization: export the trained model to a verified sparse ``.tflite``.
        tensorboard: write TensorBoard logs to ``out_dir/tensorboard``.
        max_train, max_test: keep the first examples of each split (quick runs).
        verbose: Keras ``fit`` verbosity (1: progress bar, 2: one line per epoch, 0: silent).
        dataset_options: extra options of :func:`tfprune.experiment.data.load` (``synthetic``'s shapes).
        settings: the procedure's settings by name (see ``--help`` or the procedure's dataclass).
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
    keras: int = 2
    backend: str = tfp_flavor.DEFAULT_BACKEND
    out_dir: "str | None" = None
    export_tflite: bool = False
    quantization: str = "none"
    tensorboard: bool = False
    max_train: "int | None" = None
    max_test: "int | None" = None
    verbose: int = 1
    dataset_options: "dict[str, Any]" = dataclasses.field(default_factory=dict)
    settings: "dict[str, Any]" = dataclasses.field(default_factory=dict)

    def replace(self, **changes) -> "Config":
        """A copy with ``changes`` applied (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_method(self, method: str, **changes) -> "Config":
        """A copy running ``method``, keeping only the settings that ``method``'s procedure has
        (so one set of flags can drive several methods: the demo, the sweep)."""
        changed = self.replace(method=method, **changes)
        own = registry.settings_fields(changed.procedure)
        return changed.replace(settings={k: v for k, v in changed.settings.items()
                                         if k in own and registry.applies(own[k], changed.scorer)})

    def total_steps(self) -> int:
        """Training steps of the run (``epochs`` × batches per epoch), known before loading any data."""
        return self.epochs * tfp_data.steps_per_epoch(self.dataset, self.batch_size, self.max_train,
                                                      **self.dataset_options)

    @property
    def procedure(self) -> registry.Procedure:
        return registry.resolve(self.method, self.settings)

    @property
    def scorer(self) -> "str | None":
        """The scorer of a scorer procedure (``--method=<scorer>`` or ``settings["scorer"]``)."""
        if not self.procedure.uses_scorer:
            return None
        return self.method if self.method in scoring.scorer_names() else self.settings.get("scorer")

    def typed_settings(self):
        """The procedure's settings dataclass, filled from ``settings`` (and the scorer shorthand)."""
        values = dict(self.settings)
        if self.procedure.uses_scorer:
            values["scorer"] = self.scorer
        return self.procedure.make_settings(values)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["dataset_options"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.dataset_options.items()}
        try:
            own = registry.settings_fields(self.procedure)
            out["settings"] = {k: v for k, v in dataclasses.asdict(self.typed_settings()).items()
                               if registry.applies(own[k], self.scorer)}
        except (TypeError, ValueError):
            pass  # an invalid config keeps what it was given (check_config explains)
        return out


def check_config(config: Config) -> Config:
    """Raises ``ValueError`` naming every bad field or combination (see :func:`config_problems`)."""
    problems = config_problems(config)
    if problems:
        raise ValueError("invalid training config: " + " ".join(problems))
    return config


def _enum(name, value, allowed):
    return None if value in allowed else f"{name}={value!r} is not one of {', '.join(allowed)}."


def _owners(name: str, owners, method: str) -> str:
    scorer_procs = {n for n in registry.procedure_names() if registry.get_procedure(n).uses_scorer}
    if set(owners) <= scorer_procs:
        where = (f"the scoring methods {', '.join(scoring.scorer_names())} (or method="
                 + "/".join(o for o in owners) + ")")
    else:
        where = "method=" + "/".join(owners)
    return where


def _scorers_for(field) -> "list[str]":
    return [name for name in scoring.scorer_names() if registry.applies(field, name)]


def settings_problems(config: Config, procedure: registry.Procedure) -> "list[str]":
    """Problems with ``config.settings``: unknown names, settings of other procedures given a
    non-default value, and each of the procedure's own fields against its allowed values."""
    problems = []
    everything = registry.all_settings_fields()
    own = registry.settings_fields(procedure)
    for name, value in config.settings.items():
        if name in own and not registry.applies(own[name], config.scorer) and value != own[name].default:
            problems.append(f"{name}={value} applies to the scorers {', '.join(_scorers_for(own[name]))} only "
                            f"(method={config.method}).")
        if name in own:
            continue
        if name not in everything:
            problems.append(f"settings: unknown setting {name!r}; the settings of method={config.method} are "
                            f"{', '.join(own) or 'none'}.")
        elif value != everything[name][0].default:
            problems.append(f"{name}={value} applies to {_owners(name, everything[name][1], config.method)} only "
                            f"(method={config.method}).")
    if procedure.uses_scorer and config.method in scoring.scorer_names() and config.settings.get("scorer") not in (
            None, "", config.method):
        problems.append(f"scorer={config.settings['scorer']!r} conflicts with method={config.method} (a scorer name "
                        "as the method is its own scorer).")
    try:
        settings = config.typed_settings()
    except (TypeError, ValueError) as e:
        return problems + [str(e)]
    for name, field in own.items():
        problem = registry.field_problem(field, getattr(settings, name))
        if problem:
            problems.append(problem)
    check = getattr(settings, "problems", None)
    if check is not None and not problems:
        problems.extend(check(config))
    return problems


def config_problems(config: Config) -> "list[str]":
    """Every problem with ``config`` as a sentence naming the field (empty list: valid)."""
    c = config
    problems = [p for p in (
        _enum("dataset", c.dataset, tfp_data.names()),
        _enum("model", c.model, tfp_models.names()),
        _enum("method", c.method, registry.method_names()),
        _enum("optimizer", c.optimizer, OPTIMIZERS),
        _enum("quantization", c.quantization, QUANTIZATIONS),
    ) if p]
    if not (isinstance(c.sparsity, (int, float)) and 0.0 <= c.sparsity < 1.0):
        problems.append(f"sparsity={c.sparsity!r} must be in [0, 1) (0.98 keeps 2% of the weights).")
    for name in ("epochs", "batch_size"):
        value = getattr(c, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            problems.append(f"{name}={value!r} must be an integer >= 1.")
    if not isinstance(c.seed, int) or isinstance(c.seed, bool) or c.seed < 0:
        problems.append(f"seed={c.seed!r} must be an integer >= 0.")
    for name in ("max_train", "max_test"):
        value = getattr(c, name)
        if value is not None and (not isinstance(value, int) or value < 1):
            problems.append(f"{name}={value!r} must be None or an integer >= 1.")
    if not (isinstance(c.lr, (int, float)) and math.isfinite(c.lr) and c.lr > 0):
        problems.append(f"lr={c.lr!r} must be a positive number.")
    if c.verbose not in (0, 1, 2):
        problems.append(f"verbose={c.verbose!r} must be 0, 1 or 2.")
    if c.quantization != "none" and not c.export_tflite:
        problems.append(f"quantization={c.quantization} needs export_tflite.")
    if (c.tensorboard or c.export_tflite) and not c.out_dir:
        problems.append("tensorboard and export_tflite write files: set out_dir.")
    if c.out_dir:
        problems.extend(out_dir_problems(c.out_dir))
    problems.extend(keras_problems(c))
    if c.method not in registry.method_names():
        return problems
    procedure = c.procedure
    problem = procedure_keras_problem(c.method, procedure, c.keras)
    if problem:
        problems.append(problem)
    if isinstance(c.sparsity, (int, float)):
        if not procedure.needs_sparsity and c.sparsity != 0:
            problems.append(f"method={c.method} trains the unpruned model: sparsity must be 0, got {c.sparsity}.")
        if procedure.needs_sparsity and c.sparsity == 0:
            problems.append(f"method={c.method} needs sparsity > 0 (the fraction of weights it prunes).")
    if procedure.needs_out_dir and not c.out_dir:
        problems.append(f"out_dir: method={procedure.name} keeps a resumable run directory; set out_dir.")
    return problems + settings_problems(c, procedure)


#: What runs on tf_keras only, and why.
KERAS2_ONLY = {
    "tensorboard": "the TensorBoard callbacks are tf_keras callbacks",
}


def keras_problems(c: Config) -> "list[str]":
    """The ``keras``/``backend`` pair (installed, compatible), and what needs keras=2."""
    return tfp_flavor.problems(c.keras, c.backend) + keras2_only_problems(
        c.keras, **{name: getattr(c, name) for name in KERAS2_ONLY})


def keras2_only_problems(keras, **outputs) -> "list[str]":
    """``export_tflite``/``tensorboard`` asked of a keras=3 run."""
    return [f"{name} needs keras=2 ({KERAS2_ONLY[name]})." for name, on in outputs.items() if on and keras == 3]


def procedure_keras_problem(method: str, procedure: registry.Procedure, keras) -> "str | None":
    """Why ``procedure`` (run by ``method``) does not run on ``keras`` (None: it does)."""
    if keras not in tfp_flavor.KERAS or keras in procedure.kerases:
        return None
    note = f": {procedure.keras_note}" if procedure.keras_note else ""
    return f"method={method} runs on keras={'/'.join(map(str, procedure.kerases))} only, not keras={keras}{note}."


def out_dir_problems(out_dir) -> "list[str]":
    """``out_dir`` must be a directory that exists or can be made, and be writable (checked by
    writing a temporary file in it, or in its nearest existing parent)."""
    path = os.path.abspath(os.fspath(out_dir))
    if os.path.exists(path) and not os.path.isdir(path):
        return [f"out_dir={out_dir!r} is a file; give a directory (it is created if missing)."]
    existing = path
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return [f"out_dir={out_dir!r} cannot be created: {existing!r} is a file."]
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        return [f"out_dir={out_dir!r} is not writable ({existing!r}: {e.strerror or e})."]
    return []


#: Config fields that do not change what a run trains (a rerun may change them).
OUTPUT_FIELDS = ("out_dir", "verbose", "tensorboard", "export_tflite", "quantization")
#: Fields added after results were first written, with the value those results had.
ADDED_FIELDS = {"keras": 2, "backend": "tensorflow"}


def stored_config(result: dict) -> dict:
    """The ``config`` of a stored result, with the fields it predates at the value it ran with:
    Config fields from :data:`ADDED_FIELDS`, and settings a procedure gained since (a new flag)
    at their default, the behaviour the result was trained with; settings that do not apply to
    its scorer (see :func:`tfprune.experiment.registry.setting`) are left out, as ``to_dict`` does."""
    config = {**ADDED_FIELDS, **result.get("config", {})}
    settings = config.get("settings")
    if isinstance(settings, dict) and config.get("method") in registry.method_names():
        try:
            fields = registry.settings_fields(registry.resolve(config["method"], settings))
        except ValueError:
            return config
        scorer = settings.get("scorer") or (config["method"] if config["method"] in scoring.scorer_names() else None)
        config["settings"] = {name: settings.get(name, field.default) for name, field in fields.items()
                              if registry.applies(field, scorer)}
    return config


def result_conflict(config: Config) -> "str | None":
    """Why ``config.out_dir`` cannot take this run: it holds the result of a different run (None:
    no result there, or one of this same configuration, which a rerun may replace or resume)."""
    previous = read_result(config.out_dir) if config.out_dir else None
    if previous is None:
        return None
    stored, current = stored_config(previous), config.to_dict()
    changed = [k for k in current if k not in OUTPUT_FIELDS and stored.get(k) != current[k]]
    if not changed:
        return None
    described = ", ".join(f"{k}={stored.get(k)!r}" for k in changed[:4])
    return (f"out_dir={config.out_dir!r} holds the result of another run ({described}); use another out_dir, "
            "or overwrite=True (--overwrite) to replace it.")


def read_result(out_dir: str) -> "dict | None":
    """The ``result.json`` of a finished run in ``out_dir``, or None if there is none."""
    path = os.path.join(out_dir, RESULT_FILE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)
