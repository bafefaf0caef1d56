"""tfprune: pruning at initialization, lottery tickets and sparse TFLite export on TF-MOT.

Three lines to prune before training (models built with ``tf_keras``)::

    pruned = tfprune.prune_at_init(model, "synflow", sparsity=0.98)
    pruned.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    pruned.fit(x, y, epochs=5, callbacks=tfprune.callbacks())

Public names: :func:`compute_scores`, :func:`compute_masks`, :func:`prune_at_init`,
:func:`apply_masks`, :func:`get_masks`, :func:`strip`, :func:`sparsity_report`,
:func:`callbacks`, :func:`register_scorer`, :func:`estimate_energy` (with :class:`EnergyCosts`,
:class:`EnergyEstimate`; :mod:`tfprune.energy`), :class:`FixedMaskWrapper`, the schedules
:class:`FixedMask`, :class:`OneShot`, :class:`Iterative`, :func:`custom_object_scope` /
:func:`load_model` for saved models, :class:`TrainingSpec` (how the lottery procedures train),
and the modules :mod:`tfprune.keras_utils`, :mod:`tfprune.checks`, :mod:`tfprune.table`,
:mod:`tfprune.io`. The experiment harness (configs, procedures, datasets, model zoo, the
binaries' flags) is :mod:`tfprune.experiment`, imported only when asked for.

Importing tfprune is cheap: every public name and subpackage is loaded on first access
(PEP 562), so the binaries parse their flags before TensorFlow is imported. It changes neither
the environment nor what ``tf.keras`` means, and does not import TF-MOT until a model is wrapped.
TensorFlow's native start-up lines are filtered from the first ``import tensorflow`` on
(:mod:`tfprune.logs`), whoever imports it; tfprune's Keras 3 classes are registered with Keras
when Keras 3 is imported (:func:`tfprune._keras3.register_keras_classes`), so that masked Keras 3
models load with ``keras.saving.load_model`` alone.
"""
import importlib
import sys

__version__ = "0.1.0"

#: Public name → the module that defines it.
_NAMES = {
    "allocate": "tfprune.allocation",
    "LayerCollapseWarning": "tfprune.api", "NotPrunedWarning": "tfprune.api", "ZeroScoreWarning": "tfprune.api",
    "callbacks": "tfprune.api",
    "compute_masks": "tfprune.api", "prune_at_init": "tfprune.api",
    "EnergyCosts": "tfprune.energy", "EnergyEstimate": "tfprune.energy", "estimate_energy": "tfprune.energy",
    "SparsityReport": "tfprune.report", "sparsity_report": "tfprune.report",
    "compute_scores": "tfprune.scoring", "get_scorer": "tfprune.scoring", "register_scorer": "tfprune.scoring",
    "scorer_names": "tfprune.scoring", "unregister_scorer": "tfprune.scoring",
    "TrainingSpec": "tfprune.spec",
    "FixedMaskWrapper": "tfprune.wrapper", "apply_masks": "tfprune.wrapper", "custom_object_scope": "tfprune.wrapper",
    "custom_objects": "tfprune.wrapper", "get_masks": "tfprune.wrapper", "load_model": "tfprune.wrapper",
    "strip": "tfprune.wrapper",
    "FixedMask": "tfprune.schedules", "Iterative": "tfprune.schedules", "OneShot": "tfprune.schedules",
}
_SUBPACKAGES = ("checks", "energy", "experiment", "io", "keras_utils", "logs", "lottery", "structured", "table")

if "tensorflow" not in sys.modules:
    from tfprune.logs import quiet_tensorflow_import as _quiet_tensorflow_import

    _quiet_tensorflow_import()

from tfprune._keras3 import register_keras_classes as _register_keras_classes  # noqa: E402

_register_keras_classes()  # so that keras.saving.load_model reads masked Keras 3 models without a scope


def __getattr__(name):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_NAMES) | set(_SUBPACKAGES))


__all__ = sorted(_NAMES) + ["checks", "energy", "io", "keras_utils", "lottery", "structured", "table"]
