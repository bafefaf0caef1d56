"""The records :func:`tflite_export.export` returns (or attaches to :class:`ExportError`).

:class:`ExportReport` holds one :class:`LayerInfo` per Keras kernel, one :class:`TensorDecision`
per sparse-encoded weight and one :class:`VerifyResult` per (candidate, resolver) run;
``print(report)`` renders them as tables, ``report.to_dict()`` as JSON-ready data.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfprune.table import human_bytes, table


class ExportError(RuntimeError):
    """Export refused: nothing was written.  ``.report`` holds what was tried and measured;
    ``.converter_message`` the TFLite converter's full output when the converter failed."""

    converter_message = None

    def __init__(self, message, report=None):
        super().__init__(message)
        self.report = report


@dataclasses.dataclass
class LayerInfo:
    """A Keras layer with a kernel: its sparsity and detected block structure (Keras layout)."""

    layer: str
    kind: str
    kernel_shape: tuple
    zero_fraction: float
    block: str  # "(16,1)", "(4,1)", "none", or "-" (no zeros)
    partial_block_rows: int  # input-dim remainder w.r.t. the detected block (0 = none)


@dataclasses.dataclass
class TensorDecision:
    """What happened to one weight the converter sparse-encoded."""

    tensor: str
    layer: str | None
    shape: tuple
    dtype: str
    zero_fraction: float
    converter_encoding: str
    final_encoding: str
    rule: str | None  # key of KNOWN_ISSUES, or None when kept sparse
    reason: str | None


@dataclasses.dataclass
class VerifyResult:
    """Parity of one .tflite candidate under one resolver."""

    model: str  # "sparse" or "dense twin"
    resolver: str
    max_abs_err_keras: float | None
    rel_err_keras: float | None
    tol_keras: float
    rel_err_twin: float | None
    tol_twin: float
    passed: bool
    error: str | None = None
    p99_rel_err_keras: float | None = None  # 99th percentile, samples not used for calibration
    samples: int = 0
    bound_on: str = "max"  # the statistic tol_keras bounds: "max", or "p99" (int8)


@dataclasses.dataclass
class Candidate:
    """One quantization tried by ``quantization="smallest"``, or after a dense fallback to find
    a smaller verified file (:mod:`tflite_export.options`)."""

    quantization: str
    encoding: str | None = None  # what it writes: "sparse" or "dense" (None: not converted)
    size_bytes: int | None = None  # its file size (not verified: the size it would have)
    verified: bool = False
    kept: bool = False  # the file written
    reason: str = ""


@dataclasses.dataclass
class ExportReport:
    """Everything :func:`export` did.  ``print(report)`` for a table, ``.to_dict()`` for JSON."""

    path: str
    quantization: str
    sparse_requested: bool
    block: object
    written: bool = False
    encoding: str = "dense"  # "sparse" or "dense" (what was written)
    stripped: bool = False
    negative_zeros_fixed: int = 0
    verify_samples: int = 0  # the primary samples (run one at a time) ...
    verify_source: str = ""  # ... and where they came from
    verify_total: int = 0  # all verification samples (tflite_export.samples)
    verify_parts: list = dataclasses.field(default_factory=list)  # (label, count) per part
    verify_calibration: int = 0  # how many of them int8 was calibrated on (left out of the p99)
    tolerances: tuple = ()
    layers: list = dataclasses.field(default_factory=list)
    tensors: list = dataclasses.field(default_factory=list)
    verification: list = dataclasses.field(default_factory=list)
    fallbacks: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    quantization_requested: str | None = None  # "smallest" when export chose `quantization`
    candidates: list = dataclasses.field(default_factory=list)  # Candidate per option tried
    dense_twin_bytes: int | None = None
    dense_twin_gzip_bytes: int | None = None
    #: ``"tf_keras"``, or for a Keras 3 model its backend and how it was converted (in this
    #: process on TensorFlow; rebuilt under TensorFlow in a subprocess on JAX / PyTorch)
    keras: str = "tf_keras"
    #: energy per inference of the written file (``tfprune.EnergyEstimate``, see
    #: :mod:`tflite_export.energy`); None before writing and for Keras 3 models
    energy: object = None

    @property
    def passed(self) -> bool:
        return self.written

    def fell_back(self) -> bool:
        """Whether weights the converter encoded sparse were written dense (all of them: the
        dense twin was written, or some: rules stored them dense)."""
        return bool(self.sparse_requested and self.tensors and (
            self.encoding == "dense" or any(t.final_encoding == "dense" for t in self.tensors)))

    def fallback_line(self) -> str | None:
        """One line for a dense fallback: what was written and the smallest verified option
        that is smaller (if any was found); ``None`` without a fallback."""
        if not self.fell_back() or self.size_bytes is None:
            return None
        size = human_bytes(self.size_bytes)
        if self.encoding == "dense":
            line = f"sparse encoding fell back to dense: {size}"
        else:
            dense = sorted(t.layer or t.tensor for t in self.tensors if t.final_encoding == "dense")
            line = (f"sparse encoding fell back to dense for {len(dense)} of {len(self.tensors)} "
                    f"weights ({', '.join(dense)}): {size}")
        smaller = [c for c in self.candidates if c.verified and not c.kept
                   and c.size_bytes < self.size_bytes]
        if smaller:
            c = min(smaller, key=lambda c: c.size_bytes)
            return (line + f"; {c.quantization} {c.encoding} verified: {human_bytes(c.size_bytes)} "
                    f"(quantization={c.quantization!r})")
        tried = [c.quantization for c in self.candidates if not c.kept and c.encoding]
        return line + (f"; no smaller verified option (tried {', '.join(tried)})" if tried else "")

    def fired_rules(self) -> set:
        return {t.rule for t in self.tensors if t.rule}

    def to_dict(self) -> dict:
        def conv(v):
            if dataclasses.is_dataclass(v):
                return {k: conv(x) for k, x in dataclasses.asdict(v).items()}
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            if isinstance(v, dict):
                return {k: conv(x) for k, x in v.items()}
            if isinstance(v, (np.floating, np.integer)):
                return v.item()
            return v

        d = {f.name: conv(getattr(self, f.name)) for f in dataclasses.fields(self)}
        d["energy"] = self.energy.to_dict() if self.energy is not None else None
        d["size_ratio_vs_dense_twin"] = self.size_ratio
        d["max_rel_err_keras"], d["p99_rel_err_keras"] = self.error_vs_keras()
        return d

    def _unseen(self) -> int:
        return (self.verify_total or self.verify_samples) - self.verify_calibration

    def error_vs_keras(self) -> tuple:
        """``(max, p99)`` relative error vs Keras of the model written (or, if nothing was, of
        the dense twin), worst resolver; ``(None, None)`` before verification."""
        label = "sparse" if self.encoding == "sparse" else "dense twin"
        rows = [v for v in self.verification if v.model == label and v.rel_err_keras is not None]
        if not rows:
            return None, None
        p99 = [v.p99_rel_err_keras for v in rows if v.p99_rel_err_keras is not None]
        return max(v.rel_err_keras for v in rows), (max(p99) if p99 else None)

    @property
    def size_ratio(self) -> float | None:
        if self.size_bytes and self.dense_twin_bytes:
            return self.size_bytes / self.dense_twin_bytes
        return None

    def __str__(self) -> str:
        lines = [
            f"export -> {self.path}: {'WRITTEN' if self.written else 'NOT WRITTEN'}; "
            f"encoding written: {self.encoding}; quantization={self.quantization}"
            + (f" (chosen by quantization={self.quantization_requested!r})"
               if self.quantization_requested else "")
            + f"; sparse={self.sparse_requested}; block={self.block!r}",
        ]
        if self.fallback_line():
            lines.append(self.fallback_line())
        lines.append(f"pruning wrappers stripped: {self.stripped}; -0.0 weights rewritten as "
                     f"+0.0: {self.negative_zeros_fixed}")
        if self.keras != "tf_keras":
            lines.append(f"model: {self.keras}")
        if self.size_bytes is not None:
            lines.append(
                f"size: {self.size_bytes} B ({human_bytes(self.size_bytes)}), gzip {self.gzip_bytes} B; "
                f"dense twin {self.dense_twin_bytes} B, gzip {self.dense_twin_gzip_bytes} B; "
                f"ratio {self.size_ratio:.3f}")
        elif self.dense_twin_bytes is not None:
            lines.append(f"dense twin: {self.dense_twin_bytes} B, gzip {self.dense_twin_gzip_bytes} B")
        if self.energy is not None:
            lines.append(self.energy.summary())
        worst, p99 = self.error_vs_keras()
        if worst is not None:
            lines.append(f"error vs keras ({'written file' if self.written else 'dense twin'}, "
                         f"worst resolver, relative to max|keras output|): max {worst:.3g} on "
                         f"{self.verify_total or self.verify_samples} samples, p99 {_num(p99)} on "
                         f"the {self._unseen()} not used for calibration; tolerance "
                         f"{self.tolerances[0] if self.tolerances else '-'} on the "
                         f"{self.verification[0].bound_on}")
        if self.layers:
            lines.append("\nKeras layers with kernels (Keras layout [in, out] / [h, w, in, out]):")
            lines.append(table(
                ["layer", "kind", "kernel", "zeros", "block structure", "partial rows"],
                [(l.layer, l.kind, l.kernel_shape, round(l.zero_fraction, 4), l.block,
                  l.partial_block_rows) for l in self.layers]))
        if self.tensors:
            lines.append("\nSparse-encoded weights (TFLite layout [out, in]):")
            lines.append(table(
                ["tensor", "layer", "shape", "dtype", "zeros", "converter", "written", "rule"],
                [(t.tensor if len(t.tensor) <= 40 else t.tensor[:37] + "...", t.layer, t.shape,
                  t.dtype, round(t.zero_fraction, 4), t.converter_encoding, t.final_encoding,
                  t.rule or "-") for t in self.tensors]))
        if self.verification:
            parts = " + ".join(f"{n} {label}" for label, n in self.verify_parts)
            lines.append(
                f"\nVerification on {self.verify_total or self.verify_samples} samples"
                + (f": {parts}" if parts else "") + f" (the first {self.verify_samples}, "
                f"{self.verify_source}, one at a time); errors relative to max|keras output|, "
                f"max over all samples, p99 over the {self._unseen()} not used for calibration:")
            lines.append(table(
                ["model", "resolver", "max|err| vs keras", "rel vs keras", "p99", "tol",
                 "rel vs twin", "tol", "ok", "error"],
                [(v.model, v.resolver, v.max_abs_err_keras, v.rel_err_keras, v.p99_rel_err_keras,
                  f"{v.tol_keras} ({v.bound_on})", v.rel_err_twin, v.tol_twin, v.passed,
                  (v.error or "")[:60])
                 for v in self.verification]))
        if self.candidates:
            lines.append("\nQuantizations tried (" + (
                "quantization='smallest': the smallest verified file is kept" if
                self.quantization_requested else "to find a smaller file after the dense fallback")
                + "):")
            lines.append(table(
                ["quantization", "writes", "size", "bytes", "verified", "kept", "why"],
                [(c.quantization, c.encoding or "-", human_bytes(c.size_bytes), c.size_bytes,
                  c.verified, c.kept, c.reason) for c in self.candidates]))
        if self.fallbacks:
            lines.append("\nFallbacks:")
            lines.extend(f"  - {f}" for f in self.fallbacks)
        if self.notes:
            lines.append("\nNotes:")
            lines.extend(f"  - {n}" for n in self.notes)
        return "\n".join(lines)


def _num(x) -> str:
    return "-" if x is None else f"{x:.3g}"
