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
import zlib

import keras
import numpy as np

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


def derived_seed(seed: int, *labels: str) -> int:
    """A 31-bit seed that is a function of ``seed`` and the ``labels`` only (any process)."""
    entropy = [int(seed) & 0xFFFFFFFF] + [zlib.crc32(label.encode("utf-8")) for label in labels]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)


def _is_seeded_initializer(key: str, node) -> bool:
    return (key.endswith("initializer") and isinstance(node, dict) and isinstance(node.get("class_name"), str)
            and isinstance(node.get("config"), dict) and node["config"].get("seed") is not None)


def _reseeded(node, seed: int, layer: str, path: str = ""):
    """A copy of a serialized config in which every seeded initializer (under a key ending in
    ``initializer``, at any depth) has the seed ``derived_seed(seed, layer, <its path>)``; a
    nested layer config (a dict with a ``name``) names the layer of the initializers below it."""
    if isinstance(node, dict):
        if isinstance(node.get("config"), dict) and isinstance(node["config"].get("name"), str) \
                and "class_name" in node:
            layer, path = node["config"]["name"], ""
        out = {}
        for key, value in node.items():
            where = f"{path}/{key}" if path else str(key)
            if _is_seeded_initializer(str(key), value):
                value = {**value, "config": {**value["config"], "seed": derived_seed(seed, layer, where)}}
            out[key] = _reseeded(value, seed, layer, where)
        return out
    if isinstance(node, (list, tuple)):
        return type(node)(_reseeded(v, seed, layer, f"{path}/{i}") for i, v in enumerate(node))
    return node


def reseeded_clone(model, seed: int):
    """A clone of ``model`` (same architecture, names, initializer classes and parameters, wrappers
    seen through) with newly drawn initial weights that are a function of ``seed`` alone: every
    initializer with a fixed seed is re-seeded from ``(seed, layer name, where it sits in the
    config)``, the others draw under :func:`set_random_seed` ``(seed)`` (which this calls)."""
    set_random_seed(int(seed))
    config = _reseeded(copy.deepcopy(keras.saving.serialize_keras_object(model)), int(seed), model.name)
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
