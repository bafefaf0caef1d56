"""What training loops need to know about a Keras 3 model, on any backend.

The lottery engine (:mod:`tfprune.lottery`) and the experiment harness are written once; what
they need of a Keras 3 model that the core API does not already give lives here:

* :func:`top_layers`: the model's top-level layers by the user's names, mask wrappers seen
  through (a checkpoint's ``"<layer>::<i>"`` keys are these names and the layer's own weight order);
* :func:`layer_kernels`: the prunable kernels inside one top-level layer, keyed as masks are
  (``fc1``, ``mha/query``);
* :func:`clone`, :func:`reseeded_clone` (fresh initial weights from the layers' own
  initializers, re-seeded: new draws also where the model fixed the seeds);
* :func:`set_random_seed`, :func:`output_layers` / :func:`ends_in_softmax`, :func:`ticket_rows`.

Example:
    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(
    ...     3, kernel_initializer=keras.initializers.GlorotNormal(seed=1), name="fc")])
    >>> fresh = reseeded_clone(model, seed=0)
    >>> bool((fresh.get_layer("fc").kernel.numpy() != model.get_layer("fc").kernel.numpy()).any())
    True
"""
from __future__ import annotations

import copy

import keras

from tfprune import _seeds
from tfprune._keras3 import layers as _layers


_see_through = _layers._see_through


def top_layers(model) -> "list[tuple[str, object]]":
    """``[(name, layer)]`` of the model's top-level layers (``model.layers``), each mask wrapper
    replaced by the user's layer it holds, in model order."""
    return [(inner.name, inner) for inner in (_see_through(layer) for layer in model.layers)]


def layer_names(model) -> "list[str]":
    return [name for name, _ in top_layers(model)]


def layer_kernels(layer, name: "str | None" = None) -> "dict[str, keras.Variable]":
    """``{mask key: kernel}`` of the prunable kernels inside the top-level ``layer`` (a wrapper is
    seen through): its own kernel under its name, a sublayer's under ``<name>/<path>``."""
    layer = _see_through(layer)
    name = layer.name if name is None else name
    return {f"{name}/{path}" if path else name: variable
            for path, variable in _layers.layer_kernels(layer).items()}


def clone(model):
    """A new (unmasked) model of the same architecture and layer names with the same weights."""
    copied = keras.models.clone_model(model)
    copied.set_weights(model.get_weights())
    return copied


derived_seed = _seeds.derived_seed  # a function of (seed, labels) only: tfprune/_seeds.py


def _is_seeded_initializer(key: str, node) -> bool:
    return key.endswith("initializer") and _seeds.has_seed(node)


def reseeded_clone(model, seed: int):
    """A clone of ``model`` (same architecture, names, initializer classes and parameters, wrappers
    seen through) with newly drawn initial weights that are a function of ``seed`` alone: every
    initializer with a fixed seed is re-seeded from ``(seed, layer name, where it sits in the
    config)``, the others draw under :func:`set_random_seed` ``(seed)`` (which this calls)."""
    set_random_seed(int(seed))
    config = _seeds.reseeded(copy.deepcopy(keras.saving.serialize_keras_object(model)), int(seed), model.name,
                             _is_seeded_initializer, nested_layers=True)
    return keras.saving.deserialize_keras_object(config)


def set_random_seed(seed: int) -> None:
    """Python, NumPy, TensorFlow's and the backend's seeds, and Keras' global seed generator."""
    keras.utils.set_random_seed(int(seed))


def output_layers(model) -> list:
    """The user's layers that produce ``model.outputs`` (wrappers seen through), in output order."""
    return [_see_through(tensor._keras_history.operation) for tensor in model.outputs]


def ends_in_softmax(layer) -> bool:
    """Whether ``layer`` (a wrapper is seen through) is a Softmax layer or has a softmax activation."""
    layer = _see_through(layer)
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.softmax or getattr(activation, "__name__", "") == "softmax"


def ticket_rows(model) -> "list[dict]":
    """``[{"name", "class", "shape"}]`` of the prunable kernels in model order: the key, the class
    of the top-level layer holding it (wrappers seen through) and the kernel's shape (what a
    :mod:`tfprune.lottery` ticket records)."""
    layers = dict(_layers.walk(model))
    return [{"name": key, "class": type(layers[key.split("/")[0]]).__name__, "shape": [int(d) for d in kernel.shape]}
            for key, kernel in _layers.prunable_kernels(model).items()]
