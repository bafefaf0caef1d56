"""A weight-agnostic network as a Keras model (tf_keras, or Keras 3 on any backend with
``keras=``) whose weights all equal the shared weight.

Layered form: hidden nodes are grouped by depth (:meth:`~tfprune.wann.genome.Genome.depths`).
The input is flattened and the bias node (a column of ones,
:class:`~tfprune.wann.tf_keras_layers.AppendBias`) appended; the nodes of depth ``d`` are a
``Dense`` layer ``depth{d}`` (no bias) reading the concatenation of the inputs, the bias and every
node of depth ``< d``; its kernel is ``w * mask``, the mask holding the network's connections; a
:class:`~tfprune.wann.tf_keras_layers.UnitActivations` layer ``act{d}`` then applies each unit's
own activation. The ``output`` Dense reads all of them (its outputs are logits, or activated as
the network says). So a skip connection is a kernel entry that reads an earlier block.

:func:`masks` gives those masks keyed by layer name, as :func:`tfprune.apply_masks` takes them;
:func:`build_ticket` returns the model with its masks held by tfprune's fixed-mask wrappers, so
training its weights afterwards keeps the pruned connections at exactly zero. The model uses
only TFLite builtin ops (``tflite_export.export`` converts it). In Keras 3 the same network is
built from :mod:`tfprune._keras3.wann_layers` (``keras.ops`` only; registered serializable, so a
ticket's ``.keras`` file loads with ``keras.saving.load_model`` after ``import tfprune``) and the
masks are held by tfprune's Keras 3 ``MaskedLayer``.

    >>> g = genome.minimal(3, 2, max_hidden=2, rng=np.random.default_rng(0), density=1.0)
    >>> m = build_model(g, shared_weight=0.5)
    >>> [layer.name for layer in m.layers], m.get_layer("output").kernel.shape
    (['input', 'bias', 'output'], TensorShape([4, 2]))
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tfprune import _keras3
from tfprune.wann import activations, genome


def _layer_classes(keras) -> "tuple[type, type]":
    """(append-bias layer, unit-activations layer) of ``keras``'s flavour (the Keras 3 ones are
    registered serializable classes of :mod:`tfprune._keras3.wann_layers`)."""
    if _keras3._is_keras3_module(keras):
        from tfprune._keras3 import wann_layers

        return wann_layers.WannAppendBias, wann_layers.WannUnitActivations
    from tfprune.wann import tf_keras_layers

    return tf_keras_layers.AppendBias, tf_keras_layers.UnitActivations


def custom_objects() -> "dict[str, type]":
    """The tf_keras custom layers, for ``tf_keras.models.load_model(..., custom_objects=...)``
    (a Keras 3 model needs none: its layers are registered when tfprune is imported)."""
    append_bias, unit_activations = _layer_classes(_keras_module(None))
    return {"AppendBias": append_bias, "UnitActivations": unit_activations}


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


def _keras_module(keras):
    """``keras`` (tf_keras or Keras 3), or tf_keras through the seam when it is None."""
    if keras is None:
        from tfprune._keras import keras as tf_keras

        return tf_keras
    if not all(hasattr(keras, attr) for attr in ("Model", "Input", "layers")):
        raise TypeError(f"keras: expected a Keras module (tf_keras, or keras for Keras 3), got {keras!r}.")
    return keras


def build_model(g: genome.Genome, shared_weight: float = 1.0, input_shape: Optional[Sequence[int]] = None,
                softmax: bool = False, keras=None):
    """The Keras model of ``g`` with every connection's weight ``shared_weight`` (pruned ones 0).

    ``input_shape``: the examples' shape (flattened inside the model; default ``(n_inputs,)``).
    ``keras``: None (tf_keras) or the Keras 3 module (``import keras``; any backend).
    """
    keras = _keras_module(keras)
    append_bias, unit_activations = _layer_classes(keras)
    shape = tuple(input_shape or (g.n_inputs,))
    if int(np.prod(shape)) != g.n_inputs:
        raise ValueError(f"input_shape: got {shape} ({int(np.prod(shape))} features); allowed: a shape of "
                         f"{g.n_inputs} features.")
    inputs = keras.Input(shape, name="input")
    flat = keras.layers.Flatten(name="flatten")(inputs) if len(shape) > 1 else inputs
    parts = [append_bias(name="bias")(flat)]
    kernel_masks = masks(g)
    for d, nodes in enumerate(levels(g), 1):
        source = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name=f"sources{d}")(parts)
        pre = keras.layers.Dense(len(nodes), use_bias=False, kernel_initializer="zeros", name=f"depth{d}")(source)
        parts.append(unit_activations([activations.ACTIVATIONS[a] for a in g.act[nodes]], name=f"act{d}")(pre))
    source = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="sources_output")(parts)
    out = keras.layers.Dense(g.n_outputs, use_bias=False, kernel_initializer="zeros", name="output")(source)
    output_acts = [activations.ACTIVATIONS[a] for a in g.act[g.first_output:]]
    if any(a != "linear" for a in output_acts):
        out = unit_activations(output_acts, name="output_activation")(out)
    if softmax:
        out = keras.layers.Softmax(name="softmax")(out)
    model = keras.Model(inputs, out, name="wann")
    for name, mask in kernel_masks.items():
        model.get_layer(name).set_weights([np.float32(shared_weight) * mask])
    return model


def build_ticket(g: genome.Genome, shared_weight: float = 1.0, input_shape: Optional[Sequence[int]] = None,
                 softmax: bool = False, keras=None):
    """:func:`build_model` with its masks held by tfprune's fixed masks (:class:`tfprune.FixedMaskWrapper`
    in tf_keras, the Keras 3 ``MaskedLayer`` in Keras 3): train it as a ticket."""
    from tfprune import wrapper

    return wrapper.apply_masks(build_model(g, shared_weight, input_shape, softmax, keras), masks(g))
