"""What structured pruning did: per-layer channels, parameters and FLOPs before and after.

FLOPs are ``2 × multiply-accumulates`` (:func:`tfprune.energy.layer_macs`) of the Dense and
convolution layers (depthwise, separable and transposed included) for one example; BatchNorm, activations, pooling and
merges are not counted (they are a few percent of a CNN's work). Parameters are every
weight of the layer (BatchNorm's moving statistics included), as ``count_params``. The energy
per inference before and after (float32, default costs) is :func:`tfprune.estimate_energy` of
each model.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tfprune.energy import EnergyEstimate, estimate_energy, layer_macs
from tfprune.table import table


def layer_flops(layer) -> int:
    """``2 × MACs`` of one forward pass of ``layer`` for a single example (0 for layers
    without a Dense/convolution kernel or with unknown shapes); the MACs are
    :func:`tfprune.energy.layer_macs`."""
    return 2 * layer_macs(layer)


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
        energy per inference (float32): 0.0132 -> 0.005166 µJ (x0.3913); compute ...
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
    #: energy per inference (float32, default costs; :func:`tfprune.estimate_energy`) of the
    #: original and of the smaller model, both dense
    energy_before: "EnergyEstimate | None" = None
    energy_after: "EnergyEstimate | None" = None

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

    @property
    def energy_ratio(self) -> "float | None":
        if self.energy_before is None or self.energy_after is None or not self.energy_before.total_pj:
            return None
        return self.energy_after.total_pj / self.energy_before.total_pj

    def energy_line(self) -> "str | None":
        """One line: energy per inference before -> after, compute and memory."""
        if self.energy_ratio is None:
            return None
        b, a = self.energy_before, self.energy_after
        return (f"energy per inference ({b.types()}): {b.total_uj:.4g} -> {a.total_uj:.4g} µJ (x{self.energy_ratio:.4f}); "
                f"compute {b.compute_pj * 1e-6:.4g} -> {a.compute_pj * 1e-6:.4g} µJ, memory {b.memory_pj * 1e-6:.4g} -> "
                f"{a.memory_pj * 1e-6:.4g} µJ; weights in {b.weights_in} -> {a.weights_in}")

    def to_dict(self) -> dict:
        return {
            "criterion": self.criterion, "ratio": self.ratio, "scope": self.scope, "removed": self.removed,
            "exact": self.exact, "notes": list(self.notes),
            "params_before": self.params_before, "params_after": self.params_after, "params_ratio": self.params_ratio,
            "flops_before": self.flops_before, "flops_after": self.flops_after, "flops_ratio": self.flops_ratio,
            "energy_before": self.energy_before.to_dict() if self.energy_before is not None else None,
            "energy_after": self.energy_after.to_dict() if self.energy_after is not None else None,
            "energy_ratio": self.energy_ratio,
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
        if self.energy_line():
            lines.append(self.energy_line())
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
    return StructuredReport(tuple(rows), group_rows, str(criterion), ratio_out, scope, removed, bool(exact), tuple(notes),
                            estimate_energy(before, masks={}), estimate_energy(after, masks={}))
