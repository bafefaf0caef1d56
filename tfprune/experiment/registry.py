"""Procedures: registered by name, each with a typed settings dataclass.

A *procedure* is one way of producing a trained (pruned) model — ``dense``, ``prune_at_init``,
``early``, ``sanity``, ``lottery``, ``finetune``, ``tfmot_gradual`` — and a registered client of
the library core (it calls :func:`tfprune.prune_at_init`, :mod:`tfprune.lottery`, TF-MOT, ...;
it never re-implements them). Its settings are a frozen dataclass whose fields carry their
default, help text and allowed values (:func:`setting`); the binaries' flags, :class:`Config`
validation and the sweep grid are generated from these registries, so a new procedure is one
file plus one :func:`register_procedure` call (and a new scorer, one
:func:`tfprune.register_scorer` call: every registered scorer is a ``--method`` value).

``--method`` takes a procedure name or a scorer name; a scorer name is shorthand for the
scorer procedures (:func:`resolve`): ``--method=snip`` is ``prune_at_init`` with scorer ``snip``,
``early`` when ``--early_step`` > 0, ``sanity`` when ``--sanity`` is set.

Example:
    >>> sorted(procedure_names())[:3]
    ['dense', 'early', 'finetune']
    >>> resolve("synflow", {}).name, resolve("synflow", {"early_step": 5}).name
    ('prune_at_init', 'early')
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

from tfprune import scoring

__all__ = ["Procedure", "all_settings_fields", "applies", "bounds_problem", "field_problem", "get_procedure", "method_names",
           "procedure_names", "register_procedure", "resolve", "setting", "settings_fields", "unregister_procedure"]

_PROCEDURES: "dict[str, Procedure]" = {}


def setting(default, help: str, *, choices: "Callable[[], tuple] | tuple | None" = None,  # noqa: A002
            minimum=None, maximum=None, open_minimum: bool = False, open_maximum: bool = False,
            for_scorers: "Callable[[str], bool] | None" = None):
    """A settings field: its default, help text (the flag's help) and allowed values.

    ``choices`` may be a function (evaluated when checked, so that registries can grow);
    ``minimum``/``maximum`` bound numbers (``open_*``: the bound itself is excluded);
    ``for_scorers(scorer name) -> bool``: the field only applies to some scorers of a scorer
    procedure (the mask searches' settings): elsewhere it is not part of the run's configuration.
    """
    return dataclasses.field(default=default, metadata={
        "help": help, "choices": choices, "minimum": minimum, "maximum": maximum, "open_minimum": open_minimum,
        "open_maximum": open_maximum, "for_scorers": for_scorers})


def applies(field, scorer: "str | None") -> bool:
    """Whether the settings ``field`` is part of a run with ``scorer`` (see :func:`setting`)."""
    only = field.metadata.get("for_scorers")
    return only is None or (scorer is not None and only(scorer))


def bounds_problem(field, value) -> "str | None":
    """``"must be in (0, 1)"`` (or ``">= 1"``) when ``value`` is outside the field's bounds, else None."""
    meta = field.metadata
    low, high = meta.get("minimum"), meta.get("maximum")
    low_bad = low is not None and (value <= low if meta.get("open_minimum") else value < low)
    high_bad = high is not None and (value >= high if meta.get("open_maximum") else value > high)
    if not (low_bad or high_bad):
        return None
    if low is not None and high is not None:
        return (f"must be in {'(' if meta.get('open_minimum') else '['}{low:g}, {high:g}"
                f"{')' if meta.get('open_maximum') else ']'}")
    if low is not None:
        return f"must be {'>' if meta.get('open_minimum') else '>='} {low:g}"
    return f"must be {'<' if meta.get('open_maximum') else '<='} {high:g}"


@dataclasses.dataclass(frozen=True)
class Procedure:
    """A registered procedure.

    Attributes:
        name: the ``--method`` value.
        settings: a frozen dataclass of :func:`setting` fields (``NoSettings`` for none); an optional
            ``problems(self, config) -> list[str]`` method adds checks across fields.
        run: ``run(ctx) -> (trained model, result dict)`` with a :class:`tfprune.experiment.runner.RunContext`.
        description: one line for ``--help``.
        needs_sparsity: the run prunes, so ``sparsity`` must be > 0 (``dense``: must be 0).
        uses_scorer: the settings have a ``scorer`` field (any registered scorer).
        needs_out_dir: the run keeps a resumable run directory under ``out_dir``.
        grid: how the sweep runs it: ``"reference"`` (once per seed at sparsity 0), ``"cell"``
            (one run per sparsity), ``"trajectory"`` (one run per seed whose levels give every
            cell, see ``trajectory``) or ``None`` (not in the default grid).
        default_grid: with a ``grid``, whether it is in the sweep's default ``--methods`` (``obd``
            is not: it runs when asked for).
        trajectory: for ``grid="trajectory"``: ``trajectory(config, sparsities, log) -> {sparsity: result}``.
        kerases: the ``Config.keras`` values it runs on (2: tf_keras, 3: Keras 3); ``keras_note``
            says why not the others (a config asking for another is refused with it).
        distributes: it trains under the run's ``tf.distribute`` strategy (``RunContext.strategy``)
            when one is given (the engine procedures, and the ``fit`` ones); a run of any other
            procedure with a strategy is refused rather than trained on one device.
    """

    name: str
    settings: type
    run: Callable
    description: str
    needs_sparsity: bool = True
    uses_scorer: bool = False
    needs_out_dir: bool = False
    grid: "str | None" = "cell"
    trajectory: "Callable | None" = None
    default_grid: bool = True
    kerases: "tuple[int, ...]" = (2, 3)
    keras_note: str = ""
    distributes: bool = False

    def __post_init__(self):
        if not dataclasses.is_dataclass(self.settings):
            raise TypeError(f"settings: expected a dataclass of setting(...) fields, got {self.settings!r}.")
        if self.grid not in ("reference", "cell", "trajectory", None):
            raise ValueError(f"grid: got {self.grid!r}; allowed: 'reference', 'cell', 'trajectory', None.")
        if self.grid == "trajectory" and self.trajectory is None:
            raise ValueError("trajectory: grid='trajectory' needs a trajectory(config, sparsities, log) function.")

    def make_settings(self, values: Mapping[str, Any]):
        """The typed settings from ``values`` (missing fields: defaults)."""
        names = {f.name for f in dataclasses.fields(self.settings)}
        return self.settings(**{k: v for k, v in values.items() if k in names})


def register_procedure(procedure: Procedure, *, replace: bool = False) -> Procedure:
    """Adds ``procedure`` to the registry (its settings fields become flags of the binaries)."""
    if not isinstance(procedure, Procedure):
        raise TypeError(f"procedure: expected a tfprune.experiment.Procedure, got {type(procedure).__name__}.")
    if (procedure.name in _PROCEDURES or procedure.name in scoring.scorer_names()) and not replace:
        raise ValueError(f"procedure: the name {procedure.name!r} is taken (procedures: "
                         f"{', '.join(procedure_names())}; scorers: {', '.join(scoring.scorer_names())}).")
    for field in dataclasses.fields(procedure.settings):
        _check_consistent(field, procedure.name)
    _PROCEDURES[procedure.name] = procedure
    return procedure


def _check_consistent(field, owner):
    """A settings field shared by several procedures (``scope``...) must mean the same everywhere:
    it is one flag."""
    for other in _PROCEDURES.values():
        for f in dataclasses.fields(other.settings):
            if f.name == field.name and (f.default != field.default or f.type != field.type):
                raise ValueError(f"settings: {owner}.{field.name} (default {field.default!r}) conflicts with "
                                 f"{other.name}.{f.name} (default {f.default!r}); one name is one flag.")


def unregister_procedure(name: str) -> None:
    """Removes a registered procedure (tests, notebooks)."""
    if _PROCEDURES.pop(name, None) is None:
        raise ValueError(f"name: no procedure named {name!r}; registered: {', '.join(procedure_names())}.")


def procedure_names() -> "tuple[str, ...]":
    return tuple(_PROCEDURES)


def get_procedure(name: str) -> Procedure:
    if name not in _PROCEDURES:
        raise ValueError(f"method: got {name!r}; allowed: {', '.join(method_names())}.")
    return _PROCEDURES[name]


def method_names() -> "tuple[str, ...]":
    """Every ``--method`` value: the procedures, then every registered scorer."""
    return procedure_names() + tuple(n for n in scoring.scorer_names() if n not in _PROCEDURES)


def resolve(method: str, settings: Mapping[str, Any]) -> Procedure:
    """The procedure ``method`` runs: a procedure name, or a scorer name (``sanity`` when
    ``settings["sanity"]`` is set, ``early`` when ``settings["early_step"]`` > 0, else
    ``prune_at_init``)."""
    if method in _PROCEDURES:
        return _PROCEDURES[method]
    if method in scoring.scorer_names():
        if settings.get("sanity", "none") not in (None, "none"):
            return get_procedure("sanity")
        if settings.get("early_step") or 0:
            return get_procedure("early")
        return get_procedure("prune_at_init")
    return get_procedure(method)  # the error listing every method


def settings_fields(procedure: Procedure) -> "dict[str, dataclasses.Field]":
    return {f.name: f for f in dataclasses.fields(procedure.settings)}


def all_settings_fields() -> "dict[str, tuple[dataclasses.Field, tuple[str, ...]]]":
    """``{field name: (field, names of the procedures that have it)}`` over the registry."""
    out: "dict[str, tuple]" = {}
    for proc in _PROCEDURES.values():
        for f in dataclasses.fields(proc.settings):
            field, owners = out.get(f.name, (f, ()))
            out[f.name] = (field, owners + (proc.name,))
    return out


def field_problem(field, value) -> "str | None":
    """Why ``value`` is not allowed for the settings ``field`` (None: allowed)."""
    meta, name, kind = field.metadata, field.name, _kind(field)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        return f"{name}={value!r} must be an integer."
    if kind is float and (isinstance(value, bool) or not isinstance(value, (int, float)) or value != value):
        return f"{name}={value!r} must be a number."
    if kind is bool and not isinstance(value, bool):
        return f"{name}={value!r} must be true or false."
    choices = meta.get("choices")
    choices = choices() if callable(choices) else choices
    if choices is not None and value not in choices:
        return f"{name}={value!r} is not one of {', '.join(map(str, choices))}."
    bad = bounds_problem(field, value)
    return None if bad is None else f"{name}={value!r} {bad}."


def _kind(field) -> type:
    """The Python type of a settings field (annotations may be strings)."""
    annotation = field.type if isinstance(field.type, str) else getattr(field.type, "__name__", str(field.type))
    return {"int": int, "float": float, "bool": bool, "str": str}.get(annotation, str)
