"""Re-masking a kernel after each optimizer step on PyTorch, where Keras runs every op eagerly.

TensorFlow and JAX compile the train step, and the compiler fuses ``where(keep, w, 0)`` into the
update. On PyTorch each kernel costs one more pass over its memory per step, plus Keras' op
dispatch. Two things make it cheap (measured in BENCHMARKS.md, "Keras 3 on TensorFlow, JAX and
PyTorch"):

* ``keep = mask != 0`` and the flat indices of the kept entries are computed once per mask value
  (cached until the mask tensor is written: torch counts in-place writes in ``_version``);
* a sparse kernel (kept fraction at most ``SPARSE_BELOW``) is re-masked in place by saving its
  kept entries, zeroing the whole tensor (a memset, +0.0) and writing them back: ~18 µs instead
  of ~70 µs for ``torch.where`` on a 784x300 kernel at 2% density on this machine's CPU. The
  result is bit-identical to ``where(keep, w, +0.0)``. The optimizer then assigns the variable
  to itself, which ATen's ``copy_`` skips. Denser kernels, values that are not the variable
  itself (the user's constraint ran first, or a stateless call) go through ``torch.where``;
  an all-ones mask costs nothing.
"""
from __future__ import annotations

import keras
import torch
from keras.src.backend.common.stateless_scope import in_stateless_scope

SPARSE_BELOW = 0.25


class KeepCache:
    """``(keep or None when all ones, kept indices or None when dense)`` of one mask variable,
    recomputed when the mask changes."""

    def __init__(self):
        self._tensor, self._version, self._value = None, None, None

    def get(self, mask):
        tensor = mask.value if isinstance(mask, keras.Variable) else mask
        if self._tensor is not tensor or self._version != tensor._version:
            keep = tensor != 0
            flat = keep.reshape(-1)
            kept = int(flat.sum())
            self._tensor, self._version = tensor, tensor._version
            self._value = (None if kept == flat.numel() else keep,
                           flat.nonzero().squeeze(1) if kept <= SPARSE_BELOW * flat.numel() else None)
        return self._value


def remask(w, cache: KeepCache, mask):
    """``where(mask != 0, w, +0.0)``; in place when ``w`` is a sparse kernel variable."""
    keep, indices = cache.get(mask)
    if keep is None:  # all ones: nothing to enforce
        return w
    if (indices is not None and isinstance(w, keras.Variable) and not in_stateless_scope()
            and w.value.is_contiguous()):
        flat = w.value.data.view(-1)
        kept = flat.index_select(0, indices)
        flat.zero_()
        flat.index_copy_(0, indices, kept)
        return w
    value = w.value if isinstance(w, keras.Variable) else w
    return torch.where(keep, value, 0.0)
