"""Scorers: pure functions from (model, data, loss) to per-layer score arrays.

Each method's formula lives in its own short module: :mod:`.random`, :mod:`.magnitude`,
:mod:`.snip`, :mod:`.grasp`, :mod:`.synflow`. :func:`compute_scores` is the entry point.
"""
from __future__ import annotations

import importlib

from tfprune.scoring.registry import Scorer, get_scorer, lazy, register_scorer, scorer_names, unregister_scorer

# The built-in methods (their modules, and TensorFlow, are imported when a method is first used).
# ``include=("embedding",)``: also score Embedding tables (Keras 3 models; see tfprune.scoring.nets).
register_scorer("random", lazy("tfprune.scoring.random", "make_random"), needs_data=False, options=("seed", "include"))
register_scorer("magnitude", lazy("tfprune.scoring.magnitude", "make_magnitude"), needs_data=False,
                options=("include",))
register_scorer("snip", lazy("tfprune.scoring.snip", "make_snip"), needs_data=True, options=("include",))
register_scorer("grasp", lazy("tfprune.scoring.grasp", "make_grasp"), needs_data=True, keep="lowest",
                options=("temperature", "include"))
register_scorer("synflow", lazy("tfprune.scoring.synflow", "make_synflow"), needs_data=False, rounds=100,
                options=("input_shape", "include"))

_LAZY = {"compute_scores": "tfprune.scoring.compute", "make_score_fn": "tfprune.scoring.compute",
         "check_finite": "tfprune.scoring.compute", "kernel_values": "tfprune.scoring.nets",
         "path_flow": "tfprune.scoring.synflow"}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


__all__ = ["Scorer", "compute_scores", "get_scorer", "kernel_values", "lazy", "make_score_fn", "path_flow",
           "register_scorer", "scorer_names", "unregister_scorer"]
