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


def as_batches(model, data, argument: str = "data") -> "list[tuple[tf.Tensor, object]]":
    """``data`` (``(x, y)`` arrays or a ``tf.data.Dataset`` of ``(x, y)`` batches) as checked batches.

    ``y`` is one tensor for a single-output model and a tuple aligned with ``model.outputs``
    for a multi-output one (see :mod:`tfprune.scoring._targets`).
    """
    if data is None:
        raise ValueError(f"{argument}: this method needs data, got None. Pass data=(x, y) arrays or a tf.data.Dataset of (x, y) batches.")
    expected = nets.input_shape(model)
    if isinstance(data, tf.data.Dataset):
        batches = []
        for element in data:
            if not isinstance(element, (tuple, list)) or len(element) != 2:
                raise ValueError(f"{argument}: the dataset must yield (x, y) pairs; got an element of {type(element).__name__} "
                                 f"with {len(element) if isinstance(element, (tuple, list)) else 1} part(s).")
            x, y = element
            if len(x.shape) == len(expected) - 1:
                raise ValueError(f"{argument}: dataset elements have x of shape {tuple(x.shape)}, which looks unbatched; call .batch(n) on it.")
            y = tf.nest.map_structure(tf.convert_to_tensor, split_targets(model, y, argument))
            batches.append((tf.convert_to_tensor(x), y))
        if not batches:
            raise ValueError(f"{argument}: the dataset is empty.")
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x = np.asarray(data[0])
        y = tf.nest.map_structure(np.asarray, split_targets(model, data[1], argument))
        for part in tf.nest.flatten(y):
            if len(part) != len(x):
                raise ValueError(f"{argument}: x has {len(x)} examples but y has {len(part)}.")
        if len(x) == 0:
            raise ValueError(f"{argument}: x is empty.")
        batches = [(tf.convert_to_tensor(x[i:i + DEFAULT_SCORING_BATCH]), _sliced(y, i, i + DEFAULT_SCORING_BATCH))
                   for i in range(0, len(x), DEFAULT_SCORING_BATCH)]
    else:
        raise TypeError(f"{argument}: expected (x, y) arrays or a tf.data.Dataset of (x, y) batches, got {type(data).__name__}.")
    for x, _ in batches:
        shape = tuple(x.shape)
        ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected[1:], shape[1:]))
        if not ok:
            raise ValueError(f"{argument}: x has shape {shape} but model {model.name!r} expects inputs of shape "
                             f"{expected} (batch dimension first).")
    return batches


def loss_from_logits(loss_fn) -> bool:
    """Whether a Keras loss object expects logits (``from_logits=True``)."""
    fn_kwargs = getattr(loss_fn, "_fn_kwargs", None) or {}
    return bool(getattr(loss_fn, "from_logits", fn_kwargs.get("from_logits", False)))
