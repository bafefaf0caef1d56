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

from tfprune import _keras

__all__ = ["clone_model", "is_keras_model", "is_pruning_wrapper", "require_keras_model"]


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


def clone_model(model):
    """A new model with the same layer graph and configs as ``model`` and freshly initialised
    weights (``tf_keras.models.clone_model``): copy the weights with ``set_weights`` if needed.
    Raises whatever Keras raises for models it cannot clone (e.g. subclassed models)."""
    return _keras.keras.models.clone_model(model)
