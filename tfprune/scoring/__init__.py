"""Scorers: pure functions from (model, data, loss) to per-layer score arrays.

Each method's formula lives in its own short module: :mod:`.random`, :mod:`.magnitude`,
:mod:`.snip`, :mod:`.grasp`, :mod:`.synflow`, :mod:`.obd`, and the mask searches :mod:`.edge_popup` and
:mod:`.gem_miner` (their shared loop: :mod:`._mask_search`). :func:`compute_scores` is the entry
point.
"""
from __future__ import annotations

import importlib

from tfprune.scoring.registry import Scorer, get_scorer, lazy, register_scorer, scorer_names, unregister_scorer

# The built-in methods (their modules, and TensorFlow, are imported when a method is first used).
# ``include=("embedding",)``: also score Embedding tables (Keras 3 models; see tfprune.scoring.nets).
# ``strategy=``: a tf.distribute strategy whose replicas share the passes (tf_keras; scoring/_distributed.py).
register_scorer("random", lazy("tfprune.scoring.random", "make_random"), needs_data=False, options=("seed", "include"))
register_scorer("magnitude", lazy("tfprune.scoring.magnitude", "make_magnitude"), needs_data=False,
                options=("include",))
register_scorer("snip", lazy("tfprune.scoring.snip", "make_snip"), needs_data=True, options=("include", "strategy"))
register_scorer("grasp", lazy("tfprune.scoring.grasp", "make_grasp"), needs_data=True, keep="lowest",
                options=("temperature", "include", "strategy"))
# Optimal Brain Damage: ½·h_kk·w², for trained networks (estimator: gauss_newton, exact, hutchinson, fisher).
register_scorer("obd", lazy("tfprune.scoring.obd", "make_obd"), needs_data=True,
                options=("estimator", "samples", "seed", "max_weights", "include"))
register_scorer("synflow", lazy("tfprune.scoring.synflow", "make_synflow"), needs_data=False, rounds=100,
                options=("input_shape", "include"))
# Mask searches at initialization: the weights stay at θ0 and a score per weight is learned on the
# training data (``data``: the whole training set); they need the target ``sparsity`` and ``scope``,
# which compute_masks passes to scorers that take them.
_SEARCH = ("sparsity", "scope", "seed", "epochs", "batch_size", "lr", "momentum", "state_dir", "include")
register_scorer("edge_popup", lazy("tfprune.scoring.edge_popup", "make_edge_popup"), needs_data=True,
                options=_SEARCH + ("weight_decay",))
register_scorer("gem_miner", lazy("tfprune.scoring.gem_miner", "make_gem_miner"), needs_data=True,
                options=_SEARCH + ("penalty", "prune_every"))

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
