"""Training data with a reproducible order, addressable by global training step.

The batch at global step ``s`` is fully determined by ``(order seed, s)``: epoch
``e = s // steps_per_epoch`` uses its own permutation (NumPy generator seeded with
``[seed, e]``) and ``s % steps_per_epoch`` picks the batch. Training can therefore start at
any step (a rewind point, a checkpoint) and see exactly the batches an uninterrupted run
sees, and every level of a lottery run sees the same data order (as in OpenLTH).
"""
from __future__ import annotations

import hashlib
import math

import numpy as np
import tensorflow as tf

from tfprune import checks
from tfprune.spec import TrainingSpec


def _digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str((array.shape, array.dtype.str)).encode())
    digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def _callable_name(fn) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__name__)}"


def _batches(x, y, batch_size: int) -> tf.data.Dataset:
    """``(x, y)`` in order, in batches of ``batch_size`` (the last one partial): what Keras' array
    adapter feeds ``fit`` with ``shuffle=False``, without its parallel ``map``, which TensorFlow's op
    determinism rewrites into a sequential one and logs an error line about every time."""
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)


def _arrays(data, argument):
    x, y = data
    x, y = np.asarray(x), np.asarray(y)
    if x.dtype == object or y.dtype == object:
        raise TypeError(f"{argument}: x and y must be numeric arrays (single-input, single-output models).")
    if len(x) != len(y):
        raise ValueError(f"{argument}: x has {len(x)} examples but y has {len(y)}.")
    if len(x) == 0:
        raise ValueError(f"{argument}: x is empty.")
    return x, y


class TrainData:
    """Training data: ``(x, y)`` arrays, a batched finite ``tf.data.Dataset``, or a callable
    ``epoch -> tf.data.Dataset`` (batched) for datasets that shuffle per epoch.

    Only arrays and callables give a bit-identical order after a resume; a plain dataset is
    iterated once per epoch as it is (``skip``/``take`` select a part of an epoch), so it must
    produce the same order every time it is iterated (no unseeded or per-iteration reshuffle).
    """

    def __init__(self, data, batch_size: int, steps_per_epoch: "int | None" = None, argument: str = "train_data"):
        self.batch_size = checks.integer(batch_size, "batch_size", 1)
        self.argument = argument
        if isinstance(data, tf.data.Dataset):
            self.kind = "dataset"
            self.dataset = data
            natural = int(data.cardinality().numpy())
        elif callable(data):
            self.kind = "callable"
            self.fn = data
            first = data(0)
            if not isinstance(first, tf.data.Dataset):
                raise TypeError(f"{argument}: a callable must return a tf.data.Dataset for an epoch index, got "
                                f"{type(first).__name__}.")
            self.spec = first.element_spec
            natural = int(first.cardinality().numpy())
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            self.kind = "arrays"
            self.x, self.y = _arrays(data, argument)
            natural = math.ceil(len(self.x) / self.batch_size)
        else:
            raise TypeError(f"{argument}: expected (x, y) arrays, a batched tf.data.Dataset or a callable epoch -> "
                            f"Dataset; got {type(data).__name__}.")
        if steps_per_epoch is not None:
            steps_per_epoch = checks.integer(steps_per_epoch, "steps_per_epoch", 1)
            if natural > 0 and steps_per_epoch > natural:
                raise ValueError(f"steps_per_epoch: got {steps_per_epoch}; allowed: at most {natural}, the number of "
                                 f"batches in one pass over {argument}.")
            self.steps_per_epoch = steps_per_epoch
        elif natural > 0:
            self.steps_per_epoch = natural
        else:
            raise ValueError(f"steps_per_epoch: {argument} has no known finite number of batches (cardinality "
                             f"{natural}); pass steps_per_epoch=... .")

    def segment(self, epoch: int, first: int, last: int, order_seed: int) -> dict:
        """``fit`` keyword arguments for batches ``[first, last)`` of epoch ``epoch``."""
        if self.kind == "arrays":
            order = np.random.default_rng([int(order_seed), int(epoch)]).permutation(len(self.x))
            index = order[first * self.batch_size: last * self.batch_size]
            return {"x": _batches(self.x[index], self.y[index], self.batch_size)}
        dataset = self.dataset if self.kind == "dataset" else self.fn(int(epoch))
        return {"x": dataset.skip(first).take(last - first)}

    def head(self, count: int):
        """The first ``count`` examples in storage order (default scoring data)."""
        if self.kind == "arrays":
            return self.x[:count], self.y[:count]
        dataset = self.dataset if self.kind == "dataset" else self.fn(0)
        return dataset.take(1)

    def fingerprint(self) -> dict:
        out = {"kind": self.kind, "batch_size": self.batch_size, "steps_per_epoch": self.steps_per_epoch}
        if self.kind == "arrays":
            out.update(x=[list(self.x.shape), self.x.dtype.str, _digest(self.x)],
                       y=[list(self.y.shape), self.y.dtype.str, _digest(self.y)])
        elif self.kind == "dataset":
            out.update(element_spec=repr(self.dataset.element_spec))
        else:
            out.update(fn=_callable_name(self.fn), element_spec=repr(self.spec))
        return out


class EvalData:
    """Validation data: ``(x, y)`` arrays or a batched ``tf.data.Dataset`` (or None)."""

    def __init__(self, data, batch_size: int, argument: str = "validation_data"):
        self.batch_size = int(batch_size)
        if data is None:
            self.kind = None
        elif isinstance(data, tf.data.Dataset):
            self.kind, self.dataset = "dataset", data
        elif isinstance(data, (tuple, list)) and len(data) == 2:
            self.kind = "arrays"
            self.x, self.y = _arrays(data, argument)
        else:
            raise TypeError(f"{argument}: expected (x, y) arrays, a batched tf.data.Dataset or None; got "
                            f"{type(data).__name__}.")

    def fit_kwargs(self) -> dict:
        if self.kind is None:
            return {}
        if self.kind == "arrays":
            return {"validation_data": _batches(self.x, self.y, self.batch_size)}
        return {"validation_data": self.dataset}

    def evaluate(self, model) -> dict:
        if self.kind is None:
            return {}
        if self.kind == "arrays":
            logs = model.evaluate(_batches(self.x, self.y, self.batch_size), verbose=0, return_dict=True)
        else:
            logs = model.evaluate(self.dataset, verbose=0, return_dict=True)
        return {f"val_{k}": float(v) for k, v in logs.items()}

    def fingerprint(self):
        if self.kind is None:
            return None
        if self.kind == "arrays":
            return {"kind": "arrays", "x": [list(self.x.shape), self.x.dtype.str, _digest(self.x)],
                    "y": [list(self.y.shape), self.y.dtype.str, _digest(self.y)], "batch_size": self.batch_size}
        return {"kind": "dataset", "element_spec": repr(self.dataset.element_spec)}


def data_for(train_data, validation_data, training: TrainingSpec) -> "tuple[TrainData, EvalData]":
    """The training and validation data of a run batched as ``training`` says (checked first:
    a :class:`tfprune.spec.TrainingSpec` with a loss or a ``compile_fn``)."""
    training = TrainingSpec.checked(training)
    train = TrainData(train_data, training.batch_size, training.steps_per_epoch)
    return train, EvalData(validation_data, training.validation_batch_size or training.batch_size)
