"""Sparsity report: per-layer kept weights and density, global sparsity, and layer collapse.

A layer has *collapsed* when it keeps no weight, or when every input→output path through it
is cut (it keeps weights, but none of them connects the input to the output). The second
check counts paths with the SynFlow pass on the 0/1 masks (:func:`tfprune.scoring.path_flow`).
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from tfprune import _keras, _keras3
from tfprune.energy import EnergyEstimate, estimate_energy
from tfprune.table import table


@dataclasses.dataclass(frozen=True)
class LayerRow:
    name: str
    shape: tuple
    params: int
    kept: int
    density: float
    paths: "float | None"  # input→output paths through the layer's kept weights (None: not computed)
    why_not_pruned: str = ""  # rows of layers left dense: why tfprune does not prune them

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
    """Rows per prunable layer plus totals. ``str(report)`` is a table; ``to_dict()`` for JSON.

    ``rows``, ``params``, ``kept`` and ``sparsity`` cover the *prunable* weights (Dense, Conv,
    transposed-Conv and EinsumDense kernels, and the query/key/value/attention_output kernels of
    a MultiHeadAttention, one row each, keyed as :func:`tfprune._keras.prunable_kernels` says):
    ``sparsity`` is the fraction of them removed, what ``sparsity=...`` asked for.
    ``not_prunable`` lists the layers whose weight matrices tfprune leaves dense, each with
    ``why_not_pruned`` (Embedding tables, LSTM/GRU/SimpleRNN input and recurrent kernels,
    depthwise and separable kernels, ...; see :func:`tfprune._keras.dense_matrices`), and
    ``overall_sparsity`` is the sparsity over every weight matrix of the model, those included.
    The table prints both when they differ, so that a report never overstates sparsity.
    """

    rows: "tuple[LayerRow, ...]"
    not_prunable: "tuple[LayerRow, ...]" = ()
    #: energy per inference of the masked model (:func:`tfprune.estimate_energy`, float32, default
    #: costs; unstructured masks priced element-sparse; tf_keras and Keras 3 models)
    energy: "EnergyEstimate | None" = None

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
    def overall_params(self) -> int:
        return self.params + sum(r.params for r in self.not_prunable)

    @property
    def overall_kept(self) -> int:
        return self.kept + sum(r.kept for r in self.not_prunable)

    @property
    def overall_sparsity(self) -> float:
        """Fraction removed of every weight matrix (prunable kernels and the ones left dense)."""
        if not self.not_prunable:
            return self.sparsity
        return 1.0 - self.overall_kept / self.overall_params if self.overall_params else 0.0

    @property
    def collapsed(self) -> "list[str]":
        """Names of the collapsed layers (no weight left, or every path through them cut)."""
        return [r.name for r in self.rows if r.collapsed]

    def to_dict(self) -> dict:
        def row(r):
            return dict(dataclasses.asdict(r), shape=list(r.shape), collapsed=r.collapsed, reason=r.reason)

        return {
            "layers": [row(r) for r in self.rows],
            "params": self.params, "kept": self.kept, "sparsity": self.sparsity, "collapsed": self.collapsed,
            "not_prunable": [row(r) for r in self.not_prunable], "overall_params": self.overall_params,
            "overall_kept": self.overall_kept, "overall_sparsity": self.overall_sparsity,
            "energy": self.energy.to_dict() if self.energy is not None else None,
        }

    def __str__(self) -> str:
        def total(label, params, kept, sparsity):
            return [label, "", f"{params:,}", f"{kept:,}", f"{1 - sparsity:.4f}", f"sparsity {sparsity:.4f}"]

        rows = [[r.name, str(r.shape), f"{r.params:,}", f"{r.kept:,}", f"{r.density:.4f}",
                 f"COLLAPSED: {r.reason}" if r.collapsed else ""] for r in self.rows]
        rows += [[r.name, str(r.shape), f"{r.params:,}", f"{r.kept:,}", f"{r.density:.4f}",
                  f"not prunable: {r.why_not_pruned}" if r.why_not_pruned else "not prunable"]
                 for r in self.not_prunable]
        if self.not_prunable:
            footer = [total("prunable", self.params, self.kept, self.sparsity),
                      total("all weight matrices", self.overall_params, self.overall_kept, self.overall_sparsity)]
        else:
            footer = [total("total", self.params, self.kept, self.sparsity)]
        text = table(["layer", "shape", "params", "kept", "density", "note"], rows, align="<<>>>", footer=footer)
        text += f"\nlayer collapse: {', '.join(self.collapsed)}" if self.collapsed else ""
        return text + (f"\n{self.energy.summary()}" if self.energy is not None else "")


def sparsity_report(model, masks: "Mapping[str, np.ndarray] | None" = None, check_paths: bool = True) -> SparsityReport:
    """Per-layer (name, shape, params, kept, density) and global sparsity of ``model``.

    ``sparsity`` is over the prunable weights; layers whose weight matrices tfprune leaves
    dense are listed as "not prunable" rows and counted in ``overall_sparsity``. ``energy`` (last
    line of the table) is the float32 energy per inference of the masked model with the default
    costs (:func:`tfprune.estimate_energy`; call it for other data types, costs or block formats).

    Args:
        model: a tf_keras model, wrapped (masks read from the wrappers) or plain (nonzeros); or a
            Keras 3 model (rows keyed by kernel key, ``mha/query``; each matrix left dense is a
            "not prunable" row whose note says why; paths are not counted).
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
        energy per inference (float32; 654 B of weights in SRAM, activations in SRAM): 0.002128 µJ = ...
        >>> round(report.sparsity, 4), report.collapsed, round(report.energy.total_uj, 6)
        (0.8998, [], 0.002128)
    """
    if _keras3.is_keras3(model):
        return _keras3_report(model, masks)
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
    # no path count for attention query/key kernels: under the all-ones input it is 0 even when
    # their paths are intact (see tfprune._keras.attention_logit_kernels); "no weight left" still applies
    uncounted = set(_keras.attention_logit_kernels(model))
    rows = []
    for name, mask in full.items():
        kept = int(np.count_nonzero(mask))
        flow = None
        if paths is not None and name not in uncounted:
            value = paths[name]
            flow = value if np.isfinite(value) else float("inf")
        rows.append(LayerRow(name, tuple(mask.shape), int(mask.size), kept, kept / mask.size, flow))
    return SparsityReport(tuple(rows), _not_prunable_rows(model), estimate_energy(model, full))


def _keras3_report(model, masks) -> SparsityReport:
    """A Keras 3 model: a row per prunable (or masked) kernel by key, and a "not prunable" row per
    weight matrix left dense, with the reason in its note (all its entries counted as kept).
    Paths are not counted (``paths`` is None): only "no weight left" flags a collapse. ``energy``:
    as for tf_keras (:func:`tfprune.estimate_energy`)."""
    from tfprune._keras3 import layers, masked

    rows, dense = masked.report_rows(model, masks)
    full = masked.get_masks(model)
    if masks is not None:
        full.update(masked.check_masks(model, masks, layers.prunable_kernels(model, include=layers.INCLUDE_CHOICES)))
    return SparsityReport(
        tuple(LayerRow(key, shape, params, kept, kept / params if params else 1.0, None) for key, shape, params, kept in rows),
        tuple(LayerRow(key, shape, params, params, 1.0, None, note) for key, shape, params, note in dense),
        estimate_energy(model, full))


def _not_prunable_rows(model) -> "tuple[LayerRow, ...]":
    """One row per layer holding weight matrices tfprune leaves dense (kept: all of them, or
    what a TF-MOT wrapper's masks keep), with the reason."""
    layers = {_keras.inner_layer(layer).name: layer for layer in model.layers}
    rows = []
    for name, matrices in _keras.dense_matrices(model).items():
        shapes = [tuple(v.shape) for v, _ in matrices]
        params = sum(int(np.prod(s)) for s in shapes)
        kept = sum(int(np.prod(v.shape)) if m is None else int(np.count_nonzero(m.numpy())) for v, m in matrices)
        rows.append(LayerRow(name, shapes[0] if len(shapes) == 1 else tuple(shapes), params, kept,
                             kept / params if params else 1.0, None, _keras.not_pruned_reason(layers[name])))
    return tuple(rows)
