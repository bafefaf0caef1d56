"""The custom layers of a weight-agnostic network (:mod:`tfprune.wann.keras_model`) in Keras 3.

Registered serializable as ``tfprune>WannAppendBias`` and ``tfprune>WannUnitActivations`` (this
module is imported with :mod:`tfprune._keras3.masked` when Keras 3 is, see
:func:`tfprune._keras3.register_keras_classes`), so a ticket's ``.keras`` file loads with
``keras.saving.load_model`` in any process that imported tfprune. Written with ``keras.ops``
only, so they run on every backend. The activations are the formulas of
:mod:`tfprune.wann.activations` (tests/test_wann_keras3.py checks them against its numpy ones).
"""
from __future__ import annotations

import math

import keras
from keras import ops

_PACKAGE = "tfprune"

#: The activations of :data:`tfprune.wann.activations.ACTIVATIONS`, in keras.ops.
OPS = {
    "linear": lambda x: x,
    "step": lambda x: ops.cast(ops.greater(x, 0.0), x.dtype),
    "sin": lambda x: ops.sin(math.pi * x),
    "cos": lambda x: ops.cos(math.pi * x),
    "gaussian": lambda x: ops.exp(-(x * x) / 2.0),
    "tanh": ops.tanh,
    "sigmoid": ops.sigmoid,
    "inverse": ops.negative,
    "abs": ops.absolute,
    "relu": ops.relu,
}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WannAppendBias(keras.layers.Layer):
    """``[x, 1]``: appends the bias node's constant 1 to a [batch, features] input."""

    def call(self, inputs):
        return ops.concatenate([inputs, ops.ones_like(inputs[:, :1])], axis=-1)

    def compute_output_shape(self, input_shape):
        last = input_shape[-1]
        return (*input_shape[:-1], None if last is None else last + 1)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class WannUnitActivations(keras.layers.Layer):
    """Applies ``names[i]`` (a key of :data:`OPS`) to unit i of a [batch, units] input."""

    def __init__(self, names, **kwargs):
        super().__init__(**kwargs)
        names = [str(a) for a in names]
        bad = [a for a in names if a not in OPS]
        if bad:
            raise ValueError(f"names: got {bad[0]!r}; allowed: {', '.join(map(repr, OPS))}.")
        self.names = names

    def call(self, inputs):
        distinct = sorted(set(self.names))
        out = OPS[distinct[0]](inputs)
        for name in distinct[1:]:
            chosen = ops.convert_to_tensor([a == name for a in self.names])
            out = ops.where(chosen, OPS[name](inputs), out)
        return out

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return dict(super().get_config(), names=list(self.names))
