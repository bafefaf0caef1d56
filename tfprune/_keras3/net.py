"""The Keras 3 implementation of a scoring net (see :mod:`tfprune.scoring.nets`), on the
model's backend (TensorFlow, JAX or PyTorch).

The net is a copy of the model rebuilt from its serialized config (every nested layer's dtype
policy edited: float64 for SynFlow, float32 instead of a mixed float16/bfloat16 policy; output
softmax replaced by the identity when asked), whose weights are copied from the user's. Passes
are ``stateless_call``s with the kernels given as arguments, differentiated by
:mod:`tfprune._keras3.autodiff`. SynFlow's float64 on JAX: the whole net lives under
``jax.enable_x64(True)``; it is never silently float32 (checked after building).
"""
from __future__ import annotations

import contextlib
import copy
import types

import keras
import numpy as np
from keras import ops

from tfprune._keras3 import autodiff
from tfprune._keras3.layers import prunable_kernels

OPS = types.SimpleNamespace(
    mean=ops.mean, sum=ops.sum, log_softmax=ops.log_softmax, cast=ops.cast, reshape=ops.reshape, abs=ops.abs,
    exp=ops.exp, sqrt=ops.sqrt, stop_gradient=ops.stop_gradient, concatenate=lambda values: ops.concatenate(values, -1),
    one_hot=lambda labels, classes, dtype: ops.one_hot(ops.reshape(ops.cast(labels, "int32"), (-1,)), classes,
                                                       dtype=dtype),
    classes=lambda z: z.shape[-1])
_ACTIVATION_LAYERS = ("ReLU", "LeakyReLU", "ELU", "Softmax", "Activation", "PReLU")


def _inputs(model):
    inputs = getattr(model, "inputs", None)
    if not inputs:
        raise ValueError(f"model: {model.name!r} has no symbolic inputs (a subclassed or unbuilt model); build it "
                         "as a Sequential with an Input or a Functional model to score it.")
    return inputs


def input_specs(model) -> "dict[str, tuple]":
    return {t._keras_history.operation.name: tuple(t.shape) for t in _inputs(model)}


def input_dtypes(model) -> "list[str]":
    return [keras.backend.standardize_dtype(t.dtype) for t in _inputs(model)]


def input_shape(model) -> tuple:
    inputs = _inputs(model)
    if len(inputs) > 1:
        raise ValueError(f"model: {model.name!r} has {len(inputs)} inputs; tfprune's data-dependent scorers and "
                         "SynFlow support single-input models.")
    return tuple(inputs[0].shape)


def output_names(model) -> "list[str]":
    return [t._keras_history.operation.name for t in model.outputs]


def kernel_shapes(model, include=()) -> "dict[str, tuple]":
    return {name: tuple(v.shape) for name, v in prunable_kernels(model, include).items()}


def kernel_values(model, include=()) -> "dict[str, np.ndarray]":
    return {name: np.array(ops.convert_to_numpy(v.value)) for name, v in prunable_kernels(model, include).items()}


@contextlib.contextmanager
def _x64():
    """float64 for the duration of a pass. JAX's default is 32-bit: enable its 64-bit types.
    Keras' dtype promotion turns float64 results into float32 on every backend but TensorFlow
    (``keras.src.backend.common.dtypes.BIT64_TO_BIT32_DTYPE``, "aligned with JAX's default"):
    lift that for the pass. :class:`Keras3Net` checks that the outputs really are float64."""
    from keras.src.backend.common import dtypes

    table, saved = dtypes.BIT64_TO_BIT32_DTYPE, dict(dtypes.BIT64_TO_BIT32_DTYPE)
    table["float64"] = "float64"
    try:
        if keras.backend.backend() == "jax":
            import jax
            with jax.enable_x64(True):
                yield
        else:
            yield
    finally:
        table.clear()
        table.update(saved)


def _edit_layers(node, fn):
    """Calls ``fn(layer_entry)`` on every serialized layer (a dict with class_name and config) in ``node``."""
    if isinstance(node, dict):
        if "class_name" in node and isinstance(node.get("config"), dict):
            fn(node)
        for value in node.values():
            _edit_layers(value, fn)
    elif isinstance(node, list):
        for value in node:
            _edit_layers(value, fn)


def _policy_name(dtype):
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name")
    return dtype


def _linear_entry(entry):
    name, dtype = entry["config"].get("name"), entry["config"].get("dtype")
    entry.update(module="keras.layers", class_name="Activation", registered_name=None)
    entry["config"] = {"name": name, "activation": "linear", "dtype": dtype, "trainable": True}


def rebuilt(model, dtype=None, strip_softmax=False, linear=False):
    """A copy of ``model`` from its config (see the module docstring); weights copied."""
    outputs = set(output_names(model)) if strip_softmax else set()
    config = copy.deepcopy(keras.saving.serialize_keras_object(model))

    def edit(entry):
        layer = entry["config"]
        policy = _policy_name(layer.get("dtype"))
        if dtype is not None and "dtype" in layer:
            layer["dtype"] = dtype
        elif isinstance(policy, str) and policy.startswith("mixed_"):
            layer["dtype"] = "float32"  # scores never in float16/bfloat16, whatever the policy
        softmax_out = layer.get("name") in outputs and (
            entry["class_name"] == "Softmax" or layer.get("activation") == "softmax")
        if (linear and entry["class_name"] in _ACTIVATION_LAYERS) or (softmax_out and entry["class_name"] in
                                                                       ("Softmax", "Activation")):
            _linear_entry(entry)
        elif (linear and "activation" in layer) or softmax_out:
            layer["activation"] = "linear"

    _edit_layers(config, edit)
    clone = keras.saving.deserialize_keras_object(config)
    source, target = model.weights, clone.weights
    if [v.name for v in source] != [v.name for v in target] or [v.shape for v in source] != [v.shape for v in target]:
        raise ValueError(f"model: rebuilding {model.name!r} from its config did not give the same variables; "
                         "tfprune scores Keras 3 models whose get_config/from_config round trip.")
    for s, t in zip(source, target):
        t.assign(np.asarray(ops.convert_to_numpy(s.value)).astype(t.dtype))
    return clone


class Keras3Net:
    """See :class:`tfprune.scoring.nets.Net`."""

    ops = OPS

    def __init__(self, clone, batches, scope=contextlib.nullcontext, float64=False, include=()):
        self.clone, self._scope, self._float64 = clone, scope, float64
        kernels = prunable_kernels(clone, include)
        self.names = list(kernels)
        slots = {id(v): (0, i) for i, v in enumerate(clone.trainable_variables)}
        slots.update({id(v): (1, i) for i, v in enumerate(clone.non_trainable_variables)})
        self._slots = [slots[id(kernels[n])] for n in self.names]
        self.dtype = np.dtype(kernels[self.names[0]].dtype) if self.names else np.dtype("float32")
        self._size = sum(int(np.prod(kernels[n].shape)) for n in self.names)
        self.batches = [(keras.tree.map_structure(np.asarray, x), _numpy(y)) for x, y in batches]
        self._functions = {}
        self._kernels = [kernels[n] for n in self.names]
        self._base = None  # masked_gradient: the clone's kernels (never changed: the passes are stateless)

    def _forward(self, objective):
        trainable = [v.value for v in self.clone.trainable_variables]
        non_trainable = [v.value for v in self.clone.non_trainable_variables]

        def f(ks, x, y):
            values = (list(trainable), list(non_trainable))
            for (where, i), k in zip(self._slots, ks):
                values[where][i] = k
            outputs, _ = self.clone.stateless_call(values[0], values[1], x, training=False)
            outputs = keras.tree.flatten(outputs)
            if self._float64 and any(keras.backend.standardize_dtype(o.dtype) != "float64" for o in outputs):
                raise FloatingPointError(f"SynFlow: the float64 pass of {self.clone.name!r} on the "
                                         f"{keras.backend.backend()} backend computed in "
                                         f"{keras.backend.standardize_dtype(outputs[0].dtype)}; SynFlow never scores "
                                         "in float32.")
            return objective(OPS, y, outputs)
        return f

    def _fns(self, objective):
        if objective not in self._functions:
            self._functions[objective] = autodiff.differentiate(keras.backend.backend(), self._forward(objective))
        return self._functions[objective]

    def _mean(self, fn, kernels, *extra, batches=None):
        ks = [ops.convert_to_tensor(np.asarray(kernels[n], self.dtype)) for n in self.names]
        total, count = None, 0
        for x, y in self.batches if batches is None else batches:
            n = len(keras.tree.flatten(x)[0])
            x = keras.tree.map_structure(
                lambda a: ops.convert_to_tensor(a.astype(self.dtype) if a.dtype.kind == "f" else a), x)
            y = None if y is None else keras.tree.map_structure(ops.convert_to_tensor, y)
            values = [np.asarray(ops.convert_to_numpy(v)) for v in fn(ks, x, y, *extra)]
            if total is None and batches is None and len(self.batches) == 1:
                return {name: v.astype(self.dtype, copy=False) for name, v in zip(self.names, values)}
            values = [np.asarray(v, np.float64) * n for v in values]
            total = values if total is None else [a + b for a, b in zip(total, values)]
            count += n
        return {n: (t / count).astype(self.dtype) for n, t in zip(self.names, total)}

    def gradient(self, kernels, objective, batches=None):
        with self._scope():
            return self._mean(self._fns(objective)[0], kernels, batches=batches)

    def masked_gradient(self, masks, objective):
        if self._base is None:
            with self._scope():
                self._base = {n: np.asarray(ops.convert_to_numpy(v.value)) for n, v in zip(self.names, self._kernels)}
        w = {n: self._base[n] * np.asarray(masks[n], self.dtype) if masks and n in masks else self._base[n]
             for n in self.names}
        return w, self.gradient(w, objective)

    def squared_gradients(self, kernels, objective, batches=None):
        key = ("squared_gradients", objective)
        if key not in self._functions:
            self._functions[key] = autodiff.differentiate(keras.backend.backend(), self._forward(objective),
                                                          autodiff.SQUARED)
        chunk = autodiff.per_example_chunk(self._size)
        parts = [keras.tree.map_structure(lambda a: a[i:i + chunk], (x, y))
                 for x, y in (self.batches if batches is None else batches)
                 for i in range(0, len(keras.tree.flatten(x)[0]), chunk)]
        with self._scope():
            return self._mean(self._functions[key], kernels, batches=parts)

    def hessian_gradient(self, kernels, objective, g):
        with self._scope():
            g = [ops.convert_to_tensor(np.asarray(g[n], self.dtype)) for n in self.names]
            return self._mean(self._fns(objective)[1], kernels, g)


def _numpy(y):
    if y is None:
        return None
    if isinstance(y, (tuple, list)):
        return tuple(np.asarray(t) for t in y)
    return np.asarray(y)


def loss_net(model, batches, strip_softmax=False, include=()) -> Keras3Net:
    return Keras3Net(rebuilt(model, strip_softmax=strip_softmax), batches, include=include)


def flow_net(model, ones, paths=False, include=()) -> Keras3Net:
    with _x64():
        clone = rebuilt(model, dtype="float64", strip_softmax=True, linear=paths)
        bad = [v.path for v in clone.weights if np.dtype(v.dtype) != np.float64]
        if bad:
            raise FloatingPointError(f"SynFlow: the float64 copy of {model.name!r} holds {len(bad)} variable(s) in another "
                                     f"dtype ({bad[:3]}); SynFlow never scores in float32.")
        for v in clone.weights:
            v.assign(np.abs(np.asarray(ops.convert_to_numpy(v.value))))
        if paths:
            _identity_except_kernels(clone)
    return Keras3Net(clone, [(ones, None)], scope=_x64, float64=True, include=include)


def _identity_except_kernels(clone):
    """Path counting: biases of prunable layers 0, BatchNorm the identity (kernels stay)."""
    kernels = {id(v) for v in prunable_kernels(clone).values()}
    identity = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}
    for layer in clone._flatten_layers(include_self=False, recursive=True):
        own = list(layer._trainable_variables) + list(layer._non_trainable_variables)
        if isinstance(layer, keras.layers.BatchNormalization):
            for v in own:
                v.assign(np.full(v.shape, identity.get(v.name, 1.0)))
        elif any(id(v) in kernels for v in own):
            for v in own:
                if id(v) not in kernels:
                    v.assign(np.zeros(v.shape))
