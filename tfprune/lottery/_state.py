"""Snapshots of a model's own weights and of an optimizer's state, as flat ``{key: array}``
dicts that go into ``.npz`` files.

A wrapped model's ``get_weights()`` also holds the masks, thresholds and step counters of the
pruning wrappers; these helpers only see the *user's* weights, read from the inner layers and
keyed by the original layer names (``"<layer>::<index>"``, in the layer's own weight order).
tf_keras and Keras 3 models alike (:mod:`tfprune.lottery._kit`).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from tfprune import _keras
from tfprune.lottery import _kit

SEP = "::"


def _layers_with_weights(model) -> dict:
    return {name: layer for name, layer in _kit.kit_for(model).top_layers(model) if layer.weights}


def layer_weights(model, masks: "Mapping[str, np.ndarray] | None" = None) -> "dict[str, np.ndarray]":
    """``{"<layer>::<i>": array}`` of the user's weights (inner layers), copies.

    With ``masks``, each masked kernel has its pruned entries set to +0.0; kept entries are
    the variable's bits unchanged.
    """
    out = {}
    masks = masks or {}
    kit = _kit.kit_for(model)
    for name, layer in _layers_with_weights(model).items():
        keys = {id(kernel): key for key, kernel in kit.layer_kernels(layer, name).items()}  # mha: four kernels
        for i, (var, value) in enumerate(zip(layer.weights, layer.get_weights())):
            value = np.array(value, copy=True)
            key = keys.get(id(var))
            if key in masks:
                value = np.where(np.asarray(masks[key]) != 0, value, np.zeros((), value.dtype)).astype(value.dtype)
            out[f"{name}{SEP}{i}"] = value
    return out


def set_layer_weights(model, weights: Mapping[str, np.ndarray], rename: "Mapping[str, str] | None" = None) -> None:
    """Restores a :func:`layer_weights` snapshot into ``model`` (every layer must be present).

    ``rename`` maps the snapshot's layer names to ``model``'s (same architecture, other names).
    """
    grouped: "dict[str, dict[int, np.ndarray]]" = {}
    for key, value in weights.items():
        name, _, index = key.rpartition(SEP)
        if not name:
            continue
        name = (rename or {}).get(name, name)
        grouped.setdefault(name, {})[int(index)] = value
    layers = _layers_with_weights(model)
    missing = [n for n in layers if n not in grouped]
    extra = [n for n in grouped if n not in layers]
    if missing or extra:
        raise ValueError(f"weights: the snapshot does not fit model {model.name!r}: layers without saved weights "
                         f"{missing}, saved layers not in the model {extra}.")
    for name, layer in layers.items():
        values = grouped[name]
        if len(values) != len(layer.weights):
            raise ValueError(f"weights: layer {name!r} has {len(layer.weights)} weights, the snapshot {len(values)}.")
        layer.set_weights([values[i] for i in range(len(values))])


def prefixed(prefix: str, arrays: Mapping[str, np.ndarray]) -> "dict[str, np.ndarray]":
    return {f"{prefix}{key}": value for key, value in arrays.items()}


def unprefixed(prefix: str, arrays: Mapping[str, np.ndarray]) -> "dict[str, np.ndarray]":
    return {key[len(prefix):]: value for key, value in arrays.items() if key.startswith(prefix)}


# ---------------------------------------------------------------------------------------------
# Optimizer state
# ---------------------------------------------------------------------------------------------

def build_optimizer(optimizer, model) -> None:
    """Creates the optimizer's slot variables for ``model``'s trainable variables now."""
    _keras.build_optimizer(optimizer, model.trainable_variables)


def optimizer_state(optimizer, model) -> "dict[str, np.ndarray]":
    """``{"<i>": array}`` of every optimizer variable (step counter and slots), plus the
    learning rate (``"lr"``) when it is a variable (callbacks such as ReduceLROnPlateau change it)."""
    build_optimizer(optimizer, model)
    out = {str(i): np.array(v.numpy(), copy=True) for i, v in enumerate(_keras.optimizer_variables(optimizer))}
    lr = _keras.learning_rate_variable(optimizer)
    if lr is not None:
        out["lr"] = np.array(lr.numpy(), copy=True)
    return out


def restore_optimizer(optimizer, model, state: Mapping[str, np.ndarray]) -> None:
    """Puts an :func:`optimizer_state` snapshot into a freshly created ``optimizer``."""
    build_optimizer(optimizer, model)
    variables = _keras.optimizer_variables(optimizer)
    values = {int(k): v for k, v in state.items() if k.isdigit()}
    if len(values) != len(variables):
        raise ValueError(f"optimizer state: {len(values)} saved variables but the optimizer "
                         f"{type(optimizer).__name__} has {len(variables)}; was it created with other settings?")
    for i, variable in enumerate(variables):
        value = values[i]
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"optimizer state: variable {variable.name} has shape {tuple(variable.shape)}, "
                             f"the saved one {value.shape}.")
        variable.assign(value)
    lr = _keras.learning_rate_variable(optimizer)
    if lr is not None and "lr" in state:
        lr.assign(state["lr"])


def set_optimizer_step(optimizer, model, step: int) -> None:
    """Sets the optimizer's step counter (``iterations``) of a fresh optimizer."""
    build_optimizer(optimizer, model)
    _keras.optimizer_step(optimizer).assign(int(step))


# ---------------------------------------------------------------------------------------------
# Random generators held by layers (tf.random.Generator; the default legacy stateful ops are
# reseeded per training segment instead)
# ---------------------------------------------------------------------------------------------

def _generators(model) -> "dict[str, tf.random.Generator]":
    """tf_keras layers' generators (a Keras 3 layer's seed generator state is one of its weights)."""
    out = {}
    for _, inner in _kit.kit_for(model).top_layers(model):
        generator = getattr(getattr(inner, "_random_generator", None), "_generator", None)
        if isinstance(generator, tf.random.Generator):
            out[inner.name] = generator
    return out


def rng_state(model) -> "dict[str, np.ndarray]":
    return {name: np.array(g.state.numpy(), copy=True) for name, g in _generators(model).items()}


def restore_rng_state(model, state: Mapping[str, np.ndarray], rename: "Mapping[str, str] | None" = None) -> None:
    generators = _generators(model)
    for name, value in state.items():
        name = (rename or {}).get(name, name)
        if name in generators:
            generators[name].state.assign(value)
