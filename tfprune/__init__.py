"""tfprune: pruning at initialization, lottery tickets and sparse TFLite export on TF-MOT.

Three lines to prune before training (models built with ``tf_keras``)::

    pruned = tfprune.prune_at_init(model, "synflow", sparsity=0.98)
    pruned.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    pruned.fit(x, y, epochs=5, callbacks=tfprune.callbacks())

Public names: :func:`compute_scores`, :func:`compute_masks`, :func:`prune_at_init`,
:func:`apply_masks`, :func:`get_masks`, :func:`strip`, :func:`sparsity_report`,
:func:`callbacks`, :func:`register_scorer`, :class:`FixedMaskWrapper`, the schedules
:class:`FixedMask`, :class:`OneShot`, :class:`Iterative`, :func:`custom_object_scope` /
:func:`load_model` for saved models, :class:`TrainingSpec` (how the lottery procedures train),
and the modules :mod:`tfprune.keras_utils`, :mod:`tfprune.checks`, :mod:`tfprune.table`,
:mod:`tfprune.io`. The experiment harness (configs, procedures, datasets, model zoo, the
binaries' flags) is :mod:`tfprune.experiment`, imported only when asked for.

Importing tfprune changes neither the environment nor what ``tf.keras`` means, and does not
import TF-MOT: the names that need it (the wrapper and schedule classes) and the
``lottery`` / ``structured`` subpackages are loaded on first access (PEP 562).
"""
import importlib

from tfprune.allocation import allocate
from tfprune.api import LayerCollapseWarning, NotPrunedWarning, callbacks, compute_masks, prune_at_init
from tfprune.report import SparsityReport, sparsity_report
from tfprune.scoring import compute_scores, get_scorer, register_scorer, scorer_names
from tfprune.spec import TrainingSpec
from tfprune.wrapper import apply_masks, custom_object_scope, custom_objects, get_masks, load_model, strip

__version__ = "0.1.0"

_LAZY = {"FixedMaskWrapper": "tfprune.wrapper", "FixedMask": "tfprune.schedules", "Iterative": "tfprune.schedules",
         "OneShot": "tfprune.schedules", "lottery": None, "structured": None, "keras_utils": None,
         "experiment": None}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _LAZY[name]
    value = importlib.import_module(f"{__name__}.{name}") if module is None else getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "FixedMask", "FixedMaskWrapper", "Iterative", "LayerCollapseWarning", "NotPrunedWarning", "OneShot", "SparsityReport", "TrainingSpec",
    "allocate", "apply_masks", "callbacks", "compute_masks", "compute_scores", "custom_object_scope",
    "custom_objects", "get_masks", "get_scorer", "load_model", "prune_at_init", "register_scorer",
    "keras_utils", "lottery", "scorer_names", "sparsity_report", "strip", "structured",
]
