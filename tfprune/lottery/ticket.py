"""Tickets on disk: a mask set plus the architecture it belongs to, transferable to a freshly
built model of the same architecture (e.g. to train a ticket found on one dataset on another).

File format (``.npz``, written atomically): one float32 0/1 array per prunable kernel, keyed as
masks are everywhere (the layer's name; ``"mha/query"``, ``"mha/key"``, ``"mha/value"``,
``"mha/attention_output"`` for the kernels of a MultiHeadAttention ``"mha"``), plus
``__tfprune_ticket__``, a JSON string (uint8 array) with the format version and, for every
kernel in model order, its key, the class of its layer and the kernel shape, and
``__tfprune_sha256__``, the digest of the rest (checked on load; tickets without it are read as
they are). Every ``level_<n>/mask.npz`` of a lottery run is such a file.

Example::

    save_ticket("ticket.npz", lt.masks(level=5), model)   # lt: a tfprune.lottery.LotteryTicket
    fresh = build_model()                                 # same architecture, new initialization
    pruned = apply_ticket(fresh, "ticket.npz")            # wrapped, masked, ready to compile and fit
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Mapping

import numpy as np

from tfprune import _keras, _keras3
from tfprune.io import save_npz_atomic
from tfprune.lottery import _files, _kit
from tfprune.wrapper import apply_masks, check_masks

__all__ = ["Ticket", "TicketMismatchError", "apply_ticket", "load_phase_weights", "load_ticket", "phase_weights", "save_phase_weights",
           "save_ticket", "ticket_layers"]

META_KEY = "__tfprune_ticket__"
FORMAT = "tfprune-ticket"
VERSION = 1


class TicketMismatchError(ValueError):
    """The ticket was made for another architecture (layer names or kernel shapes differ)."""


@dataclasses.dataclass(frozen=True)
class Ticket:
    """A mask set with the architecture it was made for.

    Attributes:
        masks: ``{layer name: float32 0/1 array}`` in model order.
        layers: ``[{"name", "class", "shape"}]`` of the prunable layers, in model order.
        info: free-form metadata saved with the ticket (run, level, sparsity, ...).
        path: the file it was read from (None if made in memory).
    """

    masks: "dict[str, np.ndarray]"
    layers: "tuple[dict, ...]"
    info: dict
    path: "str | None" = dataclasses.field(default=None, compare=False)

    @property
    def sparsity(self) -> float:
        total = sum(m.size for m in self.masks.values())
        return 1.0 - sum(int(np.count_nonzero(m)) for m in self.masks.values()) / total if total else 0.0


def ticket_layers(model) -> "list[dict]":
    """``[{"name", "class", "shape"}]`` of ``model``'s prunable kernels, in model order (a tf_keras
    or Keras 3 model)."""
    if _keras3.is_keras3(model):
        from tfprune._keras3 import training

        _keras3.require_prunable(model)
        return training.ticket_rows(model)
    _keras.check_model(model)
    _keras.require_prunable(model)
    rows = []
    for name, (layer, owner) in _keras.prunable_kernel_layers(model).items():
        # the class of the user's layer (MultiHeadAttention for "mha/query"), the shape of the kernel
        rows.append({"name": name, "class": type(_keras.inner_layer(layer)).__name__,
                     "shape": [int(d) for d in owner.kernel.shape]})
    return rows


def save_ticket(path, masks: Mapping[str, np.ndarray], model=None, info: "Mapping | None" = None,
                layers: "list[dict] | None" = None) -> str:
    """Saves ``masks`` with the architecture they belong to; returns the path.

    Args:
        path: target ``.npz`` file (written atomically; parent directories are created).
        masks: ``{layer name: 0/1 array}`` (e.g. :func:`tfprune.get_masks`, a lottery level).
        model: the model the masks are for; its prunable layers are recorded and the masks
            checked against them. Masks may cover a subset of the layers (the others are saved
            as all-ones masks).
        info: JSON-serialisable metadata stored with the ticket.
        layers: instead of ``model``, the layer table from :func:`ticket_layers`.
    """
    if model is not None:
        masks = check_masks(model, masks)
        layers = ticket_layers(model)
    elif layers is None:
        raise ValueError("model: pass the model the masks belong to (or layers=ticket_layers(model)), so that the "
                         "ticket records the architecture it fits.")
    names = [row["name"] for row in layers]
    unknown = [name for name in masks if name not in names]
    if unknown:
        raise ValueError(f"masks: layers {unknown} are not among the prunable layers {names}.")
    arrays = {}
    for row in layers:
        name = row["name"]
        mask = np.asarray(masks[name], np.float32) if name in masks else np.ones(row["shape"], np.float32)
        if list(mask.shape) != list(row["shape"]):
            raise ValueError(f"masks: layer {name!r} has a mask of shape {mask.shape}, its kernel is {tuple(row['shape'])}.")
        arrays[name] = mask
    meta = {"format": FORMAT, "version": VERSION, "layers": layers, "info": dict(info or {})}
    arrays[META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    save_npz_atomic(path, arrays, compressed=True, checksum=True)
    return os.fspath(path)


def load_ticket(path) -> Ticket:
    """Reads a ticket saved by :func:`save_ticket` (or a lottery level's ``mask.npz``)."""
    return _load(path)


def _load(path, model=None) -> Ticket:
    if isinstance(path, Ticket):
        return path
    if not os.path.exists(path):
        raise FileNotFoundError(f"ticket: no file {os.fspath(path)!r}.")
    return ticket_from_arrays(_files.read_npz(path), path, model)


def ticket_from_arrays(arrays: Mapping[str, np.ndarray], path, model=None) -> Ticket:
    """The :class:`Ticket` in the arrays of a ticket file ``path`` (read by the caller); ``model``,
    if given, is named in the errors."""
    path = os.fspath(path)
    arrays = dict(arrays)
    if META_KEY not in arrays:
        raise ValueError(f"ticket: {path!r} is not a tfprune ticket (no {META_KEY!r} entry); "
                         "save masks with tfprune.lottery.save_ticket(path, masks, model).")
    meta = json.loads(arrays.pop(META_KEY).tobytes().decode("utf-8"))
    if meta.get("format") != FORMAT or int(meta.get("version", 0)) > VERSION:
        raise ValueError(f"ticket: {path!r} has format {meta.get('format')!r} version {meta.get('version')!r}; "
                         f"this tfprune reads {FORMAT!r} up to version {VERSION}.")
    layers = tuple(meta["layers"])
    listed = [row["name"] for row in layers]
    without_mask = [name for name in listed if name not in arrays]
    unlisted = [name for name in arrays if name not in listed]
    if without_mask or unlisted:
        problem = (f"lists layers {without_mask} it holds no mask for" if without_mask else
                   f"holds masks for layers {unlisted} its layer table does not list")
        where = f"; model {model.name!r} has the prunable layers {list(_kit.kit_for(model).prunable_kernels(model))}" \
            if model is not None else ""
        raise ValueError(f"ticket: {path!r} {problem} (masks in the file: {sorted(arrays)}){where}; the file was "
                         "edited or damaged: save the ticket again with tfprune.lottery.save_ticket.")
    masks = {name: arrays[name].astype(np.float32) for name in listed}
    return Ticket(masks, layers, meta.get("info", {}), path)


def _differences(saved: "list[dict]", current: "list[dict]", match: str) -> "list[str]":
    problems = []
    if match == "order":
        if len(saved) != len(current):
            problems.append(f"the ticket has {len(saved)} prunable layers, the model {len(current)}")
        for i, (a, b) in enumerate(zip(saved, current)):
            if a["shape"] != b["shape"] or a["class"] != b["class"]:
                problems.append(f"prunable layer #{i}: ticket {a['name']!r} {a['class']} {tuple(a['shape'])} vs model "
                                f"{b['name']!r} {b['class']} {tuple(b['shape'])}")
        return problems
    by_name = {row["name"]: row for row in current}
    saved_names = {row["name"] for row in saved}
    missing = [row["name"] for row in saved if row["name"] not in by_name]
    extra = [row["name"] for row in current if row["name"] not in saved_names]
    if missing:
        problems.append(f"layers in the ticket but not in the model: {missing}")
    if extra:
        problems.append(f"prunable layers in the model but not in the ticket: {extra}")
    for row in saved:
        other = by_name.get(row["name"])
        if other is not None and (other["shape"] != row["shape"] or other["class"] != row["class"]):
            problems.append(f"layer {row['name']!r}: ticket {row['class']} {tuple(row['shape'])} vs model "
                            f"{other['class']} {tuple(other['shape'])}")
    return problems


def ticket_masks_for(model, ticket, match: str = "name") -> "dict[str, np.ndarray]":
    """The ticket's masks keyed by ``model``'s layer names, after checking the architecture.

    Raises :class:`TicketMismatchError` listing every difference.
    """
    if match not in ("name", "order"):
        raise ValueError(f"match: got {match!r}; allowed: 'name' (same layer names) or 'order' (same prunable "
                         "layers in the same order, names may differ).")
    if isinstance(ticket, Ticket):
        source = repr(ticket.path) if ticket.path else "a Ticket"
    else:
        source = repr(os.fspath(ticket))
    ticket = _load(ticket, model)
    current = ticket_layers(model)
    problems = _differences(list(ticket.layers), current, match)
    if problems:
        raise TicketMismatchError(
            f"ticket: {source} was made for another architecture than model {model.name!r} (prunable layers "
            f"{[row['name'] for row in current]}): " + "; ".join(problems)
            + ". A ticket applies to a freshly built model of the same architecture"
            + (" (match='order' pairs layers by position when only the names differ)." if match == "name" else "."))
    if match == "order":
        return {b["name"]: ticket.masks[a["name"]] for a, b in zip(ticket.layers, current)}
    return {row["name"]: ticket.masks[row["name"]] for row in ticket.layers}


def apply_ticket(model, ticket, match: str = "name"):
    """Applies a saved ticket to ``model``; returns the masked (wrapped) model.

    Args:
        model: a built tf_keras model of the ticket's architecture, e.g. freshly initialized,
            to be trained on another dataset.
        ticket: path of a ticket file, or a :class:`Ticket`.
        match: ``"name"`` (default) pairs layers by name; ``"order"`` by position among the
            prunable layers (for models whose auto-generated names differ).

    Raises:
        TicketMismatchError: the names or kernel shapes differ; the message lists them all.

    Example (a ticket file: :func:`save_ticket`, or a lottery level's ``mask.npz``):

        >>> masks = tfprune.compute_masks(model, "magnitude", sparsity=0.8)
        >>> path = save_ticket("ticket.npz", masks, model)
        >>> pruned = apply_ticket(build_lenet(), path)      # e.g. to train on other data
        >>> all((tfprune.get_masks(pruned)[name] == mask).all() for name, mask in masks.items())
        True
        >>> pruned.compile("adam", loss, metrics=["accuracy"])
        >>> history = pruned.fit(x, y, epochs=1, callbacks=tfprune.callbacks(), verbose=0)
    """
    return apply_masks(model, ticket_masks_for(model, ticket, match))


def load_phase_weights(model, path) -> None:
    """Sets the weights file of a run phase (``trained_weights.npz``, ``rewind_weights.npz``) on
    ``model`` (a fresh build of the run's architecture, wrapped or not; layers keyed by name)."""
    from tfprune.lottery import _state

    _state.set_layer_weights(model, _files.read_npz(path))


def phase_weights(model) -> "dict[str, np.ndarray]":
    """``model``'s own weights (wrappers seen through, masked entries +0.0) as a run phase's
    weights file holds them: ``{"<layer>::<i>": array}`` (a tf_keras or Keras 3 model)."""
    from tfprune.lottery import _state
    from tfprune.wrapper import get_masks, is_wrapped

    return _state.layer_weights(model, get_masks(model) if is_wrapped(model) else None)


def save_phase_weights(model, path) -> str:
    """Writes :func:`phase_weights` of ``model`` (checksummed, atomic), for :func:`load_phase_weights`;
    returns the path. With a ticket of the same masks it is a ticket you can train again."""
    _files.write_npz(path, phase_weights(model))
    return os.fspath(path)
