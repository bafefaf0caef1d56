"""Sparse execution of fixed-mask Dense layers: training that costs the kept weights only.

A masked Dense kernel is still multiplied densely by :class:`tfprune.FixedMaskWrapper`, so a
98%-sparse model trains at the cost of a dense one. :class:`SparseDenseWrapper` (a subclass,
so ``get_masks``, ``strip``, the report and TF-MOT's callbacks accept it) holds the kept
weights of its Dense layer as one trainable vector ``values`` (nnz,) over a fixed index
(:mod:`tfprune.sparse_ops`): the forward and backward passes are sparse products, the
optimizer sees (and keeps state for) ``values`` and the bias only. The Dense layer's dense
``kernel`` becomes a non-trainable mirror that is *not* written at every step (a scatter into
a 4096x4096 kernel costs more than the sparse step itself): :func:`sync_kernels` (or
``layer.sync_kernel()``) rewrites it from ``values``, and ``UpdatePruningStep`` (at each epoch
end) and :func:`tfprune.strip` call it, so stripping and export give the masked dense kernel.
After writing ``kernel`` yourself, call ``layer.load_kernel()``.

:func:`sparse_execution` swaps wrappers for sparse ones: ``"sparse"`` every eligible Dense
layer (float32, 2-D kernel, no kernel regularizer or constraint), ``"auto"`` only those where
:func:`pays` says it is faster; see ``prune_at_init(..., execution=...)``. Models with sparse
layers are trained and stripped, not saved (``tfprune.strip(model).save(...)``).

Example:
    >>> pruned = tfprune.prune_at_init(model, "synflow", sparsity=0.9, execution="sparse")
    >>> sparse_layers(pruned)
    ['fc1', 'fc2', 'output']
    >>> sum(int(v.shape[0]) for v in pruned.trainable_weights if "values" in v.name)   # the kept weights
    109
"""
from __future__ import annotations

import types

import numpy as np
import tensorflow as tf

from tfprune import _keras, checks, sparse_ops
from tfprune._keras import keras
from tfprune.wrapper import wrapper_class

EXECUTIONS = ("dense", "sparse", "auto")

#: Below this density sparse execution of a Dense layer trains faster than the masked dense one,
#: and only for kernels of at least ``MIN_WEIGHTS`` entries (smaller products are too cheap for
#: the sparse path's fixed costs). Measured on 2 CPU cores (BENCHMARKS.md "Sparse training"):
#: the step-time ratio crosses 1 at a density of ~0.30 (4096x4096) and ~0.25 (784x300); a
#: 300x100 kernel gains at most ~8% at any density. 0.15 keeps a margin for timing noise.
CROSSOVER_DENSITY = 0.15
MIN_WEIGHTS = 100_000
#: Above this density the values' gradient is read from one dense product (cheaper there).
DENSE_VALUE_GRAD_ABOVE = 0.015


def pays(n_in: int, n_out: int, nnz: int) -> bool:
    """Whether sparse execution of an ``(n_in, n_out)`` kernel keeping ``nnz`` weights is expected
    to train faster than the masked dense one (the cost model of ``execution="auto"``)."""
    size = n_in * n_out
    return size >= MIN_WEIGHTS and nnz <= CROSSOVER_DENSITY * size


class _SparseDenseWrapper:
    """A :class:`tfprune.FixedMaskWrapper` around a ``Dense`` layer computing over its kept
    weights only; made by :func:`sparse_execution` (masks are set with :meth:`set_mask`)."""

    def set_mask(self, mask) -> None:
        """Fixes ``mask``: the kernel's kept entries become the trainable ``values``."""
        inner = self.layer
        mask = np.asarray(mask, np.float32)
        (_, mask_variable, _), = self.pruning_vars
        mask_variable.assign(mask)
        self.index = sparse_ops.SparseIndex.from_mask(mask)
        self.value_grad = (sparse_ops.DENSE if self.index.density > DENSE_VALUE_GRAD_ABOVE
                           else sparse_ops.GATHER)
        kernel = inner.kernel
        kernel.assign(self.index.scatter(self.index.gather(kernel.numpy())))
        self._indices = tf.constant(self.index.kernel_indices())
        self.values = self.add_weight("values", shape=(self.index.nnz,), dtype=kernel.dtype, trainable=True,
                                      initializer="zeros")
        self.load_kernel()

    # The kernel is a mirror: no gradient, no optimizer state; ``values`` train instead. (The
    # Dense layer's own lists, and so the order of its weights for ``strip``, are left alone.)
    @property
    def trainable_weights(self):
        weights = super().trainable_weights
        if getattr(self, "index", None) is None:
            return weights
        return [v for v in weights if v is not self.layer.kernel] + [self.values]

    @property
    def non_trainable_weights(self):
        weights = [v for v in super().non_trainable_weights if v is not getattr(self, "values", None)]
        return weights + ([self.layer.kernel] if getattr(self, "index", None) is not None else [])

    def load_kernel(self) -> None:
        """``values`` ← the kept entries of the Dense layer's ``kernel`` (after writing it)."""
        self.values.assign(self.index.gather(self.layer.kernel.numpy()))

    def sync_kernel(self):
        """The Dense layer's kernel ← ``values`` at the kept entries (the others are +0.0 and
        never written); ``UpdatePruningStep`` runs it at each epoch end, ``strip`` before reading."""
        if getattr(self, "index", None) is None:
            return super().mask_weights()
        return self.layer.kernel.scatter_nd_update(self._indices, self.values)

    def mask_weights(self):
        return self.sync_kernel()

    def call(self, inputs, training=None, **kwargs):
        if getattr(self, "index", None) is None:  # called while the model is cloned, before set_mask
            return super().call(inputs, training=training, **kwargs)
        inner = self.layer
        x = tf.cast(inputs, self.values.dtype)
        flat = tf.reshape(x, [-1, self.index.n_in]) if x.shape.rank != 2 else x
        y = sparse_ops.sparse_matmul(flat, self.values, self.index, self.value_grad)
        if x.shape.rank != 2:
            y = tf.reshape(y, tf.concat([tf.shape(x)[:-1], [self.index.n_out]], 0))
        if inner.use_bias:
            y = tf.nn.bias_add(y, inner.bias)
        return inner.activation(y) if inner.activation is not None else y


def wrapper_class_sparse() -> type:
    """The ``SparseDenseWrapper`` class (a subclass of ``FixedMaskWrapper``), made on first use."""
    if "SparseDenseWrapper" not in globals():
        globals()["SparseDenseWrapper"] = types.new_class(
            "SparseDenseWrapper", (_SparseDenseWrapper, wrapper_class()),
            exec_body=lambda ns: ns.update(__module__=__name__, __doc__=_SparseDenseWrapper.__doc__))
    return globals()["SparseDenseWrapper"]


def __getattr__(name):
    if name == "SparseDenseWrapper":
        return wrapper_class_sparse()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def why_not_eligible(layer) -> str:
    """'' if ``layer`` (a wrapper or plain layer) can run sparse, else the reason it cannot."""
    inner = _keras.inner_layer(layer)
    if _keras.layer_kind(inner) != "dense":
        return f"a {type(inner).__name__}, not a Dense layer"
    if getattr(inner, "kernel_regularizer", None) is not None or getattr(inner, "kernel_constraint", None) is not None:
        return "its kernel has a regularizer or constraint"
    if inner.kernel.dtype != tf.float32 or _keras.compute_dtype_is_low_precision(inner):
        return "it does not compute in float32"
    return ""


def sparse_execution(model, masks, execution: str = "sparse"):
    """``model`` (wrapped, with ``masks``) with the chosen Dense layers swapped for
    :class:`SparseDenseWrapper`; ``"dense"`` returns it unchanged. The new model reuses the
    layers of ``model`` (their kernels become non-trainable mirrors)."""
    checks.choice(execution, "execution", EXECUTIONS)
    if execution == "dense":
        return model
    chosen = {}
    for layer in model.layers:
        name = _keras.inner_layer(layer).name
        if not _keras.is_pruning_wrapper(layer) or type(layer).__name__ == "SparseDenseWrapper" or why_not_eligible(layer):
            continue
        mask = np.asarray(masks[name]) if name in masks else np.ones(layer.layer.kernel.shape, np.float32)
        if execution == "sparse" or pays(*mask.shape, int(np.count_nonzero(mask))):
            chosen[name] = mask
    if not chosen:
        return model
    sparse = wrapper_class_sparse()

    def clone(layer):
        if _keras.inner_layer(layer).name in chosen:
            return sparse(layer.layer, pruning_schedule=layer.pruning_schedule)
        return layer

    new = keras.models.clone_model(model, clone_function=clone)
    for layer in new.layers:
        if isinstance(layer, sparse):
            layer.set_mask(chosen[layer.layer.name])
    return new


def sync_kernels(model) -> None:
    """Rewrites the dense kernel of every sparse layer of ``model`` from its ``values``."""
    for layer in model.layers:
        if type(layer).__name__ == "SparseDenseWrapper":
            layer.sync_kernel()


def sparse_layers(model) -> "list[str]":
    """Names of the layers of ``model`` that run sparse (:class:`SparseDenseWrapper`)."""
    return [_keras.inner_layer(l).name for l in model.layers if type(l).__name__ == "SparseDenseWrapper"]
