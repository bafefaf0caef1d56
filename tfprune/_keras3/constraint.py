"""The mask constraint of Keras 3 kernels: ``w ← where(mask != 0, c(w), +0.0)`` after every
optimizer step, on every backend (see :mod:`tfprune._keras3.masked` for how masks are held and
saved; on PyTorch the re-masking runs in :mod:`tfprune._keras3.eager_mask`)."""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

_PACKAGE = "tfprune"
if keras.backend.backend() == "torch":
    from tfprune._keras3 import eager_mask as _eager_mask
else:
    _eager_mask = None


@keras.saving.register_keras_serializable(package=_PACKAGE)
class MaskConstraint(keras.constraints.Constraint):
    """``w ← where(mask != 0, constraint(w), +0.0)``: the kernel's own constraint (if any) first,
    then the mask. The mask (a ``keras.Variable``) is state, not config: ``get_config`` holds the
    user's constraint only, and a constraint made from a config applies that constraint alone
    until a mask is given."""

    def __init__(self, constraint=None, mask=None):
        self.constraint = keras.constraints.get(constraint) if constraint is not None else None
        self.mask = mask
        self._cache = _eager_mask.KeepCache() if _eager_mask is not None else None

    def __call__(self, w):
        if self.constraint is not None:
            w = self.constraint(w)
        if self.mask is None:
            return w
        if self._cache is not None:  # PyTorch: eager, see tfprune/_keras3/eager_mask.py
            return _eager_mask.remask(w, self._cache, self.mask)
        w = ops.convert_to_tensor(w)  # a variable (in a stateless scope: its current value)
        return ops.where(ops.not_equal(self.mask, 0), w, 0.0)  # +0.0 where pruned, never -0.0

    def get_config(self):
        return {"constraint": keras.constraints.serialize(self.constraint) if self.constraint is not None else None}

    @classmethod
    def from_config(cls, config):
        constraint = config.get("constraint")
        return cls(keras.constraints.deserialize(constraint) if constraint is not None else None)


def mask_variable(kernel):
    """The mask variable enforced on ``kernel`` (through its constraint), or None."""
    constraint = getattr(kernel, "constraint", None)
    return constraint.mask if isinstance(constraint, MaskConstraint) else None


def new_mask(shape, name: str):
    return keras.Variable(np.ones(tuple(shape), np.float32), dtype="float32", trainable=False, autocast=False, name=name)


def bind(kernel, mask) -> None:
    """Sets ``kernel``'s constraint to the mask, composed with the constraint it already had."""
    current = kernel.constraint
    user = current.constraint if isinstance(current, MaskConstraint) else current
    kernel.constraint = MaskConstraint(user, mask)
