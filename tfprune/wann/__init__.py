"""Weight-agnostic neural networks (Gaier & Ha 2019): a search over masks and activations.

A network is a mask over the connections of an acyclic graph (connections may skip layers) and
an activation per hidden unit; every connection carries the same shared weight ``w``, and a
network is judged at several values of ``w`` at once. :func:`search` (:mod:`~tfprune.wann.evolution`) evolves them from minimal
networks (:mod:`~tfprune.wann.genome`, :mod:`~tfprune.wann.mutation`,
:mod:`~tfprune.wann.ranking`, :mod:`~tfprune.wann.evaluate`); :func:`build_model` /
:func:`build_ticket` turn the result into a tf_keras or Keras 3 model (:mod:`~tfprune.wann.keras_model`),
:mod:`~tfprune.wann.plots` draws it. See ``docs/wann.md``.

Only :mod:`~tfprune.wann.keras_model` (and so :func:`build_model`, :func:`build_ticket`,
:func:`masks`) imports Keras (and TensorFlow for tf_keras), on first use.
"""
import importlib

from tfprune.wann.activations import ACTIVATIONS
from tfprune.wann.evaluate import forward
from tfprune.wann.genome import Genome, minimal
from tfprune.wann.evolution import SearchConfig, SearchResult, search

_LAZY = {"build_model": "keras_model", "build_ticket": "keras_model", "masks": "keras_model",
         "custom_objects": "keras_model", "plot_pareto": "plots", "draw_network": "plots"}

__all__ = ["ACTIVATIONS", "Genome", "SearchConfig", "SearchResult", "forward", "minimal", "search",
           *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
