"""``x @ W`` for a kernel ``W`` with a fixed 0/1 mask, computed over the kept weights only.

The kept weights of a ``(n_in, n_out)`` kernel are held as one vector ``values`` (nnz,), in
the row-major order of the *transposed* kernel ``Wᵀ`` (``n_out`` rows, ``n_in`` columns): the
order of a CSR matrix of ``Wᵀ``. With ``g = ∂L/∂y`` (batch, n_out):

* forward   ``y  = x @ W``        = ``(Wᵀ @ xᵀ)ᵀ``  (CSR × dense: ``nnz · batch`` multiply-adds);
* input     ``∂L/∂x = g @ Wᵀ``    = ``(W @ gᵀ)ᵀ``   (the same CSR matrix, transposed);
* values    ``∂L/∂v_k = Σ_b g[b, j_k] · x[b, i_k]`` for kept weight ``k`` at ``(i_k, j_k)``: a
  sampled product (SDDMM), either gathered (``nnz · batch`` work, :data:`GATHER`) or read from the
  dense ``gᵀ @ x`` (``n_in · n_out · batch`` work but one dense matmul, :data:`DENSE`); which one
  is cheaper depends on the density (see ``BENCHMARKS.md``, "Sparse training").

Nothing here knows about Keras: :mod:`tfprune.sparse_dense` holds the values in a layer.

Example:
    >>> import numpy as np, tensorflow as tf
    >>> mask = np.array([[1, 0], [0, 1], [1, 1]], np.float32)            # (n_in=3, n_out=2)
    >>> kernel = np.arange(1, 7, dtype=np.float32).reshape(3, 2) * mask
    >>> index = SparseIndex.from_mask(mask)
    >>> xs = tf.constant([[1.0, 2.0, 3.0]])
    >>> sparse_matmul(xs, tf.constant(index.gather(kernel)), index).numpy()   # == xs @ kernel
    array([[16., 26.]], dtype=float32)
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

GATHER, DENSE = "gather", "dense"
VALUE_GRADIENTS = (GATHER, DENSE)


@dataclasses.dataclass(frozen=True, eq=False)
class SparseIndex:
    """The fixed positions of the kept weights of a ``(n_in, n_out)`` kernel.

    ``rows``/``cols`` are the (output, input) coordinates of each kept weight in ``Wᵀ``,
    sorted row-major (the CSR order); ``inputs``/``outputs`` are the same as kernel
    coordinates ``(i, j)``.
    """

    n_in: int
    n_out: int
    outputs: np.ndarray  # j_k, int64, sorted
    inputs: np.ndarray   # i_k, int64, sorted within each output

    @classmethod
    def from_mask(cls, mask) -> "SparseIndex":
        mask = np.asarray(mask)
        if mask.ndim != 2:
            raise ValueError(f"mask: expected a 2-D (n_in, n_out) 0/1 array, got shape {mask.shape}.")
        outputs, inputs = np.nonzero(mask.T != 0)  # row-major over Wᵀ
        return cls(int(mask.shape[0]), int(mask.shape[1]), outputs.astype(np.int64), inputs.astype(np.int64))

    @property
    def nnz(self) -> int:
        return int(self.outputs.size)

    @property
    def density(self) -> float:
        return self.nnz / float(self.n_in * self.n_out)

    def kernel_indices(self) -> np.ndarray:
        """``(nnz, 2)`` int64 ``(i, j)`` kernel coordinates in the values' order."""
        return np.stack([self.inputs, self.outputs], axis=1)

    def gather(self, kernel) -> np.ndarray:
        """The kept entries of a dense ``(n_in, n_out)`` kernel, in the values' order."""
        return np.asarray(kernel)[self.inputs, self.outputs]

    def scatter(self, values) -> np.ndarray:
        """The dense ``(n_in, n_out)`` kernel holding ``values`` at the kept positions, +0.0 elsewhere."""
        values = np.asarray(values)
        kernel = np.zeros((self.n_in, self.n_out), values.dtype)
        kernel[self.inputs, self.outputs] = values
        return kernel


def _csr(values, index: SparseIndex):
    """``Wᵀ`` as a CSR matrix (a variant tensor) built from the fixed index and ``values``."""
    indices = tf.constant(np.stack([index.outputs, index.inputs], axis=1))
    return tf.raw_ops.SparseTensorToCSRSparseMatrix(indices=indices, values=values,
                                                    dense_shape=tf.constant([index.n_out, index.n_in], tf.int64))


def value_gradient(x, g, index: SparseIndex, method: str = GATHER):
    """``∂L/∂v_k = Σ_b g[b, j_k] · x[b, i_k]`` for every kept weight (the values' order)."""
    if method == GATHER:
        rows = tf.gather(tf.transpose(g), tf.constant(index.outputs))   # (nnz, batch)
        cols = tf.gather(tf.transpose(x), tf.constant(index.inputs))
        return tf.reduce_sum(rows * cols, axis=1)
    if method == DENSE:
        full = tf.reshape(tf.matmul(g, x, transpose_a=True), [-1])    # (n_out · n_in,) row-major over Wᵀ
        return tf.gather(full, tf.constant(index.outputs * index.n_in + index.inputs))
    raise ValueError(f"method: got {method!r}; allowed: {VALUE_GRADIENTS}.")


def sparse_matmul(x, values, index: SparseIndex, value_grad: str = GATHER):
    """``x @ W`` for a 2-D ``x`` (batch, n_in), ``W`` the kernel holding ``values`` at ``index``;
    differentiable in ``x`` and ``values`` (gradients only for the kept weights)."""

    @tf.custom_gradient
    def product(x, values):
        matrix = _csr(values, index)
        y = tf.raw_ops.SparseMatrixMatMul(a=matrix, b=x, transpose_b=True, transpose_output=True)

        def grad(g):
            dx = tf.raw_ops.SparseMatrixMatMul(a=matrix, b=g, transpose_a=True, transpose_b=True,
                                               transpose_output=True)
            return dx, value_gradient(x, g, index, value_grad)

        return y, grad

    return product(x, values)
