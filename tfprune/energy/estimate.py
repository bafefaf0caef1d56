"""Energy per inference from per-layer counts: :func:`estimate` -> :class:`EnergyEstimate`.

For one example (batch 1), per layer, with ``w`` / ``a`` / ``c`` the bytes of the weights',
activations' and arithmetic's data types and ``E_mem`` the cost of a 32-bit access where the
weights live (:class:`~tfprune.energy.EnergyCosts`)::

    weights read  = kept if stored sparse else params          (each once: ideal reuse)
    indices read  = indices if stored sparse else 0
    MACs          = weights read x reuse                       (zeros stored are multiplied)
    compute       = MACs x (mult + add)
    register      = MACs x register_reads_per_mac x register_pj x c / 4
    weights       = weights read x w / 4 x E_mem
    index         = indices read x index_bits / 32 x E_mem + indices read x int32_add_pj
    activations   = (inputs + outputs) x a / 4 x E_act         (SRAM, or DRAM if not on chip)
    memory        = register + weights + index + activations

The weights live in SRAM when all layers' weight and index bytes fit in ``on_chip_bytes``,
in DRAM otherwise. A layer whose ``sparse`` is None is stored sparse only when that moves fewer
bytes than dense (int8 weights with 16-bit indices need > 2/3 zeros, float32 > 1/3).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

from tfprune import checks
from tfprune.energy.costs import DTYPE_BYTES, EnergyCosts, check_dtype
from tfprune.table import human_bytes, table


@dataclasses.dataclass(frozen=True)
class LayerCount:
    """What one layer does for one example, before pricing.

    ``params``: kernel weights; ``reuse``: MACs per kernel weight (1 for a Dense layer on a
    vector, ``H_out x W_out`` for a 2-D convolution, ``H_in x W_in`` for a transposed one);
    ``inputs`` / ``outputs``: activations read / written; ``kept``: weights a sparse format
    stores (default ``params``); ``indices``: indices it stores (kept weights, or kept blocks);
    ``sparse``: stored sparse (True), dense (False) or whichever moves fewer bytes (None);
    ``pattern``: the sparse format's name (``"element"``, ``"block 4x1"``, ...).
    """

    name: str
    params: int
    reuse: int
    inputs: int
    outputs: int
    kept: "int | None" = None
    indices: int = 0
    sparse: "bool | None" = False
    pattern: str = "element"

    def __post_init__(self):
        for field in ("params", "reuse", "inputs", "outputs", "indices"):
            checks.integer(getattr(self, field), f"LayerCount({self.name!r}).{field}")
        if self.kept is None:
            object.__setattr__(self, "kept", self.params)
        checks.integer(self.kept, f"LayerCount({self.name!r}).kept", allowed=f"an integer in [0, params={self.params}]")
        if self.kept > self.params:
            raise ValueError(f"LayerCount({self.name!r}).kept: got {self.kept}; allowed: an integer in [0, params={self.params}].")
        if self.indices > self.kept:
            raise ValueError(f"LayerCount({self.name!r}).indices: got {self.indices}; allowed: at most kept={self.kept}.")
        if self.sparse not in (True, False, None):
            raise ValueError(f"LayerCount({self.name!r}).sparse: got {self.sparse!r}; allowed: True, False or None.")


@dataclasses.dataclass(frozen=True)
class LayerEnergy:
    """One layer, priced (pJ per inference)."""

    name: str
    stored: str  # "dense", or the sparse pattern ("element", "block 4x1", ...)
    macs: int
    weight_bytes: float  # values + indices
    compute_pj: float
    register_pj: float
    weights_pj: float
    index_pj: float
    activations_pj: float

    @property
    def memory_pj(self) -> float:
        return self.register_pj + self.weights_pj + self.index_pj + self.activations_pj

    @property
    def total_pj(self) -> float:
        return self.compute_pj + self.memory_pj


@dataclasses.dataclass(frozen=True)
class EnergyEstimate:
    """Energy per inference: one :class:`LayerEnergy` per layer, totals, and the assumptions.

    ``str(estimate)`` is a table; ``summary()`` one line; ``to_dict()`` JSON-ready.
    ``notes`` name the layers that were not counted (and why).
    """

    rows: "tuple[LayerEnergy, ...]"
    dtype: str
    activation_dtype: str
    compute_dtype: str
    weights_in: str  # "SRAM" or "DRAM"
    activations_in: str
    costs: EnergyCosts
    notes: "tuple[str, ...]" = ()

    def _sum(self, attr) -> float:
        return sum(getattr(r, attr) for r in self.rows)

    macs = property(lambda self: self._sum("macs"))
    weight_bytes = property(lambda self: self._sum("weight_bytes"))
    compute_pj = property(lambda self: self._sum("compute_pj"))
    register_pj = property(lambda self: self._sum("register_pj"))
    weights_pj = property(lambda self: self._sum("weights_pj"))
    index_pj = property(lambda self: self._sum("index_pj"))
    activations_pj = property(lambda self: self._sum("activations_pj"))
    memory_pj = property(lambda self: self._sum("memory_pj"))
    total_pj = property(lambda self: self._sum("total_pj"))

    @property
    def total_uj(self) -> float:
        return self.total_pj * 1e-6

    def types(self) -> str:
        if self.activation_dtype == self.compute_dtype == self.dtype:
            return self.dtype
        return f"weights {self.dtype}, activations {self.activation_dtype}, arithmetic {self.compute_dtype}"

    def summary(self) -> str:
        """One line: total, compute vs memory, where the weights live."""
        return (f"energy per inference ({self.types()}; {human_bytes(self.weight_bytes)} of weights in "
                f"{self.weights_in}, activations in {self.activations_in}): {_uj(self.total_pj)} = compute "
                f"{_uj(self.compute_pj)} + memory {_uj(self.memory_pj)} ({self.macs:,} MACs; tfprune.energy)")

    def to_dict(self) -> dict:
        totals = {k: getattr(self, k) for k in ("macs", "weight_bytes", "compute_pj", "register_pj", "weights_pj",
                                                 "index_pj", "activations_pj", "memory_pj", "total_pj", "total_uj")}
        return {"layers": [dict(dataclasses.asdict(r), memory_pj=r.memory_pj, total_pj=r.total_pj) for r in self.rows],
                "dtype": self.dtype, "activation_dtype": self.activation_dtype, "compute_dtype": self.compute_dtype,
                "weights_in": self.weights_in, "activations_in": self.activations_in,
                "costs": dataclasses.asdict(self.costs), "notes": list(self.notes), **totals}

    def __str__(self) -> str:
        def cells(r):
            return [f"{r.macs:,}", f"{r.weight_bytes:,.0f}", f"{r.compute_pj:,.0f}", f"{r.register_pj:,.0f}",
                    f"{r.weights_pj:,.0f}", f"{r.index_pj:,.0f}", f"{r.activations_pj:,.0f}", f"{r.total_pj:,.0f}"]

        rows = [[r.name, r.stored] + cells(r) for r in self.rows]
        footer = [["total", ""] + cells(self)]
        text = table(["layer", "stored", "MACs", "weight B", "compute pJ", "register pJ", "weights pJ", "index pJ",
                      "activations pJ", "total pJ"], rows, align="<<>>>>>>>>", footer=footer)
        lines = [self.summary(), text] + [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _uj(pj: float) -> str:
    return f"{pj * 1e-6:.4g} µJ"


def estimate(layers: Sequence[LayerCount], costs: "EnergyCosts | None" = None, dtype: str = "float32", *,
             activation_dtype: "str | None" = None, compute_dtype: "str | None" = None,
             notes: Sequence[str] = ()) -> EnergyEstimate:
    """Prices ``layers`` (:class:`LayerCount` s) with ``costs`` (default: Horowitz 45 nm).

    Args:
        layers: per-layer counts (:func:`tfprune.energy.count_layers` makes them from a model).
        costs: :class:`~tfprune.energy.EnergyCosts`; None for the defaults.
        dtype: the weights' data type, and by default the activations' and the arithmetic's:
            ``"float32"``, ``"float16"`` or ``"int8"``.
        activation_dtype, compute_dtype: override them (a float16 TFLite file stores float16
            weights but computes in float32; dynamic-range int8 keeps float32 activations).
        notes: carried into the estimate (e.g. layers not counted).

    Example (a 4 -> 3 Dense layer, float32, on chip: 12 MACs x 4.6 pJ, 12 MACs x 2 register
    reads x 1 pJ, 12 weights x 5 pJ, 7 activations x 5 pJ):

        >>> e = estimate([LayerCount("fc", params=12, reuse=1, inputs=4, outputs=3)])
        >>> [round(v, 6) for v in (e.compute_pj, e.register_pj, e.weights_pj, e.activations_pj, e.total_pj)]
        [55.2, 24.0, 60.0, 35.0, 174.2]
        >>> e.weights_in, e.macs
        ('SRAM', 12)
    """
    costs = EnergyCosts() if costs is None else costs
    if not isinstance(costs, EnergyCosts):
        raise TypeError(f"costs: expected an EnergyCosts or None, got {type(costs).__name__}.")
    dtype = check_dtype(dtype, "dtype")
    activation_dtype = check_dtype(activation_dtype or dtype, "activation_dtype")
    compute_dtype = check_dtype(compute_dtype or dtype, "compute_dtype")
    for i, layer in enumerate(layers):
        if not isinstance(layer, LayerCount):
            raise TypeError(f"layers[{i}]: expected a LayerCount, got {type(layer).__name__}.")
    w, a, c = DTYPE_BYTES[dtype], DTYPE_BYTES[activation_dtype], DTYPE_BYTES[compute_dtype]
    index_bytes = costs.index_bits / 8

    def stored_sparse(layer) -> bool:
        if layer.sparse is not None:
            return layer.sparse
        return layer.kept < layer.params and layer.kept * w + layer.indices * index_bytes < layer.params * w

    sparse = [stored_sparse(layer) for layer in layers]
    read = [(layer.kept, layer.indices) if s else (layer.params, 0) for layer, s in zip(layers, sparse)]
    stored_bytes = sum(n * w + i * index_bytes for n, i in read)
    weights_in = "SRAM" if stored_bytes <= costs.on_chip_bytes else "DRAM"
    activations_in = "SRAM" if costs.activations_on_chip else "DRAM"
    e_weights, e_act = costs.access_pj(weights_in), costs.access_pj(activations_in)
    mac = costs.mac_pj(compute_dtype)
    rows = []
    for layer, s, (n, i) in zip(layers, sparse, read):
        macs = n * layer.reuse
        rows.append(LayerEnergy(
            name=layer.name, stored=layer.pattern if s else "dense", macs=macs, weight_bytes=n * w + i * index_bytes,
            compute_pj=macs * mac,
            register_pj=macs * costs.register_reads_per_mac * costs.register_pj * c / 4,
            weights_pj=n * w / 4 * e_weights,
            index_pj=i * index_bytes / 4 * e_weights + i * costs.int32_add_pj,
            activations_pj=(layer.inputs + layer.outputs) * a / 4 * e_act))
    return EnergyEstimate(tuple(rows), dtype, activation_dtype, compute_dtype, weights_in, activations_in, costs,
                          tuple(notes))
