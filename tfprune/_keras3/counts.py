"""What :mod:`tfprune.energy` needs to count a Keras 3 model: each top-level layer's family, the
layer behind a mask wrapper, and input/output shapes from the layer's symbolic call.

Keras 3 layers have no ``input_shape``: a layer's shapes are those of the tensors it was called
on in the model's graph (``layer.input.shape`` / ``layer.output.shape``). A masked layer's are
its wrapper's (the wrapper is what the graph calls; the layer inside may never be called
symbolically). The families are the names :func:`tfprune._keras.layer_kind` uses.
"""
from __future__ import annotations

import keras

from tfprune import _layer_families
from tfprune._keras3.layers import check_model, is_masked_layer

_CLASSES = _layer_families.resolve(keras.layers)  # the one table, first match wins


def layer_kind(layer) -> "str | None":
    """The family of a Keras 3 ``layer`` (a mask wrapper seen through), as
    :func:`tfprune._keras.layer_kind` names them (``"dense"``, ``"conv"``, ``"batchnorm"``, ...;
    the table is :mod:`tfprune._layer_families`), or None."""
    layer = inner_layer(layer)
    return next((kind for kind, classes in _CLASSES if isinstance(layer, classes)), None)


def inner_layer(layer):
    """The user's layer behind tfprune's mask wrapper, or ``layer`` itself."""
    return layer.layer if is_masked_layer(layer) else layer


def shapes(layer):
    """``(input shape, output shape)`` of the layer's first call (on one tensor; a layer shared
    by two models, such as the layers ``apply_masks`` leaves unwrapped, has the same shapes in
    both), all dimensions but the batch known; else None."""
    try:
        inputs, outputs = layer.input, layer.output
    except (AttributeError, ValueError, RuntimeError):
        return None
    if not hasattr(inputs, "shape") or not hasattr(outputs, "shape"):
        return None
    in_shape, out_shape = tuple(inputs.shape), tuple(outputs.shape)
    if any(d is None for d in in_shape[1:] + out_shape[1:]):
        return None
    return in_shape, out_shape


def top_layers(model) -> "list[tuple[object, object]]":
    """``[(top-level layer, the layer behind it)]`` of a built Keras 3 ``model`` (input layers
    left out); a one-line error for anything else."""
    check_model(model)
    return [(layer, inner_layer(layer)) for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
