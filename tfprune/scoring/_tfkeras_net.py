"""The tf_keras implementation of a scoring net (see :mod:`tfprune.scoring.nets`).

The net is a *scoring clone* built from the layers' configs (optionally in float64, with the
final softmax removed, or with every activation linear) whose weights are a copy of the
user's; its kernels are set to the values a scorer asks for before each pass, so the user's
weights are unchanged by scoring, bit for bit. Gradients are ``tf.GradientTape`` passes in a
``tf.function`` traced once per objective.
"""
from __future__ import annotations

import types
from typing import Iterable, Mapping

import numpy as np
import tensorflow as tf

from tfprune import _keras
from tfprune._keras import keras
from tfprune._keras3.autodiff import per_example_chunk

OPS = types.SimpleNamespace(
    mean=tf.reduce_mean, sum=tf.reduce_sum, log_softmax=tf.nn.log_softmax, cast=tf.cast,
    reshape=tf.reshape, abs=tf.abs, exp=tf.exp, sqrt=tf.sqrt, stop_gradient=tf.stop_gradient,
    concatenate=lambda values: tf.concat(values, axis=-1),
    one_hot=lambda labels, classes, dtype: tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), classes, dtype=dtype),
    classes=lambda z: tf.shape(z)[-1])


def scoring_clone(model, dtype: "str | None" = None, strip_softmax: bool = False, linear: bool = False):
    """A plain copy of ``model`` (wrappers removed), every layer in ``dtype`` (None: as it is,
    except that float16/bfloat16 layers, e.g. under ``mixed_float16``, compute in float32).

    With ``strip_softmax`` each output layer's softmax (its activation, or a final ``Softmax``
    layer) is replaced by the identity, so the clone returns logits. With ``linear`` every
    activation (layer argument or activation layer) and every LayerNormalization-like layer
    (it divides by the input's own spread, which is 0 when the path counts reach it as a
    constant vector) is the identity.
    Returns ``(clone, had_softmax)``. The clone's weights are a copy of the original's.
    """
    softmax_outputs = {id(_keras.inner_layer(l)) for l in _keras.output_layers(model)
                       if strip_softmax and _keras.ends_in_softmax(l)}
    had_softmax = bool(softmax_outputs)

    def clone_layer(layer):
        inner = _keras.inner_layer(layer)
        config = dict(inner.get_config())
        if dtype is not None:
            config["dtype"] = dtype
        elif _keras.compute_dtype_is_low_precision(inner):
            config["dtype"] = "float32"  # scores never in float16, whatever the policy
        if linear and (_keras.is_activation_layer(inner) or _keras.layer_kind(inner) == "normalization"):
            return keras.layers.Activation("linear", name=inner.name, dtype=dtype or inner.dtype)
        if linear and "activation" in config:
            config["activation"] = "linear"
        if id(inner) in softmax_outputs:
            if _keras.layer_kind(inner) == "softmax":
                return keras.layers.Activation("linear", name=inner.name, dtype=dtype or inner.dtype)
            config["activation"] = "linear"
        return inner.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=clone_layer)
    copy_weights(model, clone)
    return clone, had_softmax


def copy_weights(model, clone) -> None:
    """``model``'s weights into its scoring clone (in the clone's dtypes)."""
    originals = {_keras.inner_layer(l).name: _keras.inner_layer(l) for l in model.layers}
    for layer in clone.layers:
        source = originals.get(layer.name)
        if source is not None and source.weights:
            layer.set_weights([np.asarray(w, dtype=v.dtype.as_numpy_dtype)
                               for w, v in zip(source.get_weights(), layer.weights)])


input_shape = _keras.input_shape


def input_specs(model) -> "dict[str, tuple]":
    return {"input": _keras.input_shape(model)}


def input_dtypes(model) -> "list[str]":
    return [tf.as_dtype(t.dtype).name for t in model.inputs]
output_names = _keras.output_names


def kernel_shapes(model) -> "dict[str, tuple]":
    return {name: tuple(k.shape) for name, k in _keras.prunable_kernels(model).items()}


def kernel_values(model) -> "dict[str, np.ndarray]":
    return {name: np.asarray(k.numpy()) for name, k in _keras.prunable_kernels(model).items()}


def _accumulate(batches: Iterable, fn) -> "list[tf.Tensor]":
    """Example-weighted mean of ``fn(x, y)`` (a list of tensors) over the batches (one batch: its
    value as it is, without two passes that scale it by n and back)."""
    batches = list(batches)
    if len(batches) == 1:
        return fn(*batches[0])
    total, count = None, 0
    for x, y in batches:
        n = int(x.shape[0])
        values = fn(x, y)
        scaled = [v * tf.cast(n, v.dtype) for v in values]
        total = scaled if total is None else [a + b for a, b in zip(total, scaled)]
        count += n
    return [t / tf.cast(count, t.dtype) for t in total]


class TfKerasNet:
    """See :class:`tfprune.scoring.nets.Net`."""

    ops = OPS
    # how the passes over the batches are combined (one device; replicas: scoring/_distributed.py)
    _accumulate = staticmethod(_accumulate)

    def __init__(self, clone, batches, compiled: bool = True, source=None, absolute: bool = False):
        kernels = _keras.prunable_kernels(clone)
        self.clone, self.batches, self.compiled = clone, batches, compiled
        self.names = list(kernels)
        self._variables = [kernels[n] for n in self.names]
        self.dtype = np.dtype(self._variables[0].dtype.as_numpy_dtype) if self._variables else np.dtype("float32")
        self._traced = {}
        # masked_gradient: a copy of the user's kernels the net started from (in their own dtype;
        # |.| of them if absolute), and what the variables hold now (see masked_gradient)
        self._absolute = absolute
        self.restart(source)

    def restart(self, source) -> None:
        """The net starts again from ``source`` (``{key: the user's kernel variable}``), whose values
        its variables hold now (masked_gradient's and start_kernels' starting point)."""
        self._start = {n: np.asarray(source[n].numpy()) for n in self.names} if source is not None else None
        self._held = None

    def _set(self, kernels: Mapping[str, np.ndarray]) -> None:
        self._held = False  # masked_gradient: the variables hold kernels from elsewhere now
        for name, variable in zip(self.names, self._variables):
            variable.assign(np.asarray(kernels[name], dtype=variable.dtype.as_numpy_dtype))

    def _fill(self, grads):
        return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, self._variables)]

    def _objective(self, objective, x, y):
        return objective(OPS, y, tf.nest.flatten(self.clone(x, training=False)))

    def _function(self, key, fn):
        """``fn`` eagerly on its first use, traced from its second: a one-shot scorer (SNIP, GraSP)
        never pays for a trace it would use once; an iterative one (SynFlow, the mask searches)
        traces once."""
        if key in self._traced:
            return self._traced[key]
        self._traced[key] = tf.function(fn, reduce_retracing=True) if self.compiled else fn
        return fn

    def _gradient_fn(self, objective):
        def gradient(x, y):
            with tf.GradientTape() as tape:
                value = self._objective(objective, x, y)
            return self._fill(tape.gradient(value, self._variables))
        return gradient

    def gradient(self, kernels, objective, batches=None) -> "dict[str, np.ndarray]":
        self._set(kernels)
        fn = self._function(("gradient", objective), self._gradient_fn(objective))
        grads = self._accumulate(self.batches if batches is None else batches, fn)
        return {n: np.asarray(g) for n, g in zip(self.names, grads)}  # read-only views, no copy

    def start_kernels(self) -> "dict[str, np.ndarray]":
        """The user's kernels the net started from (in their own dtype; not their absolute values)."""
        return self._start

    def masked_gradient(self, masks, objective):
        masks = {n: np.asarray(masks[n]) for n in self.names if masks and n in masks}
        held = self._held  # None: the starting kernels; a dict: them times these masks; False: others
        for name, variable in zip(self.names, self._variables):
            mask = masks.get(name)
            before = held.get(name) if isinstance(held, dict) else None
            if held is not False and mask is before:
                continue
            if held is False or (before is not None and (mask is None or np.any(mask > before))):
                variable.assign(self._start[name].astype(variable.dtype.as_numpy_dtype))  # a weight comes back
                if self._absolute:
                    variable.assign(tf.abs(variable))
            if mask is not None:
                variable.assign(variable * tf.cast(mask, variable.dtype))
        self._held = masks
        fn = self._function(("gradient", objective), self._gradient_fn(objective))
        grads = self._accumulate(self.batches, fn)
        return ({n: np.asarray(v.read_value()) for n, v in zip(self.names, self._variables)},
                {n: np.asarray(g) for n, g in zip(self.names, grads)})

    def drop_gradient(self, dropped, objective):
        """``dropped``: ``{key: flat indices}`` of kernel entries to set to 0, on top of those set to 0
        before (masked_gradient's masks and earlier calls); then the gradient at the kernels held,
        ``{key: np.ndarray}`` (read-only). One call of one concrete function, traced once: the
        indices of all kernels travel as one array, and the zeros are scattered in place."""
        if len(self.batches) != 1:
            raise ValueError("drop_gradient: the net must hold one batch.")
        self._held = False  # masked_gradient: the variables no longer hold the masks it set
        parts = [np.asarray(dropped.get(n, ()), np.int64).reshape(-1) for n in self.names]
        bounds = np.cumsum([0] + [len(p) for p in parts], dtype=np.int64)
        key = ("drop_gradient", objective)
        if key not in self._traced:  # iterative by nature: traced at once, one trace for every round
            self._traced[key] = self._drop_function(objective)
        grads = self._traced[key](tf.constant(np.concatenate(parts)), tf.constant(bounds))
        return {n: np.asarray(g) for n, g in zip(self.names, grads)}

    def _drop_function(self, objective):
        def drop_gradient(flat, bounds):
            for i, variable in enumerate(self._variables):
                index = flat[bounds[i]:bounds[i + 1]]
                shape = variable.shape.as_list()
                strides = np.cumprod([1] + shape[:0:-1])[::-1]  # row-major: flat index -> coordinates
                nd = tf.stack([index // int(s) % d for s, d in zip(strides, shape)], axis=1)
                variable.scatter_nd_update(nd, tf.zeros(tf.shape(index), variable.dtype))
            return self._gradient_fn(objective)(*self.batches[0])

        if not self.compiled:
            return drop_gradient
        spec = [tf.TensorSpec([None], tf.int64), tf.TensorSpec([len(self._variables) + 1], tf.int64)]
        return tf.function(drop_gradient, input_signature=spec, autograph=False).get_concrete_function()

    def hessian_gradient(self, kernels, objective, g) -> "dict[str, np.ndarray]":
        def hessian_gradient(x, y, g):
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    value = self._objective(objective, x, y)
                grads = self._fill(inner.gradient(value, self._variables))
                z = tf.add_n([tf.reduce_sum(a * tf.stop_gradient(b)) for a, b in zip(grads, g)])
            return self._fill(outer.gradient(z, self._variables))

        self._set(kernels)
        fn = self._function(("hessian_gradient", objective), hessian_gradient)
        g = [tf.convert_to_tensor(np.asarray(g[n], self.dtype)) for n in self.names]
        return {n: np.asarray(h) for n, h in zip(self.names, self._accumulate(self.batches, lambda x, y: fn(x, y, g)))}


    def squared_gradients(self, kernels, objective, batches=None) -> "dict[str, np.ndarray]":
        def squared(x, y):
            with tf.GradientTape() as tape:
                values = self._objective(objective, x, y)
                values = tf.reshape(values, [tf.shape(values)[0], -1])
            jacobians = self._fill(tape.jacobian(values, self._variables, experimental_use_pfor=True))
            n = tf.cast(tf.shape(values)[0], self.dtype)
            return [tf.reduce_sum(tf.square(j), axis=[0, 1]) / n for j in jacobians]

        self._set(kernels)
        fn = self._function(("squared_gradients", objective), squared)
        chunk = per_example_chunk(sum(int(np.prod(v.shape)) for v in self._variables))
        parts = [tf.nest.map_structure(lambda t: t[i:i + chunk], (x, y))
                 for x, y in (self.batches if batches is None else batches)
                 for i in range(0, int(tf.nest.flatten(x)[0].shape[0]), chunk)]
        return {n: s.numpy() for n, s in zip(self.names, self._accumulate(parts, fn))}


def loss_net(model, batches, strip_softmax=False) -> TfKerasNet:
    clone, _ = scoring_clone(model, strip_softmax=strip_softmax)
    return TfKerasNet(clone, batches, source=_keras.prunable_kernels(model))
