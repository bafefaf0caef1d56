"""The Keras side of an export: the model that is converted, its kernels and its outputs.

Keras knowledge comes from tfprune's public API (``tfprune.strip``,
:mod:`tfprune.keras_utils`); everything else here only reads ``model.layers``, weights and
``model(...)``.
"""

from __future__ import annotations

import numpy as np


def all_layers(model):
    """Every layer of a (stripped) model, descending into nested models."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from all_layers(layer)


def strip(model):
    """``tfprune.strip(model)`` when the model has pruning wrappers (tfprune's, or TF-MOT's
    ``PruneLowMagnitude``; tfprune's Keras 3 ``MaskedLayer``): a plain copy with masked weights
    exactly +0.0.  Otherwise ``model``: a plain model, or a Keras 3 model that tfprune masked in
    place (subclassed; stripping it would change the caller's model), whose masked weights are
    +0.0 already (tfprune zeroes them and every optimizer step keeps them so)."""
    import tfprune  # pylint: disable=import-outside-toplevel
    from tfprune import keras_utils  # pylint: disable=import-outside-toplevel

    if not any(keras_utils.is_pruning_wrapper(layer) for layer in model.layers):
        return model
    return tfprune.strip(model)


def canonical_copy(model):
    """Returns ``(copy, n_fixed, restore)``: a copy whose float weights have -0.0 rewritten as
    +0.0, the number rewritten, and ``None``.

    A model that cannot be cloned (subclassed) is rewritten in place instead and ``restore`` holds
    its original weights, which :func:`tflite_export.export` puts back when it is done.
    """
    from tfprune import keras_utils  # pylint: disable=import-outside-toplevel

    weights = model.get_weights()
    fixed, n = keras_utils.positive_zeros(weights)
    try:
        clone = keras_utils.clone_model(model)
        clone.set_weights(fixed)
        return clone, n, None
    except Exception:  # pylint: disable=broad-except
        model.set_weights(fixed)
        return model, n, weights


def float_kernels(model):
    """``(name, layer, kernel array)`` for every layer (nested ones included) with a float kernel,
    and for the EinsumDense kernels inside a MultiHeadAttention, named as tfprune keys their masks
    (``"mha/query"``, ``"mha/key"``, ``"mha/value"``, ``"mha/attention_output"``;
    :func:`tfprune.keras_utils.kernel_owners`); ``layer`` is the layer that owns the kernel."""
    from tfprune import keras_utils  # pylint: disable=import-outside-toplevel

    for layer in all_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is not None:
            owned = [(layer.name, layer, kernel)]
        elif hasattr(layer, "layers"):  # a nested model: all_layers visits its layers
            owned = []
        else:
            owned = [(name, owner, owner.kernel)
                     for name, owner in keras_utils.kernel_owners(layer).items()]
        for name, owner, variable in owned:
            if not hasattr(variable, "numpy"):
                continue
            k = variable.numpy()
            if np.issubdtype(k.dtype, np.floating):
                yield name, owner, k


def kernel_zero_masks(model) -> list:
    """``(layer name, kernel == 0)`` in TFLite layout ([out, in] / [out, h, w, in]), to find
    which Keras layer a TFLite weight came from (:func:`tflite_export.pairing.layer_for`)."""
    out = []
    for name, layer, kernel in float_kernels(model):
        t = _tflite_layout(layer, kernel)
        if t is not None:
            out.append((name, t == 0))
    return out


def matrix_view(layer, kernel):
    """A kernel as the 2-D [in, out] matrix the converter turns it into, or None.

    Dense (any other 2-D kernel): the kernel itself. EinsumDense (also MultiHeadAttention's),
    2-D or not: the kernel's axes that the equation contracts with the input, flattened, by the
    others (``"abc,cde->abde"``: a ``(c, d, e)`` kernel becomes ``(c, d·e)``; ``"abcd,cde->abe"``:
    ``(c·d, e)``), when the contracted axes come first; None otherwise (``"ab,cb->ac"``).
    """
    if type(layer).__name__ != "EinsumDense":
        return kernel if kernel.ndim == 2 else None
    equation = getattr(layer, "equation", None)
    if not isinstance(equation, str) or "->" not in equation or "," not in equation:
        return None
    inputs, output = equation.replace(" ", "").split("->")
    source, spec = inputs.split(",")
    if len(spec) != kernel.ndim:
        return None
    contracted = [c in source and c not in output for c in spec]
    n_in = sum(contracted)
    if n_in == 0 or contracted != [True] * n_in + [False] * (len(spec) - n_in):
        return None
    return kernel.reshape(int(np.prod(kernel.shape[:n_in])), -1)


def _tflite_layout(layer, kernel):
    kind = type(layer).__name__
    matrix = matrix_view(layer, kernel)
    if matrix is not None:
        return matrix.T
    if kind in ("Conv2D", "Convolution2D") and kernel.ndim == 4:
        return np.transpose(kernel, (3, 0, 1, 2))
    return None


def reference_outputs(model, inputs: dict, batch: int = 128) -> dict:
    """``{output name: array}``: what the Keras model computes on ``inputs`` (inference mode,
    ``batch`` samples per call), on whatever backend it runs (Keras 3: TensorFlow, JAX, PyTorch).

    Output names: ``model.output_names`` for tf_keras; for Keras 3 the keys of a dict output,
    else ``output_0``, ``output_1``, ... in the model's output order, as the TFLite signature of a
    Keras 3 model names them (:func:`tflite_export.verification.align_outputs` matches them)."""
    from tfprune import keras_utils  # pylint: disable=import-outside-toplevel

    names = keras_utils.input_names(model)
    n = len(inputs[names[0]])
    chunks, keys = [], None
    for start in range(0, n, batch):
        feed = [inputs[name][start:start + batch] for name in names]
        out = model(feed if len(feed) > 1 else feed[0], training=False)
        if isinstance(out, dict):
            keys = list(out)
            out = [out[k] for k in keys]
        elif not isinstance(out, (list, tuple)):
            out = [out]
        chunks.append([to_numpy(o) for o in out])
    if keys is None:
        keys = (list(model.output_names) if not keras_utils.is_keras3_model(model)
                else [f"output_{i}" for i in range(len(chunks[0]))])
    return {name: np.concatenate([c[i] for c in chunks]) for i, name in enumerate(keys)}


def to_numpy(value) -> np.ndarray:
    """A backend tensor (TensorFlow, JAX, or a PyTorch tensor that may require grad) as numpy."""
    if hasattr(value, "detach"):  # torch
        value = value.detach().cpu()
    return np.asarray(value)


def count_non_finite(outputs: dict) -> int:
    """How many NaN / inf values ``outputs`` ({name: array}) hold."""
    return sum(int(np.size(v) - np.isfinite(v).sum()) for v in outputs.values())
