"""What a tf_keras scoring net differentiates: a *scoring clone* of the user's model, or, when
that cannot change a bit of it, the user's model itself (see :mod:`tfprune.scoring._tfkeras_net`)."""
from __future__ import annotations

import numpy as np

from tfprune import _keras
from tfprune._keras import keras


def scoring_clone(model, dtype: "str | None" = None, strip_softmax: bool = False, linear: bool = False):
    """A plain copy of ``model`` (wrappers removed), every layer in ``dtype`` (None: as it is,
    except that float16/bfloat16 layers, e.g. under ``mixed_float16``, compute in float32).

    With ``strip_softmax`` each output layer's softmax (its activation, or a final ``Softmax``
    layer) is replaced by the identity, so the clone returns logits. With ``linear`` every
    activation (layer argument or activation layer) and every LayerNormalization-like layer
    (it divides by the input's own spread, which is 0 when the path counts reach it as a
    constant vector) is the identity.
    Returns ``(clone, had_softmax)``. The clone's weights are a copy of the original's.
    """
    softmax_outputs = {id(_keras.inner_layer(l)) for l in _keras.output_layers(model)
                       if strip_softmax and _keras.ends_in_softmax(l)}
    had_softmax = bool(softmax_outputs)

    def clone_layer(layer):
        inner = _keras.inner_layer(layer)
        config = dict(inner.get_config())
        if dtype is not None:
            config["dtype"] = dtype
        elif _keras.compute_dtype_is_low_precision(inner):
            config["dtype"] = "float32"  # scores never in float16, whatever the policy
        if linear and (_keras.is_activation_layer(inner) or _keras.layer_kind(inner) == "normalization"):
            return keras.layers.Activation("linear", name=inner.name, dtype=dtype or inner.dtype)
        if linear and "activation" in config:
            config["activation"] = "linear"
        if id(inner) in softmax_outputs:
            if _keras.layer_kind(inner) == "softmax":
                return keras.layers.Activation("linear", name=inner.name, dtype=dtype or inner.dtype)
            config["activation"] = "linear"
        return inner.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    copy_weights(model, clone)
    return clone, had_softmax


def copy_weights(model, clone) -> None:
    """``model``'s weights into its scoring clone (in the clone's dtypes)."""
    originals = {_keras.inner_layer(l).name: _keras.inner_layer(l) for l in model.layers}
    for layer in clone.layers:
        source = originals.get(layer.name)
        if source is not None and source.weights:
            layer.set_weights([np.asarray(w, dtype=v.dtype.as_numpy_dtype)
                               for w, v in zip(source.get_weights(), layer.weights)])


def same_as_its_scoring_clone(model, strip_softmax: bool = False) -> bool:
    """Whether ``scoring_clone(model, strip_softmax=...)`` would compute exactly what ``model``
    computes, and an inference-mode call of ``model`` under a gradient tape writes none of its
    variables: then a loss net differentiates ``model`` itself at its own kernels (no clone).

    True when no layer (nested ones included) is a pruning wrapper (TF-MOT's writes
    ``weight * mask`` into the kernel on every call), a ``Lambda`` (user code), a stateful
    recurrent layer, a layer with an activity regularizer (it would record a loss on the
    model), a layer or model of a class defined outside tf_keras (unknown ``call``), or a
    float16/bfloat16 layer (the clone computes in float32); and, with ``strip_softmax``, no
    output layer ends in a softmax (the clone drops it). Built-in tf_keras layers in inference
    mode (``training=False``: BatchNormalization's moving statistics, Dropout, noise layers) read
    their variables only.
    """
    if strip_softmax and any(_keras.ends_in_softmax(layer) for layer in _keras.output_layers(model)):
        return False
    for layer in model._flatten_layers(include_self=True, recursive=True):  # noqa: SLF001 (tf_keras' walk)
        if (not type(layer).__module__.startswith("tf_keras.") or _keras.is_pruning_wrapper(layer)
                or isinstance(layer, keras.layers.Lambda) or getattr(layer, "stateful", False)
                or getattr(layer, "activity_regularizer", None) is not None
                or _keras.compute_dtype_is_low_precision(layer)):
            return False
    return True
