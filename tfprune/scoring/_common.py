"""Helpers shared by the scorers: data batches, loss resolution, and the scoring clone.

Scorers never touch the user's model: they work on a *scoring clone* built from the layers'
configs (optionally in float64 and with the final softmax removed) whose kernels are set to
``kernel * mask``. The user's weights are therefore unchanged by scoring, bit for bit.
"""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import tensorflow as tf

from tfprune import _keras
from tfprune._keras import keras
from tfprune.scoring._targets import resolve_loss, split_targets  # noqa: F401  (resolve_loss: re-exported)

# Arrays larger than this are split into batches of this size; the gradients are averaged
# weighted by batch size, which gives the gradient of the mean loss over all examples.
DEFAULT_SCORING_BATCH = 256


def _sliced(y, start, stop):
    return tf.nest.map_structure(lambda a: tf.convert_to_tensor(a[start:stop]), y)


def as_batches(model, data, argument: str = "data") -> "list[tuple[tf.Tensor, object]]":
    """``data`` (``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)`` batches) as checked batches.

    ``y`` is one tensor for a single-output model and a tuple aligned with ``model.outputs``
    for a multi-output one (see :mod:`tfprune.scoring._targets`).
    """
    if data is None:
        raise ValueError(f"{argument}: this method needs data, got None. Pass data=(x, y) arrays or a tf.data.Dataset of (x, y) batches.")
    expected = _keras.input_shape(model)
    if isinstance(data, tf.data.Dataset):
        batches = []
        for element in data:
            if not isinstance(element, (tuple, list)) or len(element) != 2:
                raise ValueError(f"{argument}: the dataset must yield (x, y) pairs; got an element of {type(element).__name__} "
                                 f"with {len(element) if isinstance(element, (tuple, list)) else 1} part(s).")
            x, y = element
            if len(x.shape) == len(expected) - 1:
                raise ValueError(f"{argument}: dataset elements have x of shape {tuple(x.shape)}, which looks unbatched; call .batch(n) on it.")
            y = tf.nest.map_structure(tf.convert_to_tensor, split_targets(model, y, argument))
            batches.append((tf.convert_to_tensor(x), y))
        if not batches:
            raise ValueError(f"{argument}: the dataset is empty.")
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x = np.asarray(data[0])
        y = tf.nest.map_structure(np.asarray, split_targets(model, data[1], argument))
        for part in tf.nest.flatten(y):
            if len(part) != len(x):
                raise ValueError(f"{argument}: x has {len(x)} examples but y has {len(part)}.")
        if len(x) == 0:
            raise ValueError(f"{argument}: x is empty.")
        batches = [(tf.convert_to_tensor(x[i:i + DEFAULT_SCORING_BATCH]), _sliced(y, i, i + DEFAULT_SCORING_BATCH))
                   for i in range(0, len(x), DEFAULT_SCORING_BATCH)]
    else:
        raise TypeError(f"{argument}: expected (x, y) arrays or a tf.data.Dataset of (x, y) batches, got {type(data).__name__}.")
    for x, _ in batches:
        shape = tuple(x.shape)
        ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected[1:], shape[1:]))
        if not ok:
            raise ValueError(f"{argument}: x has shape {shape} but model {model.name!r} expects inputs of shape "
                             f"{expected} (batch dimension first).")
    return batches


def loss_from_logits(loss_fn) -> bool:
    """Whether a Keras loss object expects logits (``from_logits=True``)."""
    fn_kwargs = getattr(loss_fn, "_fn_kwargs", None) or {}
    return bool(getattr(loss_fn, "from_logits", fn_kwargs.get("from_logits", False)))


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
    originals = {_keras.inner_layer(l).name: _keras.inner_layer(l) for l in model.layers}
    for layer in clone.layers:
        source = originals.get(layer.name)
        if source is not None and source.weights:
            layer.set_weights([np.asarray(w, dtype=v.dtype.as_numpy_dtype)
                               for w, v in zip(source.get_weights(), layer.weights)])
    return clone, had_softmax


def set_kernels(clone, values: Mapping[str, np.ndarray]) -> None:
    """Assigns ``values[name]`` to the kernel of each named prunable layer of ``clone``."""
    kernels = _keras.prunable_kernels(clone)
    for name, value in values.items():
        kernels[name].assign(np.asarray(value, dtype=kernels[name].dtype.as_numpy_dtype))


def kernel_values(model, masks: "Mapping[str, np.ndarray] | None" = None) -> "dict[str, np.ndarray]":
    """The current kernels of ``model`` as numpy arrays, multiplied by ``masks`` where given."""
    values = {name: np.asarray(k.numpy()) for name, k in _keras.prunable_kernels(model).items()}
    if masks:
        for name, mask in masks.items():
            values[name] = values[name] * mask.astype(values[name].dtype)
    return values


def accumulate(batches: Iterable, fn) -> "list[tf.Tensor]":
    """Example-weighted mean of ``fn(x, y)`` (a list of tensors) over the batches."""
    total, count = None, 0
    for x, y in batches:
        n = int(x.shape[0])
        values = fn(x, y)
        scaled = [v * tf.cast(n, v.dtype) for v in values]
        total = scaled if total is None else [a + b for a, b in zip(total, scaled)]
        count += n
    return [t / tf.cast(count, t.dtype) for t in total]
