"""Public Keras helpers for code built on tfprune (tflite_export among others).

They answer the Keras-side questions a client needs without importing tf_keras, Keras 3 or
TF-MOT itself: is this a model tfprune works with (tf_keras, or Keras 3 on any backend), which
backend a Keras 3 model runs on, is this layer a pruning wrapper, the names of a model's inputs,
and a structural copy of a model. All of them delegate to tfprune's Keras seams
(:mod:`tfprune._keras` for tf_keras, :mod:`tfprune._keras3` for Keras 3).

    >>> from tfprune import keras_utils
    >>> keras_utils.is_keras_model(object())
    False
    >>> keras_utils.is_pruning_wrapper(object())
    False
    >>> keras_utils.is_keras3_model(object())
    False
"""
from __future__ import annotations

import numpy as np

from tfprune import _keras, _keras3

__all__ = ["clone_model", "input_names", "is_keras3_model", "is_keras_model", "is_pruning_wrapper",
           "keras3_backend", "kernel_owners", "positive_zeros", "require_keras_model"]


def is_keras_model(obj) -> bool:
    """Whether ``obj`` is a tf_keras (Keras 2) model: Sequential, Functional or subclassed."""
    return isinstance(obj, _keras.keras.Model)


def is_keras3_model(obj) -> bool:
    """Whether ``obj`` is a Keras 3 model (``import keras``; Sequential, Functional or subclassed),
    on any backend. Never imports Keras: without it no Keras 3 model can exist."""
    if not _keras3.is_keras3(obj):
        return False
    import keras  # pylint: disable=import-outside-toplevel  (imported already: obj is a Keras 3 object)

    return isinstance(obj, keras.Model)


def keras3_backend() -> str:
    """The Keras 3 backend of this process (``"tensorflow"``, ``"jax"``, ``"torch"``); fixed per
    process by ``KERAS_BACKEND`` (or ``keras.json``). Never imports Keras."""
    return _keras3.backend()


def require_keras_model(obj, argument: str = "model", keras3: bool = False):
    """Returns ``obj`` if it is a tf_keras model (see :func:`is_keras_model`), or, with
    ``keras3=True``, a Keras 3 model (:func:`is_keras3_model`); else raises ``ValueError`` naming
    ``argument``, the type it got and what is allowed.

        >>> require_keras_model(42, "model")
        Traceback (most recent call last):
        ...
        ValueError: model: got int; allowed: a tf_keras Model (import tf_keras as keras).
        >>> require_keras_model(42, "model", keras3=True)
        Traceback (most recent call last):
        ...
        ValueError: model: got int; allowed: a tf_keras Model (import tf_keras as keras) or a Keras 3 keras.Model (import keras).
    """
    if is_keras_model(obj) or (keras3 and is_keras3_model(obj)):
        return obj
    raise ValueError(f"{argument}: got {type(obj).__name__}; allowed: a tf_keras Model "
                     "(import tf_keras as keras)" + (" or a Keras 3 keras.Model (import keras)." if keras3 else "."))


def input_names(model) -> list:
    """The names of ``model``'s inputs, in order: ``model.input_names`` for tf_keras; for Keras 3
    the names of its ``Input`` layers (what a TFLite signature and a ``.keras`` file call them)."""
    if is_keras3_model(model):
        from tfprune._keras3 import layers  # pylint: disable=import-outside-toplevel

        return layers.input_names(model)
    return list(model.input_names)


def is_pruning_wrapper(layer) -> bool:
    """Whether ``layer`` is a pruning wrapper: TF-MOT's ``PruneLowMagnitude`` or tfprune's
    :class:`~tfprune.FixedMaskWrapper` (a subclass), or tfprune's Keras 3 mask wrapper
    (``MaskedLayer``). Never imports TF-MOT."""
    if _keras3.is_keras3(layer):
        from tfprune._keras3 import layers  # pylint: disable=import-outside-toplevel

        return layers.is_masked_layer(layer)
    return _keras.is_pruning_wrapper(layer)


def kernel_owners(layer) -> dict:
    """``{key: the layer whose kernel it is}`` for the kernels tfprune prunes in ``layer`` (a
    wrapper is seen through), keyed as tfprune's masks are: ``{"fc1": <Dense fc1>}`` for a
    Dense/Conv/EinsumDense layer, ``{"mha/query": <EinsumDense query>, "mha/key": ...,
    "mha/value": ..., "mha/attention_output": ...}`` for a MultiHeadAttention ``"mha"``, ``{}``
    for any other layer. A Keras 3 layer gives every prunable kernel at any depth below it, keyed
    by its path of layer names (``"mha/query"``; see :mod:`tfprune._keras3`).

        >>> kernel_owners(object())
        {}
    """
    if _keras3.is_keras3(layer):
        import keras  # pylint: disable=import-outside-toplevel

        if not isinstance(layer, keras.layers.Layer):
            return {}
        from tfprune._keras3 import layers  # pylint: disable=import-outside-toplevel

        return layers.kernel_owners(layer)
    if not isinstance(layer, _keras.keras.layers.Layer):
        return {}
    return _keras.kernel_owners(layer)


def clone_model(model):
    """A new model with the same layer graph and configs as ``model`` and freshly initialised
    weights (``tf_keras.models.clone_model``, or ``keras.models.clone_model`` for a Keras 3 model,
    its input names kept): copy the weights with ``set_weights`` if needed. Raises whatever Keras
    raises for models it cannot clone (e.g. subclassed models)."""
    if is_keras3_model(model):
        from tfprune._keras3 import masked  # pylint: disable=import-outside-toplevel

        return masked.clone(model)
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
