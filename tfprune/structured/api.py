"""Structured pruning entry points: plan which channels go, then build the smaller model."""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from tfprune import _keras
from tfprune.allocation import allocate_channels, check_sparsity
from tfprune.structured import surgery
from tfprune.structured.graph import ChannelGraph, Group, StructuredPruningError
from tfprune.structured.report import StructuredReport, compare
from tfprune.structured.scores import channel_scores, channel_sizes, criterion_keep


@dataclasses.dataclass
class ChannelPlan:
    """Which channels survive: the model's channel groups and a 0/1 keep mask per group.

    Attributes:
        graph: the :class:`~tfprune.structured.graph.ChannelGraph` of the model.
        groups: the groups that may lose channels (producers, coupled channel sets).
        keep: ``{group name: float32 0/1 array, one entry per channel of the group}``.
        scores: ``{group name: the channel scores that were ranked}``.
        criterion, ratio, scope: how the plan was made.

    Edit ``keep`` to force choices, then call :func:`shrink`.
    """

    graph: ChannelGraph
    groups: "list[Group]"
    keep: "dict[str, np.ndarray]"
    scores: "dict[str, np.ndarray]"
    criterion: str
    ratio: object
    scope: str

    def keep_units(self) -> np.ndarray:
        """Boolean per unit of the graph: does it survive (pinned units always do)."""
        keep = np.ones(len(self.graph.unit_layer), bool)
        for group in self.groups:
            mask = np.asarray(self.keep[group.name]) != 0
            if mask.shape != (group.channels,):
                raise ValueError(f"keep[{group.name!r}]: shape {mask.shape}, expected ({group.channels},).")
            if not mask.any():
                raise ValueError(f"keep[{group.name!r}]: keeps no channel; every group keeps at least one.")
            for units, kept in zip(group.sets, mask):
                keep[units] = kept
        return keep

    def channel_masks(self) -> "dict[str, np.ndarray]":
        """``{producer layer: float32 0/1 mask over its output channels}`` (all Dense/Conv layers
        of the graph, pinned ones all ones)."""
        keep = self.keep_units()
        return {name: keep[units].astype(np.float32) for name, units in self.graph.producer_units.items()}

    def kernel_masks(self) -> "dict[str, np.ndarray]":
        """Element masks (kernel-shaped) for :func:`tfprune.apply_masks`: every weight of a
        removed output channel is 0. ``tfprune.apply_masks(model, plan.kernel_masks())`` is the
        masked original of ``removed="fold"``."""
        layers = {layer.name: layer for layer in self.graph.model.layers}
        out = {}
        for name, mask in self.channel_masks().items():
            shape = tuple(layers[name].kernel.shape)
            out[name] = np.broadcast_to(mask, shape).astype(np.float32)
        return out


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """The smaller ``model``, its ``report`` and the ``plan`` it came from.

    Unpacks as a pair: ``small, report = tfprune.structured.prune(...)``.
    """

    model: object
    report: StructuredReport
    plan: ChannelPlan

    def __iter__(self):
        return iter((self.model, self.report))


def _layer_scores(model, criterion, data, loss, options):
    if isinstance(criterion, Mapping):
        scores = {name: np.asarray(value, np.float64) for name, value in criterion.items()}
        for name, value in scores.items():
            if value.ndim != 1:
                raise ValueError(f"criterion: scores of layer {name!r} have shape {value.shape}; expected 1-D, one per "
                                 "output channel (pool element scores with pool_channel_scores).")
        return scores, "custom"
    return channel_scores(model, criterion, data=data, loss=loss, **options), str(criterion)


def _group_ratios(graph, ratio, groups) -> "dict[str, float]":
    names = {layer.name for layer in graph.model.layers}
    unknown = [n for n in ratio if n not in names]
    if unknown:
        raise ValueError(f"ratio: no layer named {unknown} in model {graph.model.name!r}.")
    grouped = {p for g in groups for p in g.producers}
    pinned = graph.pinned_producers()
    out = {}
    for name, value in ratio.items():
        value = check_sparsity(value, f"ratio[{name!r}]")
        if value > 0 and name not in grouped:
            why = pinned.get(name, "it has no output channels that can be removed")
            raise StructuredPruningError(f"ratio[{name!r}]: layer {name!r} cannot lose channels ({why}).")
    for group in groups:
        values = {check_sparsity(ratio[p], f"ratio[{p!r}]") for p in group.producers if p in ratio}
        if len(values) > 1:
            raise StructuredPruningError(
                f"ratio: layers {list(group.producers)} share their channels (e.g. through a residual Add) and must "
                f"lose the same channels, but got different ratios {sorted(values)}; give them one ratio.")
        out[group.name] = values.pop() if values else 0.0
    return out


def channel_plan(model, ratio, criterion="l1", data=None, loss=None, *, scope: str = "layerwise",
                 exclude: Sequence[str] = (), min_channels: int = 1, **options) -> ChannelPlan:
    """Decides which output channels of the model's Dense/Conv layers are removed.

    Args:
        model: built tf_keras Sequential/Functional model (a wrapped model is stripped first).
        ratio: fraction of channels to remove, in [0, 1): one float for every group, or a dict
            ``{layer name: ratio}`` (layers not named keep all their channels; layers coupled by
            a merge must get the same ratio).
        criterion: ``"l1"`` (default), ``"l2"``, a core scorer (``"magnitude"``, ``"random"``,
            ``"snip"``, ``"grasp"``, ``"synflow"``) pooled per channel, or a dict
            ``{layer: 1-D channel scores}`` (higher kept).
        data, loss, **options: for data-dependent scorers, see :func:`tfprune.compute_scores`.
        scope: ``"layerwise"`` (default: every group loses ``ratio`` of its channels) or
            ``"global"`` (channels of all groups ranked together by mean score per weight; see
            :func:`tfprune.allocation.allocate_channels`).
        exclude: layers whose output channels are all kept (and those coupled with them).
        min_channels: every group keeps at least this many channels.

    Returns:
        a :class:`ChannelPlan`.
    """
    if not isinstance(min_channels, (int, np.integer)) or isinstance(min_channels, bool) or min_channels < 1:
        raise ValueError(f"min_channels: got {min_channels!r}; allowed: an integer >= 1 (a layer without channels "
                         "would disconnect the network).")
    model = _plain(model)
    graph = ChannelGraph(model, exclude=exclude)
    groups = graph.groups
    if isinstance(ratio, Mapping):
        ratios = _group_ratios(graph, ratio, groups)
        active = [g for g in groups if ratios[g.name] > 0]
        allocation_ratio = ratios
        if scope != "layerwise":
            raise ValueError("ratio: per-layer ratios (a dict) need scope='layerwise'.")
    else:
        value = check_sparsity(ratio, "ratio")
        active = groups if value > 0 else []
        allocation_ratio = value
    graph.check_removable(active)
    layer_scores, criterion_name = _layer_scores(model, criterion, data, loss, options)
    keep_direction = "highest" if isinstance(criterion, Mapping) else criterion_keep(criterion)
    missing = [p for g in groups for p in g.producers if p not in layer_scores]
    if missing:
        raise ValueError(f"criterion: no channel scores for layer(s) {sorted(set(missing))}.")
    sizes_per_layer = channel_sizes(model)
    group_scores, group_sizes = {}, {}
    for group in groups:
        values, sizes = [], []
        for units in group.sets:
            total = size = 0.0
            for u in units:
                layer_name, channel = graph.unit_layer[u], graph.unit_channel[u]
                row = layer_scores[layer_name]
                if row.shape != (len(graph.producer_units[layer_name]),):
                    raise ValueError(f"criterion: scores of layer {layer_name!r} have shape {row.shape}; expected "
                                     f"({len(graph.producer_units[layer_name])},).")
                total += row[channel]
                size += sizes_per_layer[layer_name]
            values.append(total)
            sizes.append(size)
        group_scores[group.name] = np.array(values)
        group_sizes[group.name] = np.array(sizes)
    if not groups:
        keep = {}
    else:
        keep = allocate_channels(group_scores, allocation_ratio, scope=scope, keep=keep_direction,
                                 sizes=group_sizes if scope == "global" else None, min_kept=min_channels)
    return ChannelPlan(graph, list(groups), keep, group_scores, criterion_name,
                       ratio if not isinstance(ratio, Mapping) else dict(ratio), scope)


def _plain(model):
    _keras.check_model(model)
    from tfprune.wrapper import is_wrapped, strip
    return strip(model) if is_wrapped(model) else model


def shrink(plan: ChannelPlan, removed: str = "zero", *, _stacklevel: int = 2) -> PruneResult:
    """Builds the smaller model of ``plan`` (weights copied) and its report.

    ``removed`` defines the masked original the smaller model equals (``"zero"`` or
    ``"fold"``, see :mod:`tfprune.structured.surgery`).

    Example:
        >>> plan = channel_plan(model, 0.5, "l2")
        >>> plan.keep["fc1"][:] = 1            # force: keep every channel of fc1
        >>> small, report = shrink(plan)
        >>> [layer.units for layer in small.layers]
        [32, 8, 4]
    """
    model = plan.graph.model
    keep_units = plan.keep_units()
    small, notes, exact = surgery.build(model, plan.graph, keep_units, removed, stacklevel=_stacklevel + 1)
    report = compare(model, small, plan.groups, plan.keep, criterion=plan.criterion, ratio=plan.ratio,
                     scope=plan.scope, removed=removed, exact=exact, notes=notes)
    return PruneResult(small, report, plan)


def reference_model(plan: ChannelPlan, removed: str = "zero"):
    """The masked original of ``plan``: a same-size copy of the model with the removed channels
    zeroed as ``removed`` defines. The smaller model's outputs equal its outputs (exactly when
    the report says ``exact``).

    Example:
        >>> result = prune(model, 0.5)
        >>> masked = reference_model(result.plan)
        >>> float(np.abs(result.model(x) - masked(x)).max()) <= 1e-5, result.report.exact
        (True, True)
    """
    return surgery.reference(plan.graph.model, plan.graph, plan.keep_units(), removed)


def prune(model, ratio, criterion="l1", data=None, loss=None, *, scope: str = "layerwise",
          exclude: Sequence[str] = (), removed: str = "zero", min_channels: int = 1, **options) -> PruneResult:
    """Removes output channels (neurons / filters) and returns a genuinely smaller dense model.

    Removing a channel also removes the matching input slice of every consumer, through
    BatchNorm, activations, pooling, Flatten, Dropout, depthwise convolutions and merges
    (residual ``Add``: coupled channels go together; ``Concatenate``: offsets). The model's
    last layer never loses outputs. The new model is a plain tf_keras model (not compiled):
    ``compile`` / ``fit`` it, save it, or convert it with
    ``tf.lite.TFLiteConverter.from_keras_model``.

    Args:
        model: built tf_keras Sequential/Functional model (not modified).
        ratio: fraction of channels to remove per group (float), or ``{layer: ratio}``.
        criterion: ``"l1"`` / ``"l2"`` norms, a core scorer name pooled per channel, or a dict
            of 1-D channel scores. See :func:`channel_plan`.
        data, loss: for ``"snip"`` / ``"grasp"``.
        scope: ``"layerwise"`` (default) or ``"global"``.
        exclude: layers whose channels are all kept.
        removed: ``"zero"`` (default) or ``"fold"``: what the smaller model equals, see
            :mod:`tfprune.structured.surgery`.
        min_channels: every group keeps at least this many channels.
        **options: scorer options (``seed``, ``temperature``, ``input_shape``).

    Returns:
        :class:`PruneResult` ``(model, report, plan)``; ``small, report = prune(...)`` works.

    Raises:
        StructuredPruningError: a layer cannot pass removed channels (its name and class are
            in the message), or coupled layers got different ratios.

    Example:
        >>> small, report = tfprune.structured.prune(model, 0.75, "l1")
        >>> [layer.units for layer in small.layers]   # the output layer keeps its 4 classes
        [8, 4, 4]
        >>> round(report.params_ratio, 4)           # print(report): per layer, before → after
        0.1684
        >>> small.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        >>> history = small.fit(x, y, epochs=1, verbose=0)
    """
    plan = channel_plan(model, ratio, criterion, data, loss, scope=scope, exclude=exclude,
                        min_channels=min_channels, **options)
    return shrink(plan, removed, _stacklevel=3)
