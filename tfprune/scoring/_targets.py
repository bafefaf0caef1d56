"""Labels and losses of the data-dependent scorers, for single- and multi-output models.

* **Labels** (``y``): for a single-output model an array; for a model with several outputs a
  list/tuple (one array per output, in output order) or a dict keyed by output-layer name.
  Inside the checked batches ``y`` is a tensor (one output) or a tuple aligned with
  ``model.outputs``.
* **Losses**: one Keras loss (name, object or callable ``(y_true, y_pred)``) for a single
  output. With several outputs: one loss applied to every output, a list (one per output,
  ``None`` for none) or a dict keyed by output name (outputs left out have no loss), as in
  ``Model.compile``. The scorers' objective is then :class:`OutputLosses`: the **sum over the
  outputs of each loss's mean** over the examples (``loss_weights`` are not applied).
* **Class labels** are checked before any gradient work (:func:`check_labels`): with a sparse
  categorical cross-entropy, or integer labels of one column for an output of C > 1 units,
  every label must be a whole number in ``[0, C)``; one-hot labels (categorical
  cross-entropy) must have C columns. Out-of-range labels would otherwise one-hot to zeros and
  silently drop out of GraSP's loss (or stop SNIP with a raw TensorFlow error).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import tensorflow as tf

from tfprune.scoring import nets

SPARSE_CE, CE = "sparse_categorical_crossentropy", "categorical_crossentropy"


def loss_name(loss) -> str:
    """The Keras name of a loss object or function ('' when it has none)."""
    return (getattr(loss, "name", None) or getattr(getattr(loss, "fn", None), "__name__", None)
            or getattr(loss, "__name__", "") or "")


def _output_index(model) -> "dict[str, int]":
    """Output name → position; the user's layer names and Keras' own output names (a wrapped
    model's are the wrappers') both work."""
    index = {name: i for i, name in enumerate(getattr(model, "output_names", None) or [])}
    index.update({name: i for i, name in enumerate(nets.output_names(model))})
    return index


def _by_output(model, values: Mapping, what: str) -> list:
    """``{output name: value}`` as a list aligned with the model's outputs (None where absent)."""
    index, names = _output_index(model), nets.output_names(model)
    unknown = sorted(k for k in values if k not in index)
    if unknown:
        raise ValueError(f"{what} no output named {unknown}; outputs: {names}.")
    out = [None] * len(names)
    for key, value in values.items():
        out[index[key]] = value
    return out


def split_targets(model, y, argument: str = "data"):
    """``y`` for a single-output model; for several outputs a tuple aligned with ``model.outputs``."""
    names = nets.output_names(model)
    if len(names) == 1:
        if isinstance(y, Mapping) and len(y) == 1:
            return next(iter(y.values()))
        return y
    if isinstance(y, Mapping):
        out = _by_output(model, y, f"{argument}: y has labels for")
        missing = [n for n, v in zip(names, out) if v is None]
        if missing:
            raise ValueError(f"{argument}: y has no labels for outputs {missing}; model {model.name!r} has outputs {names}.")
        return tuple(out)
    if isinstance(y, (list, tuple)) and len(y) == len(names):
        return tuple(y)
    got = f"a {type(y).__name__} of {len(y)}" if isinstance(y, (list, tuple)) else type(y).__name__
    raise ValueError(f"{argument}: model {model.name!r} has {len(names)} outputs {names}; y must be a list of "
                     f"{len(names)} arrays or a dict keyed by output name, got {got}.")


class OutputLosses:
    """The loss of a multi-output model: ``losses[i]`` for output ``i`` (None: not counted).

    Calling it with ``(y, outputs)`` (tuples aligned with the model's outputs) returns the sum
    over the outputs of each loss's mean over the examples.
    """

    def __init__(self, losses, names):
        self.losses, self.names = list(losses), list(names)

    def terms(self, y, outputs):
        """``[(loss, y_i, output_i)]`` for the outputs that have a loss."""
        return [(l, t, o) for l, t, o in zip(self.losses, y, tf.nest.flatten(outputs)) if l is not None]

    def __call__(self, y, outputs):
        return tf.add_n([tf.reduce_mean(l(t, o)) for l, t, o in self.terms(y, outputs)])


def per_output(loss, y, outputs):
    """``[(loss, y_i, output_i)]`` for a single loss (one output) or an :class:`OutputLosses`."""
    if isinstance(loss, OutputLosses):
        return loss.terms(y, outputs)
    return [(loss, y, tf.nest.flatten(outputs)[0])]


def _get(model, candidate, argument):
    try:
        return nets.get_loss(model, candidate)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{argument}: unknown loss {candidate!r}: {err}") from err


def resolve_loss(model, loss, argument: str = "loss"):
    """``loss`` (or the compiled model's) as one Keras loss (one output) or an :class:`OutputLosses`."""
    candidate = loss if loss is not None else getattr(model, "loss", None)
    if candidate is None:
        raise ValueError(f"{argument}: this method needs a loss; got None and model {model.name!r} is not compiled. "
                         "Pass loss=... (e.g. 'sparse_categorical_crossentropy' or a callable(y_true, y_pred)) or compile the model.")
    names = nets.output_names(model)
    if isinstance(candidate, Mapping):
        losses = _by_output(model, candidate, f"{argument}:")
    elif isinstance(candidate, (list, tuple)):
        if len(candidate) != len(names):
            raise ValueError(f"{argument}: got a list of {len(candidate)} loss(es) for model {model.name!r} with "
                             f"{len(names)} output(s) {names}; allowed: one loss, or one per output.")
        losses = list(candidate)
    else:
        losses = [candidate] * len(names)
    if all(l is None for l in losses):
        raise ValueError(f"{argument}: got {candidate!r}, no loss for any output of model {model.name!r}; outputs: {names}.")
    losses = [None if l is None else _get(model, l, argument) for l in losses]
    return losses[0] if len(names) == 1 else OutputLosses(losses, names)


def _is_class_index(loss, y, output_shape) -> "str | None":
    """'sparse' (class indices), 'onehot' or None (not class labels, or unknown) for one output."""
    name = loss_name(loss)
    if name == SPARSE_CE:
        return "sparse"
    if name == CE:
        return "onehot"
    classes = output_shape[-1] if output_shape else None
    rank = len(output_shape)
    if y.dtype.is_integer and classes and classes > 1 and (
            len(y.shape) == rank - 1 or (len(y.shape) == rank and y.shape[-1] == 1)):
        return "sparse"
    return None


def check_labels(model, batches, loss, argument: str = "data") -> None:
    """Raises unless every class label fits the output it is for (see the module docstring)."""
    names = nets.output_names(model)
    losses = loss.losses if isinstance(loss, OutputLosses) else [loss]
    for i, (name, out_loss, tensor) in enumerate(zip(names, losses, model.outputs)):
        if out_loss is None:
            continue
        ys = [y[i] if len(names) > 1 else y for _, y in batches]
        shape = tuple(tensor.shape)
        kind = _is_class_index(out_loss, ys[0], shape)
        classes = shape[-1] if shape else None
        if kind is None or not classes:
            continue
        if kind == "onehot":
            bad = next((tuple(t.shape) for t in ys if t.shape[-1] != classes), None)
            if bad is not None:
                raise ValueError(f"{argument}: one-hot labels for output {name!r} must have {classes} columns "
                                 f"(its classes); got shape {bad}.")
            continue
        values = np.concatenate([np.asarray(t).reshape(-1) for t in ys])
        whole = np.isfinite(values) & (values == np.round(values)) if values.dtype.kind == "f" else np.ones(len(values), bool)
        outside = ~whole | (values < 0) | (values >= classes)
        if outside.any():
            wrong = outside if whole.all() else ~whole
            first, count = values[np.flatnonzero(wrong)[0]].item(), int(wrong.sum())
            what = "outside" if whole.all() else "not whole numbers"
            raise ValueError(f"{argument}: labels must be class indices in [0, {classes}) for output {name!r} "
                             f"({classes} classes); got {first!r} ({count} of {len(values)} labels {what}).")
