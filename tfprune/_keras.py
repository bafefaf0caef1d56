"""Keras plumbing shared by every part of tfprune.

* which Keras we run on (tf_keras, i.e. Keras 2: TF-MOT 0.8.1 supports nothing else),
* the checks every public entry point runs on a model (Keras 3, subclassed, nested),
* which weights are prunable: the ``kernel`` of every Dense and Conv1D/2D/3D (and their
  transposed variants) layer, wrapped or not. Biases, BatchNorm, depthwise and separable
  kernels are never pruned.

Everything in tfprune keys masks and scores by the user's *original* layer name, so a
model wrapped by :func:`tfprune.prune_at_init` and the plain model it came from use the same
keys.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

_PRUNABLE_CLASSES = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
_NEVER_PRUNED = (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)


def _is_keras3_object(obj) -> bool:
    module = type(obj).__module__ or ""
    return module.startswith("keras.") and not module.startswith("keras.api._v2")


def check_model(model, argument: str = "model") -> None:
    """Raises a clear error unless ``model`` is a built tf_keras Sequential/Functional model.

    Example:
        >>> check_model(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))
    """
    if _is_keras3_object(model):
        raise TypeError(
            f"{argument}: got a Keras 3 model ({type(model).__module__}.{type(model).__name__}). "
            "TF-MOT 0.8.1, and so tfprune, supports tf_keras (Keras 2) models only: build it with "
            "`import tf_keras as keras`, or set TF_USE_LEGACY_KERAS=1 before importing TensorFlow "
            "and use tf.keras."
        )
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"{argument}: expected a tf_keras.Model (Sequential or Functional), got "
            f"{type(model).__module__}.{type(model).__name__}."
        )
    if not isinstance(model, keras.Sequential) and not getattr(model, "_is_graph_network", False):
        raise TypeError(
            f"{argument}: subclassed models ({type(model).__name__}) are not supported: tfprune, like "
            "TF-MOT, needs the layer graph. Build the model with the Sequential or Functional API."
        )
    if not model.built:
        raise ValueError(
            f"{argument}: model {model.name!r} is not built; give it an input shape "
            "(keras.Input(...) or input_shape=...) before pruning."
        )
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            raise TypeError(
                f"{argument}: layer {layer.name!r} is a nested model ({type(layer).__name__}); "
                "tfprune prunes flat Sequential/Functional models. Flatten it into one model first."
            )


def is_pruning_wrapper(layer) -> bool:
    """Whether ``layer`` is TF-MOT's ``PruneLowMagnitude`` or a subclass (tfprune's wrapper).

    Checked by class name so that scoring and allocation never import TF-MOT.
    """
    return any(cls.__name__ == "PruneLowMagnitude" for cls in type(layer).__mro__)


def inner_layer(layer):
    """The user's layer behind a (TF-MOT or tfprune) pruning wrapper, or ``layer`` itself."""
    return layer.layer if is_pruning_wrapper(layer) else layer


def is_prunable(layer) -> bool:
    """True for the layers whose ``kernel`` tfprune scores and masks."""
    layer = inner_layer(layer)
    return isinstance(layer, _PRUNABLE_CLASSES) and not isinstance(layer, _NEVER_PRUNED)


def prunable_layers(model) -> "dict[str, keras.layers.Layer]":
    """Ordered ``{original layer name: layer}`` of the prunable layers, in model order.

    Wrapped layers are returned as their wrapper; use :func:`inner_layer` for the user's layer.
    """
    out = {}
    for layer in model.layers:
        if is_prunable(layer):
            out[inner_layer(layer).name] = layer
    return out


def prunable_kernels(model) -> "dict[str, tf.Variable]":
    """Ordered ``{original layer name: kernel variable}`` for the prunable layers."""
    return {name: inner_layer(layer).kernel for name, layer in prunable_layers(model).items()}


def require_prunable(model, argument: str = "model") -> "dict[str, keras.layers.Layer]":
    layers = prunable_layers(model)
    if not layers:
        kinds = sorted({type(inner_layer(l)).__name__ for l in model.layers})
        raise ValueError(
            f"{argument}: model {model.name!r} has no prunable layer (Dense, Conv1D, Conv2D, Conv3D "
            f"or their transposes); its layers are {kinds}."
        )
    return layers


def input_shape(model) -> tuple:
    shape = model.input_shape
    if isinstance(shape, list):
        raise ValueError(
            f"model: {model.name!r} has {len(shape)} inputs; tfprune's data-dependent scorers and "
            "SynFlow support single-input models."
        )
    return tuple(shape)


def output_activation_is_softmax(model) -> bool:
    """Whether the model's last layer ends in a softmax (its own activation or a Softmax layer)."""
    last = inner_layer(model.layers[-1])
    if isinstance(last, keras.layers.Softmax):
        return True
    act = getattr(last, "activation", None)
    return act is keras.activations.softmax or getattr(act, "__name__", "") == "softmax"


def tfmot_sparsity():
    """TF-MOT's public ``sparsity.keras`` API (imported on first use)."""
    import tensorflow_model_optimization as tfmot
    return tfmot.sparsity.keras
