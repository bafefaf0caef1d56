"""Pruning schedules: they only say *when* and *how much*.

All are ``tfmot.sparsity.keras.PruningSchedule`` subclasses (``__call__(step) ->
(should_prune, sparsity)``; TF-MOT's first training step is 1) and round-trip through
``get_config`` / ``from_config``. The classes are made on first access (PEP 562), so that
importing tfprune does not import TF-MOT; their behaviour is in the ``_…`` classes below.

* :class:`FixedMask` never prunes: the masks set by tfprune stay bit-identical. It is the
  default schedule of :class:`tfprune.FixedMaskWrapper`.
* :class:`OneShot` and :class:`Iterative` are for TF-MOT's own magnitude wrapper
  (``tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=OneShot(0.9, step=100))``):
  prune once, or at a list of steps, to the given sparsities, and hold the mask in between.

Example:
    >>> from tfprune.schedules import Iterative
    >>> schedule = Iterative(steps=[100, 200, 300], sparsities=[0.5, 0.75, 0.9])
    >>> Iterative.from_config(schedule.get_config()["config"]) == schedule
    True
"""
from __future__ import annotations

import types

import tensorflow as tf

from tfprune import _keras, checks

PUBLIC = ("FixedMask", "Iterative", "OneShot")


class _Schedule:
    def get_config(self):
        return {"class_name": type(self).__name__, "config": self._config()}

    def __eq__(self, other):
        return type(self) is type(other) and self._config() == other._config()

    def __hash__(self):
        return hash((type(self).__name__, repr(self._config())))

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"


class _FixedMask(_Schedule):
    """Never re-ranks: ``should_prune`` is always False, masks stay as set.

    Args:
        sparsity: informative only (reported as the schedule's sparsity).
    """

    def __init__(self, sparsity: float = 0.0):
        self.sparsity = checks.fraction(sparsity, "sparsity")

    def __call__(self, step):
        return tf.constant(False), tf.constant(self.sparsity, dtype=tf.float32)

    def _config(self):
        return {"sparsity": self.sparsity}


class _Iterative(_Schedule):
    """Prunes by magnitude to ``sparsities[i]`` at training step ``steps[i]``, holds in between.

    Args:
        steps: strictly increasing training steps (>= 1, TF-MOT's first step is 1).
        sparsities: non-decreasing target sparsities in [0, 1), one per step.
    """

    def __init__(self, steps, sparsities):
        steps = [checks.integer(s, "steps", 1) for s in steps]
        sparsities = [checks.fraction(s, "sparsities") for s in sparsities]
        if not steps or len(steps) != len(sparsities):
            raise ValueError(f"steps/sparsities: need the same non-zero number of entries, got {len(steps)} and {len(sparsities)}.")
        if any(s < 1 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:])):
            raise ValueError(f"steps: got {steps}; allowed: strictly increasing integers >= 1.")
        for s in sparsities:
            self._validate_sparsity(s, "sparsities")
        if any(b < a for a, b in zip(sparsities, sparsities[1:])):
            raise ValueError(f"sparsities: got {sparsities}; allowed: non-decreasing values.")
        self.steps, self.sparsities = steps, sparsities

    def __call__(self, step):
        step = tf.cast(step, tf.int64)
        hits = tf.equal(tf.constant(self.steps, tf.int64), step)
        index = tf.argmax(tf.cast(hits, tf.int32))
        return tf.reduce_any(hits), tf.gather(tf.constant(self.sparsities, tf.float32), index)

    def _config(self):
        return {"steps": list(self.steps), "sparsities": list(self.sparsities)}


class _OneShot:
    """Prunes once, by magnitude, to ``sparsity`` at training step ``step`` (default 1)."""

    def __init__(self, sparsity: float, step: int = 1):
        super().__init__([step], [sparsity])

    def _config(self):
        return {"sparsity": self.sparsities[0], "step": self.steps[0]}


def _make(name, behaviour, parent):
    return types.new_class(name, (behaviour, parent),
                           exec_body=lambda ns: ns.update(__module__=__name__, __doc__=behaviour.__doc__))


def schedule_classes() -> "dict[str, type]":
    """``{name: class}`` of the public schedules, made (and TF-MOT imported) on the first call."""
    if "SCHEDULES" not in globals():
        base = _keras.tfmot().PruningSchedule
        iterative = _make("Iterative", _Iterative, base)
        made = {"FixedMask": _make("FixedMask", _FixedMask, base), "Iterative": iterative,
                "OneShot": _make("OneShot", _OneShot, iterative)}
        globals().update(made, SCHEDULES=made)
    return globals()["SCHEDULES"]


def __getattr__(name):
    if name == "SCHEDULES":
        return schedule_classes()
    if name in PUBLIC:
        return schedule_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
