"""The tf_keras implementation of a scoring net (see :mod:`tfprune.scoring.nets`).

The net differentiates a *scoring clone* built from the layers' configs (optionally in float64,
with the final softmax removed, or with every activation linear) whose weights are a copy of the
user's; its kernels are set to the values a scorer asks for before each pass, so the user's
weights are unchanged by scoring, bit for bit. The clone is built on first need: a loss net's
passes at the model's own kernels (SNIP and GraSP without masks) run on the user's model itself
when that provably writes none of its variables
(:func:`tfprune.scoring._tfkeras_clone.same_as_its_scoring_clone`). Gradients are
``tf.GradientTape`` passes, eager on first use and traced from the second.
"""
from __future__ import annotations

import types
from typing import Iterable, Mapping

import numpy as np
import tensorflow as tf

from tfprune import _keras
from tfprune._keras3.autodiff import per_example_chunk
from tfprune.scoring._tfkeras_clone import same_as_its_scoring_clone, scoring_clone

OPS = types.SimpleNamespace(
    mean=tf.reduce_mean, sum=tf.reduce_sum, log_softmax=tf.nn.log_softmax, cast=tf.cast,
    reshape=tf.reshape, abs=tf.abs, exp=tf.exp, sqrt=tf.sqrt, stop_gradient=tf.stop_gradient,
    concatenate=lambda values: tf.concat(values, axis=-1),
    one_hot=lambda labels, classes, dtype: tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), classes, dtype=dtype),
    classes=lambda z: tf.shape(z)[-1])


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

    def __init__(self, clone, batches, compiled: bool = True, source=None, absolute: bool = False, direct=None):
        """``clone``: the model to differentiate, or a function that builds it (on first need).
        ``source``: the user's kernels (``{key: variable}``). ``direct``: the user's model, when
        passes at its own kernels may run on it (no clone; ``source`` must be its kernels)."""
        self._clone, self.batches, self.compiled = clone, batches, compiled
        self.names = list(source) if source is not None else list(_keras.prunable_kernels(self.clone))
        self._direct = direct
        self._traced = {}
        self._absolute = absolute
        self.restart(source)

    def restart(self, source) -> None:
        """The net starts again from ``source`` (``{key: the user's kernel variable}``), whose values
        the clone's variables hold now (masked_gradient's and start_kernels' starting point)."""
        # masked_gradient: the user's kernels the net started from (copied on first need), what
        # the clone's variables hold now, and the kernels it returned last (see _hold)
        self._source, self._start, self._held, self._last = source, None, None, None
        if self._absolute:  # SynFlow's net outlives the call (it is reused): a copy, no reference to the model
            self.start_kernels()
            self._source = None

    @property
    def clone(self):
        if not isinstance(self._clone, tf.Module):  # a function that builds it
            self._clone = self._clone()
            kernels = _keras.prunable_kernels(self._clone)
            if list(kernels) != self.names:
                raise RuntimeError(f"scoring clone: kernels {list(kernels)} differ from the model's {self.names}.")
        return self._clone

    @property
    def _variables(self):
        if "_clone_variables" not in self.__dict__:
            kernels = _keras.prunable_kernels(self.clone)
            self._clone_variables = [kernels[n] for n in self.names]
        return self._clone_variables

    @property
    def dtype(self):
        variables = [self._source[n] for n in self.names] if self._direct is not None else self._variables
        return np.dtype(variables[0].dtype.as_numpy_dtype) if variables else np.dtype("float32")

    def _set(self, kernels: Mapping[str, np.ndarray]) -> None:
        self._held, self._last = False, None  # masked_gradient: the variables hold kernels from elsewhere now
        for name, variable in zip(self.names, self._variables):
            variable.assign(np.asarray(kernels[name], dtype=variable.dtype.as_numpy_dtype))

    def _fill(self, grads, variables=None):
        variables = self._variables if variables is None else variables
        return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]

    def _objective(self, objective, x, y, model=None):
        return objective(OPS, y, tf.nest.flatten((model or self.clone)(x, training=False)))

    def _function(self, key, fn):
        """``fn`` eagerly on its first use, traced from its second: a one-shot scorer (SNIP, GraSP)
        never pays for a trace it would use once; an iterative one (SynFlow, the mask searches)
        traces once."""
        if key in self._traced:
            return self._traced[key]
        self._traced[key] = tf.function(fn, reduce_retracing=True) if self.compiled else fn
        return fn

    def _gradient_fn(self, objective, model=None, variables=None):
        variables = self._variables if variables is None else variables

        def gradient(x, y):
            with tf.GradientTape() as tape:
                value = self._objective(objective, x, y, model)
            return self._fill(tape.gradient(value, variables), variables)
        return gradient

    def gradient(self, kernels, objective, batches=None) -> "dict[str, np.ndarray]":
        self._set(kernels)
        fn = self._function(("gradient", objective), self._gradient_fn(objective))
        grads = self._accumulate(self.batches if batches is None else batches, fn)
        return {n: np.asarray(g) for n, g in zip(self.names, grads)}  # read-only views, no copy

    def start_kernels(self) -> "dict[str, np.ndarray]":
        """The user's kernels the net started from (in their own dtype; not their absolute values)."""
        if self._start is None and self._source is not None:
            self._start = {n: np.asarray(self._source[n].numpy()) for n in self.names}
        return self._start

    def _hold(self, masks):
        """``(model, variables, key)`` holding the starting kernels times ``masks``: the user's
        model and kernels themselves when there is no mask and the net may (``direct``), else the
        clone, whose variables are masked in place while the masks only remove weights."""
        masks = {n: np.asarray(masks[n]) for n in self.names if masks and n in masks}
        if not masks and self._direct is not None:
            return self._direct, [self._source[n] for n in self.names], "direct"
        held = self._held  # None: the starting kernels; a dict: them times these masks; False: others
        for name, variable in zip(self.names, self._variables):
            mask = masks.get(name)
            before = held.get(name) if isinstance(held, dict) else None
            if held is not False and mask is before:
                continue
            if held is False or (before is not None and (mask is None or np.any(mask > before))):
                variable.assign(self.start_kernels()[name].astype(variable.dtype.as_numpy_dtype))  # a weight comes back
                if self._absolute:
                    variable.assign(tf.abs(variable))
            if mask is not None:
                variable.assign(variable * tf.cast(mask, variable.dtype))
        self._held = masks
        return self.clone, self._variables, "clone"

    def _held_values(self, held):
        """The kernels ``_hold`` holds, ``{key: read-only array}``; remembered so that a pass at
        exactly these kernels (``hessian_gradient(w, ...)``) does not set them again."""
        values = {n: np.asarray(v.read_value()) for n, v in zip(self.names, held[1])}
        self._last = (values, held)
        return values

    def masked_gradient(self, masks, objective):
        model, variables, where = held = self._hold(masks)
        fn = self._function(("gradient", objective, where), self._gradient_fn(objective, model, variables))
        grads = self._accumulate(self.batches, fn)
        return self._held_values(held), {n: np.asarray(g) for n, g in zip(self.names, grads)}

    def drop_gradient(self, dropped, objective):
        """``dropped``: ``{key: flat indices}`` of kernel entries to set to 0, on top of those set to 0
        before (masked_gradient's masks and earlier calls); then the gradient at the kernels held,
        ``{key: np.ndarray}`` (read-only). One call of one concrete function, traced once: the
        indices of all kernels travel as one array, and the zeros are scattered in place."""
        if len(self.batches) != 1:
            raise ValueError("drop_gradient: the net must hold one batch.")
        self._held, self._last = False, None  # masked_gradient: the variables no longer hold the masks it set
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

    def _hessian_fn(self, objective, model, variables, fused: bool):
        """H g at the kernels held: with ``fused`` g is this pass's own gradient (returned too)."""
        def hessian_gradient(x, y, g=None):
            with tf.GradientTape() as outer:
                with tf.GradientTape() as inner:
                    value = self._objective(objective, x, y, model)
                grads = self._fill(inner.gradient(value, variables), variables)
                z = tf.add_n([tf.reduce_sum(a * tf.stop_gradient(b)) for a, b in zip(grads, grads if fused else g)])
            hg = self._fill(outer.gradient(z, variables), variables)
            return (grads, hg) if fused else hg
        return hessian_gradient

    def hessian_gradient(self, kernels, objective, g) -> "dict[str, np.ndarray]":
        if self._last is not None and kernels is self._last[0]:  # masked_gradient's w: held already
            model, variables, where = self._last[1]
        else:
            self._set(kernels)
            model, variables, where = self.clone, self._variables, "clone"
        fn = self._function(("hessian_gradient", objective, where), self._hessian_fn(objective, model, variables, False))
        g = [tf.convert_to_tensor(np.asarray(g[n], self.dtype)) for n in self.names]
        return {n: np.asarray(h) for n, h in zip(self.names, self._accumulate(self.batches, lambda x, y: fn(x, y, g)))}

    def masked_hessian_gradient(self, masks, objective):
        """``(w, g, hg)``: ``masked_gradient(masks, objective)`` and ``hessian_gradient(w, objective,
        g)``; over a single batch on one device in one pass (the inner gradient of the
        Hessian-gradient product is g itself), so GraSP costs one second-order pass."""
        # several batches (or replicas, scoring/_distributed.py): g is their mean before any H·g
        if len(self.batches) != 1 or self._accumulate is not _accumulate:
            w, g = self.masked_gradient(masks, objective)
            return w, g, self.hessian_gradient(w, objective, g)
        model, variables, where = held = self._hold(masks)
        fn = self._function(("g_and_hg", objective, where), self._hessian_fn(objective, model, variables, True))
        g, hg = fn(*self.batches[0])
        return (self._held_values(held), {n: np.asarray(v) for n, v in zip(self.names, g)},
                {n: np.asarray(v) for n, v in zip(self.names, hg)})

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
    """A net of ``model`` as it is; its clone is built on first need: a pass at kernels other than
    the model's own, or any pass where the model cannot be differentiated in its own place."""
    direct = model if same_as_its_scoring_clone(model, strip_softmax) else None
    return TfKerasNet(lambda: scoring_clone(model, strip_softmax=strip_softmax)[0], batches,
                      source=_keras.prunable_kernels(model), direct=direct)
