"""The data of the data-dependent scorers: checked ``(x, y)`` batches."""
from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np
import tensorflow as tf

from tfprune.scoring import nets
from tfprune.scoring._targets import resolve_loss, split_targets  # noqa: F401  (resolve_loss: re-exported)

# Arrays larger than this are split into batches of this size; the gradients are averaged
# weighted by batch size, which gives the gradient of the mean loss over all examples.
DEFAULT_SCORING_BATCH = 256


def _sliced(y, start, stop):
    return tf.nest.map_structure(lambda a: tf.convert_to_tensor(a[start:stop]), y)


def _parts(model, x, specs, argument):
    """``{input name: array}`` of ``x``: an array for a single-input model, a dict keyed by input
    name for a model with several inputs."""
    if len(specs) == 1:
        if isinstance(x, Mapping) and set(x) == set(specs):
            return dict(x)
        return {next(iter(specs)): x}
    if not isinstance(x, Mapping) or set(x) != set(specs):
        got = sorted(x) if isinstance(x, Mapping) else type(x).__name__
        raise ValueError(f"{argument}: model {model.name!r} has {len(specs)} inputs {list(specs)}; x must be a dict "
                         f"keyed by those names, got {got}.")
    return dict(x)


def _check_shapes(model, parts, specs, argument, unbatched_hint=False):
    for name, a in parts.items():
        expected, shape = specs[name], tuple(a.shape)
        if unbatched_hint and len(shape) == len(expected) - 1:
            raise ValueError(f"{argument}: dataset elements have x of shape {shape}, which looks unbatched; call .batch(n) on it.")
        ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected[1:], shape[1:]))
        if not ok:
            what = "x" if len(specs) == 1 else f"x[{name!r}]"
            raise ValueError(f"{argument}: {what} has shape {shape} but model {model.name!r} expects inputs of shape "
                             f"{expected} (batch dimension first).")


def as_batches(model, data, argument: str = "data") -> "list[tuple[object, object]]":
    """``data`` (``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)`` batches) as checked batches.

    ``x`` is an array, or for a model with several inputs a dict keyed by input name. ``y`` is
    one tensor for a single-output model and a tuple aligned with ``model.outputs`` for a
    multi-output one (see :mod:`tfprune.scoring._targets`).
    """
    if data is None:
        raise ValueError(f"{argument}: this method needs data, got None. Pass data=(x, y) arrays or a tf.data.Dataset of (x, y) batches.")
    specs = nets.input_specs(model)
    single = len(specs) == 1
    if isinstance(data, tf.data.Dataset):
        batches = []
        for element in data:
            if not isinstance(element, (tuple, list)) or len(element) != 2:
                raise ValueError(f"{argument}: the dataset must yield (x, y) pairs; got an element of {type(element).__name__} "
                                 f"with {len(element) if isinstance(element, (tuple, list)) else 1} part(s).")
            x, y = element
            parts = _parts(model, x, specs, argument)
            _check_shapes(model, parts, specs, argument, unbatched_hint=True)
            y = tf.nest.map_structure(tf.convert_to_tensor, split_targets(model, y, argument))
            x = {k: tf.convert_to_tensor(v) for k, v in parts.items()}
            batches.append((next(iter(x.values())) if single else x, y))
        if not batches:
            raise ValueError(f"{argument}: the dataset is empty.")
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        parts = {k: np.asarray(v) for k, v in _parts(model, data[0], specs, argument).items()}
        _check_shapes(model, parts, specs, argument)
        y = tf.nest.map_structure(np.asarray, split_targets(model, data[1], argument))
        n = len(next(iter(parts.values())))
        for part in tf.nest.flatten(y) + list(parts.values()):
            if len(part) != n:
                raise ValueError(f"{argument}: x has {n} examples but {'y' if part is not None else 'x'} has {len(part)}.")
        if n == 0:
            raise ValueError(f"{argument}: x is empty.")
        batches = []
        for i in range(0, n, DEFAULT_SCORING_BATCH):
            x = {k: tf.convert_to_tensor(v[i:i + DEFAULT_SCORING_BATCH]) for k, v in parts.items()}
            batches.append((next(iter(x.values())) if single else x, _sliced(y, i, i + DEFAULT_SCORING_BATCH)))
    else:
        raise TypeError(f"{argument}: expected (x, y) arrays or a tf.data.Dataset of (x, y) batches, got {type(data).__name__}.")
    return batches
