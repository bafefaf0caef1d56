"""The per-unit activations of a weight-agnostic network, in numpy and TensorFlow.

The ten of Gaier & Ha (2019), defined as their reference implementation does (sin and cos take
``pi * x``; the Gaussian has mean 0 and sigma 1, unnormalised; *inverse* is ``-x``; the step is
``1`` for ``x > 0`` and ``0`` otherwise). An activation is stored as its index in
:data:`ACTIVATIONS`. The TensorFlow versions use only ops that TFLite's builtin set has (SIN, COS,
EXP, TANH, LOGISTIC, NEG, ABS, RELU, GREATER + CAST, MUL).

    >>> [float(numpy_fn(name)(np.float32(0.5))) for name in ("step", "sin", "inverse", "relu")]
    [1.0, 1.0, -0.5, 0.5]
"""
from __future__ import annotations

import math

import numpy as np

#: Names of the activations; an activation is stored as its index here.
ACTIVATIONS = ("linear", "step", "sin", "cos", "gaussian", "tanh", "sigmoid", "inverse", "abs", "relu")

_NUMPY = {
    "linear": lambda x: x,
    "step": lambda x: (x > 0).astype(x.dtype),
    "sin": lambda x: np.sin(np.float32(math.pi) * x),
    "cos": lambda x: np.cos(np.float32(math.pi) * x),
    "gaussian": lambda x: np.exp(-(x * x) / np.float32(2)),
    "tanh": np.tanh,
    "sigmoid": lambda x: np.float32(1) / (np.float32(1) + np.exp(-x)),
    "inverse": np.negative,
    "abs": np.abs,
    "relu": lambda x: np.maximum(x, np.float32(0)),
}


def index(name: str) -> int:
    """The index of activation ``name`` in :data:`ACTIVATIONS` (one-line error for another name)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation: got {name!r}; allowed: {', '.join(map(repr, ACTIVATIONS))}.")
    return ACTIVATIONS.index(name)


def numpy_fn(name: str):
    """``f(x)`` for a numpy array ``x`` (same dtype out)."""
    return _NUMPY[ACTIVATIONS[index(name)]]


def tf_fn(name: str):
    """``f(x)`` for a TensorFlow tensor ``x``: the same formula as :func:`numpy_fn`."""
    import tensorflow as tf  # only the Keras model needs TensorFlow

    pi = tf.constant(math.pi, tf.float32)
    return {
        "linear": lambda x: x,
        "step": lambda x: tf.cast(tf.greater(x, 0.0), x.dtype),
        "sin": lambda x: tf.sin(pi * x),
        "cos": lambda x: tf.cos(pi * x),
        "gaussian": lambda x: tf.exp(-(x * x) / 2.0),
        "tanh": tf.tanh,
        "sigmoid": tf.sigmoid,
        "inverse": tf.negative,
        "abs": tf.abs,
        "relu": tf.nn.relu,
    }[ACTIVATIONS[index(name)]]
