"""tfprune: pruning at initialization, lottery tickets and sparse TFLite export on TF-MOT.

Three lines to prune before training (models built with ``tf_keras``)::

    pruned = tfprune.prune_at_init(model, "synflow", sparsity=0.98)
    pruned.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    pruned.fit(x, y, epochs=5, callbacks=tfprune.callbacks())

Public names: :func:`compute_scores`, :func:`compute_masks`, :func:`prune_at_init`,
:func:`apply_masks`, :func:`get_masks`, :func:`strip`, :func:`sparsity_report`,
:func:`callbacks`, :func:`register_scorer`, :class:`FixedMaskWrapper`, the schedules
:class:`FixedMask`, :class:`OneShot`, :class:`Iterative`, and :func:`custom_object_scope` /
:func:`load_model` for saved models.
"""
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from tfprune.allocation import allocate  # noqa: E402
from tfprune.api import LayerCollapseWarning, callbacks, compute_masks, prune_at_init  # noqa: E402
from tfprune.report import SparsityReport, sparsity_report  # noqa: E402
from tfprune.schedules import FixedMask, Iterative, OneShot  # noqa: E402
from tfprune.scoring import compute_scores, get_scorer, register_scorer, scorer_names  # noqa: E402
from tfprune.wrapper import (  # noqa: E402
    FixedMaskWrapper,
    apply_masks,
    custom_object_scope,
    custom_objects,
    get_masks,
    load_model,
    strip,
)

from tfprune import lottery, structured  # noqa: E402  (clients of the names above)

__version__ = "0.1.0"

__all__ = [
    "FixedMask", "FixedMaskWrapper", "Iterative", "LayerCollapseWarning", "OneShot", "SparsityReport",
    "allocate", "apply_masks", "callbacks", "compute_masks", "compute_scores", "custom_object_scope",
    "custom_objects", "get_masks", "get_scorer", "load_model", "prune_at_init", "register_scorer",
    "lottery", "scorer_names", "sparsity_report", "strip", "structured",
]
