"""SynFlow's tf_keras nets (see :func:`tfprune.scoring.nets.flow_net`): the float64 scoring clone
with every weight replaced by its absolute value, and the path-counting clone.

SynFlow's net is kept for the next call on the same model (same architecture, input shape and
thread; one net, the last one made): that call copies the model's current weights into it and
skips the clone and the trace, which are most of SynFlow's cost on small models.
"""
from __future__ import annotations

import threading
import weakref

import numpy as np
import tensorflow as tf

from tfprune import _keras
from tfprune.scoring._tfkeras_clone import copy_weights, scoring_clone
from tfprune.scoring._tfkeras_net import TfKerasNet


def flow_net(model, ones, paths=False) -> TfKerasNet:
    """float64 clone, pre-softmax outputs, fed ``ones``. Every weight is replaced by its absolute
    value; with ``paths`` activations are the identity, biases zero and BatchNorm the identity.

    SynFlow's net (not ``paths``) is kept for the next call on the same model, architecture,
    input shape and thread (one net, the last one made): that call only copies the model's
    current weights into it, with no new clone and no new trace. It holds the float64 copy of
    the weights until then (or until the model is freed)."""
    if paths:
        return _path_net(model, ones)
    key = (_fingerprint(model), tuple(np.shape(ones)), threading.get_ident())
    ref, cached_key, net = _LAST_FLOW_NET
    if ref() is model and cached_key == key:
        copy_weights(model, net.clone)
        _absolute(net.clone)
        net.restart(_keras.prunable_kernels(model))
        return net
    clone, _ = scoring_clone(model, dtype="float64", strip_softmax=True)
    _absolute(clone)
    net = TfKerasNet(clone, [(tf.convert_to_tensor(ones, tf.float64), None)], source=_keras.prunable_kernels(model),
                     absolute=True)
    _LAST_FLOW_NET[:] = [weakref.ref(model, _forget), key, net]
    return net


_LAST_FLOW_NET = [lambda: None, None, None]  # [weak reference to the model, key, net]


def _forget(ref) -> None:
    """The kept net goes with its model (called when the model is freed)."""
    if _LAST_FLOW_NET[0] is ref:
        _LAST_FLOW_NET[:] = [lambda: None, None, None]


def _fingerprint(model):
    """What SynFlow's clone is made of: the model's config and its weights' shapes and dtypes."""
    return repr((model.get_config(), [(w.shape.as_list(), w.dtype.name) for w in model.weights]))


def _absolute(clone) -> None:
    for w in clone.weights:
        w.assign(tf.abs(w))


def _path_net(model, ones) -> TfKerasNet:
    clone, _ = scoring_clone(model, dtype="float64", strip_softmax=True, linear=True)
    for layer in clone.layers:
        if _keras.layer_kind(layer) == "batchnorm":
            values = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}
            for w in layer.weights:
                key = w.name.split("/")[-1].split(":")[0]
                w.assign(tf.fill(tf.shape(w), tf.constant(values.get(key, 1.0), tf.float64)))
        elif _keras.is_prunable(layer):
            kernels = {id(k) for k in _keras.layer_kernels(layer).values()}
            for w in layer.weights:
                if id(w) not in kernels:
                    w.assign(tf.zeros_like(w))
        else:
            for w in layer.weights:
                w.assign(tf.abs(w))
    return TfKerasNet(clone, [(tf.convert_to_tensor(ones, tf.float64), None)], compiled=False,
                      source=_keras.prunable_kernels(model))
