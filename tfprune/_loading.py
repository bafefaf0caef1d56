"""Masks that come from outside tfprune: files loaded in :func:`tfprune.custom_object_scope`
(.h5, .keras, SavedModel) and mask variables read back by :func:`tfprune.get_masks`.

Masks are 0/1 by contract. Keras loads a file's mask values into the wrappers' variables
without asking anyone, so the scope notes every wrapper that Keras builds from a config while
it is open (``FixedMaskWrapper.from_config`` calls :func:`record`) and, when the block ends
without an error, checks their masks: a value other than 0 and 1 is a ``ValueError`` naming the
layer (and the file, through :func:`tfprune.load_model`).
"""
from __future__ import annotations

import threading

import numpy as np

from tfprune._mask_values import non_binary

_STATE = threading.local()


def record(wrapper) -> None:
    """Notes a wrapper made from a config inside an open load scope (no-op outside one)."""
    stack = getattr(_STATE, "stack", None)
    if stack:
        stack[-1].append(wrapper)


def check_mask(name: str, values, prefix: str = "mask: layer", hint: str = "") -> np.ndarray:
    """``values`` if they are 0/1, else a ``ValueError`` naming the layer and the first bad value."""
    problem = non_binary(values)
    if problem:
        raise ValueError(f"{prefix} {name!r} holds values other than 0 and 1 ({problem[0]}, {problem[1]}); masks are 0/1 by "
                         f"contract{hint}.")
    return values


class LoadScope:
    """Keras' custom-object scope with tfprune's classes, plus the 0/1 check of loaded masks."""

    def __init__(self, objects, source: "str | None" = None):
        from tfprune._keras import keras

        self._scope = keras.utils.custom_object_scope(objects)
        self.source = source

    def __enter__(self):
        self._scope.__enter__()
        if not hasattr(_STATE, "stack"):
            _STATE.stack = []
        _STATE.stack.append([])
        return self

    def __exit__(self, exc_type, exc, tb):
        made = _STATE.stack.pop()
        self._scope.__exit__(exc_type, exc, tb)
        if exc_type is None:
            for wrapper in made:
                self._check(wrapper)
        return False

    def _check(self, wrapper):
        if not getattr(wrapper, "built", False) or not hasattr(wrapper, "pruning_vars"):
            return
        if self.source is not None:
            prefix = f"path: {self.source!r}: mask of layer"
        else:
            prefix = "mask of layer"
        hint = ": the file is damaged or was edited; set masks with tfprune.apply_masks"
        for _, mask, _ in wrapper.pruning_vars:
            check_mask(wrapper.layer.name, mask.numpy(), prefix, hint)
