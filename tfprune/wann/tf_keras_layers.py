"""The custom layers of a weight-agnostic network in tf_keras (:mod:`tfprune.wann.keras_model`);
their Keras 3 twins are in :mod:`tfprune._keras3.wann_layers`."""
from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from tfprune._keras import keras
from tfprune.wann import activations


class AppendBias(keras.layers.Layer):
    """``[x, 1]``: appends the bias node's constant 1 to a [batch, features] input."""

    def call(self, inputs):
        return tf.concat([inputs, tf.ones_like(inputs[:, :1])], axis=-1)


class UnitActivations(keras.layers.Layer):
    """Applies ``names[i]`` (of :data:`tfprune.wann.activations.ACTIVATIONS`) to unit i."""

    def __init__(self, names: Sequence[str], **kwargs):
        super().__init__(**kwargs)
        self.names = [activations.ACTIVATIONS[activations.index(str(a))] for a in names]

    def call(self, inputs):
        distinct = sorted(set(self.names))
        out = activations.tf_fn(distinct[0])(inputs)
        for name in distinct[1:]:
            chosen = tf.constant([a == name for a in self.names])
            out = tf.where(chosen, activations.tf_fn(name)(inputs), out)
        return out

    def get_config(self):
        return dict(super().get_config(), names=list(self.names))
