"""What structured pruning did: per-layer channels, parameters and FLOPs before and after.

FLOPs are ``2 × multiply-accumulates`` of the Dense and convolution layers (depthwise,
separable and transposed included) for one example; BatchNorm, activations, pooling and
merges are not counted (they are a few percent of a CNN's work). Parameters are every
weight of the layer (BatchNorm's moving statistics included), as ``count_params``.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tfprune import _keras
from tfprune.table import table


def _prod(values) -> int:
    return int(np.prod([int(v) for v in values], dtype=np.int64)) if len(values) else 1


def layer_flops(layer) -> int:
    """``2 × MACs`` of one forward pass of ``layer`` for a single example (0 for layers
    without a Dense/convolution kernel or with unknown shapes)."""
    try:
        in_shape, out_shape = tuple(layer.input_shape), tuple(layer.output_shape)
    except (AttributeError, RuntimeError):
        return 0
    if any(isinstance(s, (list, tuple)) for s in in_shape) or any(d is None for d in in_shape[1:] + out_shape[1:]):
        return 0
    kind = _keras.layer_kind(layer)
    if kind == "dense":
        return 2 * _prod(in_shape[1:-1]) * in_shape[-1] * out_shape[-1]
    if kind == "depthwise":
        kernel = tuple(layer.depthwise_kernel.shape)
        return 2 * _prod(out_shape[1:-1]) * _prod(kernel[:-2]) * kernel[-2] * kernel[-1]
    if kind == "separable":
        kernel = tuple(layer.depthwise_kernel.shape)
        spatial = _prod(out_shape[1:-1])
        depthwise = spatial * _prod(kernel[:-2]) * kernel[-2] * kernel[-1]
        return 2 * (depthwise + spatial * kernel[-2] * kernel[-1] * out_shape[-1])
    if kind == "transposed":
        kernel = tuple(layer.kernel.shape)  # [..., out, in]
        return 2 * _prod(in_shape[1:-1]) * _prod(kernel[:-2]) * kernel[-2] * kernel[-1]
    if kind == "conv":
        kernel = tuple(layer.kernel.shape)  # [..., in / groups, out]
        return 2 * _prod(out_shape[1:-1]) * _prod(kernel[:-2]) * kernel[-2] * kernel[-1]
    return 0


@dataclasses.dataclass(frozen=True)
class LayerChange:
    name: str
    cls: str
    channels_before: "int | None"   # last axis of the output
    channels_after: "int | None"
    params_before: int
    params_after: int
    flops_before: int
    flops_after: int


@dataclasses.dataclass(frozen=True)
class GroupChange:
    name: str
    producers: "tuple[str, ...]"
    channels_before: int
    channels_after: int


@dataclasses.dataclass(frozen=True)
class StructuredReport:
    """Per-layer channels / params / FLOPs before and after, the channel groups, and notes.

    ``str(report)`` is a table; ``report.to_dict()`` is JSON-ready. ``exact`` is True when the
    smaller model equals the masked original exactly (see :mod:`tfprune.structured.surgery`).

    Example:
        >>> small, report = tfprune.structured.prune(model, 0.5)
        >>> print(report)
        structured pruning: criterion=l1, ratio=0.5, scope=layerwise, removed=zero, exact=True
        layer   class  channels  params      FLOPs
        -----...
        fc1     Dense    32->16  544->272    1,024->512
        fc2     Dense     16->8  528->136    1,024->256
        output  Dense      4->4  68->36        128->64
        -----...
        total                    1,140->444  2,176->832
        params x0.3895, FLOPs x0.3824
        channel groups (removed together): fc1 32->16; fc2 16->8
        >>> round(report.params_ratio, 4), round(report.flops_ratio, 4)
        (0.3895, 0.3824)
    """

    rows: "tuple[LayerChange, ...]"
    groups: "tuple[GroupChange, ...]"
    criterion: str
    ratio: object
    scope: str
    removed: str
    exact: bool
    notes: "tuple[str, ...]" = ()

    @property
    def params_before(self) -> int:
        return sum(r.params_before for r in self.rows)

    @property
    def params_after(self) -> int:
        return sum(r.params_after for r in self.rows)

    @property
    def flops_before(self) -> int:
        return sum(r.flops_before for r in self.rows)

    @property
    def flops_after(self) -> int:
        return sum(r.flops_after for r in self.rows)

    @property
    def params_ratio(self) -> float:
        return self.params_after / self.params_before if self.params_before else 1.0

    @property
    def flops_ratio(self) -> float:
        return self.flops_after / self.flops_before if self.flops_before else 1.0

    def to_dict(self) -> dict:
        return {
            "criterion": self.criterion, "ratio": self.ratio, "scope": self.scope, "removed": self.removed,
            "exact": self.exact, "notes": list(self.notes),
            "params_before": self.params_before, "params_after": self.params_after, "params_ratio": self.params_ratio,
            "flops_before": self.flops_before, "flops_after": self.flops_after, "flops_ratio": self.flops_ratio,
            "layers": [dataclasses.asdict(r) for r in self.rows],
            "groups": [dict(dataclasses.asdict(g), producers=list(g.producers)) for g in self.groups],
        }

    def __str__(self) -> str:
        rows = [[r.name, r.cls, f"{r.channels_before}->{r.channels_after}" if r.channels_before is not None else "-",
                 f"{r.params_before:,}->{r.params_after:,}", f"{r.flops_before:,}->{r.flops_after:,}"]
                for r in self.rows]
        total = [["total", "", "", f"{self.params_before:,}->{self.params_after:,}",
                  f"{self.flops_before:,}->{self.flops_after:,}"]]
        lines = [f"structured pruning: criterion={self.criterion}, ratio={self.ratio}, scope={self.scope}, "
                 f"removed={self.removed}, exact={self.exact}",
                 table(["layer", "class", "channels", "params", "FLOPs"], rows, align="<<>>>", footer=total),
                 f"params x{self.params_ratio:.4f}, FLOPs x{self.flops_ratio:.4f}"]
        if self.groups:
            lines.append("channel groups (removed together): " + "; ".join(
                f"{g.name} {g.channels_before}->{g.channels_after}" for g in self.groups))
        lines.extend("note: " + n for n in self.notes)
        return "\n".join(lines)


def _channels(layer):
    try:
        shape = layer.output_shape
    except (AttributeError, RuntimeError):
        return None
    if isinstance(shape, list) or not shape:
        return None
    return shape[-1]


def compare(before, after, groups, keep, *, criterion, ratio, scope, removed, exact, notes) -> StructuredReport:
    """Builds the report from the original and the smaller model (layers matched by name)."""
    new_layers = {layer.name: layer for layer in after.layers}
    rows = []
    for layer in before.layers:
        new = new_layers.get(layer.name)
        if new is None:
            continue
        params_before, flops_before = layer.count_params(), layer_flops(layer)
        if not params_before and not flops_before:
            continue
        rows.append(LayerChange(layer.name, type(layer).__name__, _channels(layer), _channels(new), params_before,
                                new.count_params(), flops_before, layer_flops(new)))
    group_rows = tuple(GroupChange(g.name, g.producers, g.channels, int(np.asarray(keep[g.name]).sum()))
                       for g in groups)
    ratio_out = {k: float(v) for k, v in ratio.items()} if isinstance(ratio, dict) else float(ratio)
    return StructuredReport(tuple(rows), group_rows, str(criterion), ratio_out, scope, removed, bool(exact), tuple(notes))
