"""A weight-agnostic network as a tf_keras model whose weights all equal the shared weight.

Layered form: hidden nodes are grouped by depth (:meth:`~tfprune.wann.genome.Genome.depths`).
The input is flattened and the bias node (a column of ones, :class:`AppendBias`) appended; the
nodes of depth ``d`` are a ``Dense`` layer ``depth{d}`` (no bias) reading the concatenation of
the inputs, the bias and every node of depth ``< d``; its kernel is ``w * mask``, the mask holding
the network's connections; a :class:`UnitActivations` layer ``act{d}`` then applies each unit's
own activation. The ``output`` Dense reads all of them (its outputs are logits, or activated as
the network says). So a skip connection is a kernel entry that reads an earlier block.

:func:`masks` gives those masks keyed by layer name, as :func:`tfprune.apply_masks` takes them;
:func:`build_ticket` returns the model with its masks held by tfprune's fixed-mask wrappers, so
training its weights afterwards keeps the pruned connections at exactly zero. The model uses
only TFLite builtin ops (``tflite_export.export`` converts it).

    >>> g = genome.minimal(3, 2, max_hidden=2, rng=np.random.default_rng(0), density=1.0)
    >>> m = build_model(g, shared_weight=0.5)
    >>> [layer.name for layer in m.layers], m.get_layer("output").kernel.shape
    (['input', 'bias', 'output'], TensorShape([4, 2]))
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from tfprune._keras import keras
from tfprune.wann import activations, genome


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


def custom_objects() -> "dict[str, type]":
    """The custom layers, for ``tf_keras.models.load_model(..., custom_objects=...)``."""
    return {"AppendBias": AppendBias, "UnitActivations": UnitActivations}


def levels(g: genome.Genome) -> "list[np.ndarray]":
    """Node numbers of the hidden nodes of each depth 1, 2, ... (slot order within a depth)."""
    depth = g.depths()
    return [g.hidden[depth == d] for d in range(1, int(depth.max(initial=0)) + 1)]


def masks(g: genome.Genome) -> "dict[str, np.ndarray]":
    """``{"depth1": [inputs + 1, n_1], ..., "output": [all sources, n_outputs]}`` float32 0/1 kernel masks."""
    sources = list(range(g.n_inputs + 1))
    out = {}
    for d, nodes in enumerate(levels(g), 1):
        out[f"depth{d}"] = g.conn[np.ix_(sources, nodes)].astype(np.float32)
        sources += list(nodes)
    out["output"] = g.conn[np.ix_(sources, np.arange(g.first_output, g.conn.shape[0]))].astype(np.float32)
    return out


def build_model(g: genome.Genome, shared_weight: float = 1.0, input_shape: Optional[Sequence[int]] = None,
                softmax: bool = False):
    """The tf_keras model of ``g`` with every connection's weight ``shared_weight`` (pruned ones 0).

    ``input_shape``: the examples' shape (flattened inside the model; default ``(n_inputs,)``).
    """
    shape = tuple(input_shape or (g.n_inputs,))
    if int(np.prod(shape)) != g.n_inputs:
        raise ValueError(f"input_shape: got {shape} ({int(np.prod(shape))} features); allowed: a shape of "
                         f"{g.n_inputs} features.")
    inputs = keras.Input(shape, name="input")
    flat = keras.layers.Flatten(name="flatten")(inputs) if len(shape) > 1 else inputs
    parts = [AppendBias(name="bias")(flat)]
    kernel_masks = masks(g)
    for d, nodes in enumerate(levels(g), 1):
        source = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name=f"sources{d}")(parts)
        pre = keras.layers.Dense(len(nodes), use_bias=False, kernel_initializer="zeros", name=f"depth{d}")(source)
        parts.append(UnitActivations([activations.ACTIVATIONS[a] for a in g.act[nodes]], name=f"act{d}")(pre))
    source = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="sources_output")(parts)
    out = keras.layers.Dense(g.n_outputs, use_bias=False, kernel_initializer="zeros", name="output")(source)
    output_acts = [activations.ACTIVATIONS[a] for a in g.act[g.first_output:]]
    if any(a != "linear" for a in output_acts):
        out = UnitActivations(output_acts, name="output_activation")(out)
    if softmax:
        out = keras.layers.Softmax(name="softmax")(out)
    model = keras.Model(inputs, out, name="wann")
    for name, mask in kernel_masks.items():
        model.get_layer(name).set_weights([np.float32(shared_weight) * mask])
    return model


def build_ticket(g: genome.Genome, shared_weight: float = 1.0, input_shape: Optional[Sequence[int]] = None,
                 softmax: bool = False):
    """:func:`build_model` with its masks held by :class:`tfprune.FixedMaskWrapper` (train it as a ticket)."""
    from tfprune import wrapper

    return wrapper.apply_masks(build_model(g, shared_weight, input_shape, softmax), masks(g))
