"""Public Keras helpers for code built on tfprune (tflite_export among others).

They answer the Keras-side questions a client needs without importing tf_keras or TF-MOT
itself: is this a model tfprune works with, is this layer a pruning wrapper, and a structural
copy of a model. All of them delegate to tfprune's one Keras seam.

    >>> from tfprune import keras_utils
    >>> keras_utils.is_keras_model(object())
    False
    >>> keras_utils.is_pruning_wrapper(object())
    False
"""
from __future__ import annotations

import numpy as np

from tfprune import _keras

__all__ = ["clone_model", "is_keras_model", "is_pruning_wrapper", "kernel_owners", "positive_zeros",
           "require_keras_model"]


def is_keras_model(obj) -> bool:
    """Whether ``obj`` is a tf_keras (Keras 2) model: Sequential, Functional or subclassed."""
    return isinstance(obj, _keras.keras.Model)


def require_keras_model(obj, argument: str = "model"):
    """Returns ``obj`` if it is a tf_keras model (see :func:`is_keras_model`), else raises
    ``ValueError`` naming ``argument``, the type it got and what is allowed.

        >>> require_keras_model(42, "model")
        Traceback (most recent call last):
        ...
        ValueError: model: got int; allowed: a tf_keras Model (import tf_keras as keras).
    """
    if not is_keras_model(obj):
        raise ValueError(f"{argument}: got {type(obj).__name__}; allowed: a tf_keras Model "
                         "(import tf_keras as keras).")
    return obj


def is_pruning_wrapper(layer) -> bool:
    """Whether ``layer`` is a pruning wrapper: TF-MOT's ``PruneLowMagnitude`` or tfprune's
    :class:`~tfprune.FixedMaskWrapper` (a subclass). Never imports TF-MOT."""
    return _keras.is_pruning_wrapper(layer)


def kernel_owners(layer) -> dict:
    """``{key: the layer whose kernel it is}`` for the kernels tfprune prunes in ``layer`` (a
    wrapper is seen through), keyed as tfprune's masks are: ``{"fc1": <Dense fc1>}`` for a
    Dense/Conv/EinsumDense layer, ``{"mha/query": <EinsumDense query>, "mha/key": ...,
    "mha/value": ..., "mha/attention_output": ...}`` for a MultiHeadAttention ``"mha"``, ``{}``
    for any other layer.

        >>> kernel_owners(object())
        {}
    """
    if not isinstance(layer, _keras.keras.layers.Layer):
        return {}
    return _keras.kernel_owners(layer)


def clone_model(model):
    """A new model with the same layer graph and configs as ``model`` and freshly initialised
    weights (``tf_keras.models.clone_model``): copy the weights with ``set_weights`` if needed.
    Raises whatever Keras raises for models it cannot clone (e.g. subclassed models)."""
    return _keras.keras.models.clone_model(model)


def positive_zeros(values) -> "tuple[list, int]":
    """``(values, n)``: the arrays with every ``-0.0`` of a float array rewritten as ``+0.0`` (every
    other entry unchanged), and how many there were. Masking by multiplication leaves ``-0.0``
    where a negative weight was pruned; it compresses worse and is not what a mask means.

        >>> arrays, n = positive_zeros([np.array([-0.0, 1.0, -2.0]), np.array([3])])
        >>> [a.tolist() for a in arrays], n, bool(np.signbit(arrays[0][0]))
        ([[0.0, 1.0, -2.0], [3]], 1, False)
    """
    out, count = [], 0
    for value in values:
        value = np.asarray(value)
        if value.dtype.kind == "f":
            count += int(((value == 0) & np.signbit(value)).sum())
            value = value + value.dtype.type(0.0)  # -0.0 + 0.0 == +0.0
        out.append(value)
    return out, count
