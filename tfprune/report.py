"""Sparsity report: per-layer kept weights and density, global sparsity, and layer collapse.

A layer has *collapsed* when it keeps no weight, or when every input→output path through it
is cut (it keeps weights, but none of them connects the input to the output). The second
check counts paths with the SynFlow pass on the 0/1 masks (:func:`tfprune.scoring.path_flow`).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from tfprune import _keras
from tfprune.table import table


@dataclasses.dataclass(frozen=True)
class LayerRow:
    name: str
    shape: tuple
    params: int
    kept: int
    density: float
    paths: "float | None"  # input→output paths through the layer's kept weights (None: not computed)

    @property
    def collapsed(self) -> bool:
        return bool(self.reason)

    @property
    def reason(self) -> str:
        """'' if healthy; 'no weight left'; or 'all paths cut' (weights kept, none on a path)."""
        if self.kept == 0:
            return "no weight left"
        if self.paths is not None and self.paths == 0:
            return "all paths cut"
        return ""


@dataclasses.dataclass(frozen=True)
class SparsityReport:
    """Rows per prunable layer plus totals. ``str(report)`` is a table; ``to_dict()`` for JSON."""

    rows: "tuple[LayerRow, ...]"

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def kept(self) -> int:
        return sum(r.kept for r in self.rows)

    @property
    def sparsity(self) -> float:
        return 1.0 - self.kept / self.params if self.params else 0.0

    @property
    def collapsed(self) -> "list[str]":
        """Names of the collapsed layers (no weight left, or every path through them cut)."""
        return [r.name for r in self.rows if r.collapsed]

    def to_dict(self) -> dict:
        return {
            "layers": [dict(dataclasses.asdict(r), shape=list(r.shape), collapsed=r.collapsed, reason=r.reason)
                       for r in self.rows],
            "params": self.params, "kept": self.kept, "sparsity": self.sparsity, "collapsed": self.collapsed,
        }

    def __str__(self) -> str:
        rows = [[r.name, str(r.shape), f"{r.params:,}", f"{r.kept:,}", f"{r.density:.4f}",
                 f"COLLAPSED: {r.reason}" if r.collapsed else ""] for r in self.rows]
        total = [["total", "", f"{self.params:,}", f"{self.kept:,}", f"{1 - self.sparsity:.4f}",
                  f"sparsity {self.sparsity:.4f}"]]
        text = table(["layer", "shape", "params", "kept", "density", "note"], rows, align="<<>>>", footer=total)
        return text + (f"\nlayer collapse: {', '.join(self.collapsed)}" if self.collapsed else "")


def sparsity_report(model, masks: "Mapping[str, np.ndarray] | None" = None, check_paths: bool = True) -> SparsityReport:
    """Per-layer (name, shape, params, kept, density) and global sparsity of ``model``.

    Args:
        model: a tf_keras model, wrapped (masks read from the wrappers) or plain (nonzeros).
        masks: optional masks to report instead of the model's own.
        check_paths: also count input→output paths per layer to flag layers whose every path is
            cut (one float64 forward/backward pass; skipped for models it cannot run on).

    Example:
        >>> pruned = tfprune.prune_at_init(model, "magnitude", sparsity=0.9)
        >>> report = tfprune.sparsity_report(pruned)
        >>> print(report)
        layer     shape     params   kept   density  note
        -----...
        fc1       (16, 32)     512     41    0.0801
        fc2       (32, 16)     512     42    0.0820
        output    (16, 4)       64     26    0.4062
        -----...
        total                1,088    109    0.1002  sparsity 0.8998
        >>> round(report.sparsity, 4), report.collapsed
        (0.8998, [])
    """
    from tfprune.scoring import path_flow
    from tfprune.wrapper import check_masks, get_masks

    _keras.check_model(model)
    masks = check_masks(model, masks) if masks is not None else get_masks(model)
    full = get_masks(model)
    full.update(masks)
    paths = None
    if check_paths:
        try:
            paths = path_flow(model, full)
        except (ValueError, TypeError):
            paths = None
    rows = []
    for name, mask in full.items():
        kept = int(np.count_nonzero(mask))
        flow = None
        if paths is not None:
            value = paths[name]
            flow = value if np.isfinite(value) else float("inf")
        rows.append(LayerRow(name, tuple(mask.shape), int(mask.size), kept, kept / mask.size, flow))
    return SparsityReport(tuple(rows))
