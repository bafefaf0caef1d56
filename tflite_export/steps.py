"""One quantization of an export, step by step (:func:`tflite_export.export` runs it once, or once
per option for ``quantization="smallest"``, :mod:`~tflite_export.options`).

:func:`prepare`: convert the dense twin, sparse-encode it and apply the known-issue rules
(:mod:`~tflite_export.rules`), giving the candidate's bytes and size before any verification.
:func:`finish`: verify the twin and the candidate under both resolvers and pick the bytes to
write (the candidate, or the twin if the candidate failed or is larger), or raise
:class:`ExportError` when the twin itself failed.
"""

from __future__ import annotations

import dataclasses

from . import arguments, blocks, conversion, keras_side, rules, verification
from .inspection import gzip_size
from .reports import ExportError, ExportReport, _num


@dataclasses.dataclass
class Job:
    """What every quantization of one export shares: the (stripped, canonical) model, the
    arguments and the verification inputs (:mod:`~tflite_export.samples`)."""

    model: object
    path: str
    sparse: bool
    block: object
    tolerance: object  # the tolerance= argument (None: TOLERANCES)
    calibration: dict | None
    vset: object
    stripped: bool = False
    negative_zeros_fixed: int = 0
    keras: str = "tf_keras"  # ExportReport.keras
    notes: list = dataclasses.field(default_factory=list)  # added to every report
    #: the Keras outputs on the verification inputs: computed from ``model`` on first use, or
    #: given (a Keras 3 JAX / PyTorch model's own outputs, :mod:`~tflite_export.rebuild`)
    _reference: dict | None = None
    _reference_checked: bool = False

    def new_report(self, quantization: str) -> ExportReport:
        """An empty report for ``quantization`` (raises ``ValueError`` for a ``block=`` the
        masks do not have)."""
        report = ExportReport(path=self.path, quantization=quantization,
                              sparse_requested=self.sparse, block=self.block,
                              tolerances=arguments.check_tolerances(self.tolerance, quantization))
        report.stripped, report.negative_zeros_fixed = self.stripped, self.negative_zeros_fixed
        report.keras = self.keras
        report.notes.extend(self.notes)
        vset = self.vset
        report.verify_samples, report.verify_source = vset.primary, vset.source
        report.verify_total, report.verify_parts = vset.total, vset.parts
        report.verify_calibration = int(vset.calibration.sum())
        report.layers = blocks.analyse_layers(self.model)
        if self.block is not None:
            blocks.check_blocks(report, self.block, quantization)
        return report

    def reference(self, report) -> dict:
        """The Keras outputs on the verification inputs (computed once, or given); refused if
        they hold NaN or inf."""
        if not self._reference_checked:
            reference = self._reference
            if reference is None:
                reference = keras_side.reference_outputs(self.model, self.vset.inputs)
            bad = keras_side.count_non_finite(reference)
            if bad:
                raise ExportError(
                    f"export refused, nothing written to {self.path!r}: the Keras model itself "
                    f"outputs {bad} non-finite values (NaN or inf) on the {self.vset.total} finite "
                    "verification inputs; check its weights (e.g. training diverged)", report)
            self._reference, self._reference_checked = reference, True
        return self._reference


@dataclasses.dataclass
class Prepared:
    """The dense twin and the sparse candidate (``None``: the twin is to be written)."""

    dense: bytes
    candidate: bytes | None

    @property
    def encoding(self) -> str:
        """What would be written if everything passes verification."""
        sparse = self.candidate is not None and len(self.candidate) <= len(self.dense)
        return "sparse" if sparse else "dense"

    @property
    def size(self) -> int:
        return len(self.candidate if self.encoding == "sparse" else self.dense)


def run(job: Job, report) -> bytes:
    """:func:`prepare` then :func:`finish`."""
    return finish(job, report, prepare(job, report))


def prepare(job: Job, report) -> Prepared:
    """Converts (ConverterError -> :class:`ExportError`), sparse-encodes and applies the rules."""
    quantization = report.quantization
    dense = conversion.convert(job.model, quantization, job.calibration, path=job.path)
    report.dense_twin_bytes = len(dense)
    report.dense_twin_gzip_bytes = gzip_size(dense)
    candidate = None
    if report.sparse_requested:
        sparse = conversion.sparsify(dense, job.model, quantization, job.calibration, path=job.path)
        candidate = rules.apply_rules(sparse, dense, keras_side.kernel_zero_masks(job.model), report)
        if report.block is not None:
            blocks.note_unexpected_encodings(report, quantization)
    return Prepared(dense, candidate)


def finish(job: Job, report, prepared: Prepared) -> bytes:
    """Verifies; returns the bytes to write, or raises :class:`ExportError` if the dense twin
    itself failed verification (then nothing can be written)."""
    reference = job.reference(report)
    twin_results, twin_outs = verification.verify("dense twin", prepared.dense, job.vset,
                                                  reference, None, tols(report))
    chosen, results = None, []
    if prepared.candidate is not None:
        chosen, results = _check_candidate(job, report, prepared, reference, twin_outs)
    report.verification = results + twin_results
    _note_tail(report)
    if chosen is not None:
        report.encoding = "sparse"
        return chosen
    bad = [r for r in twin_results if not r.passed]
    if bad:
        raise ExportError(
            "export refused, nothing written to " + repr(report.path) + ": the dense twin failed "
            "verification (" + failures(bad) + "). If this is quantization noise, pass a larger "
            "tolerance=.", report)
    report.encoding = "dense"
    return prepared.dense


def _check_candidate(job, report, prepared, reference, twin_outs):
    """Returns ``(sparse bytes, verification results)``; the bytes are ``None`` when the dense
    twin is to be written instead (the reason is in ``report.fallbacks``)."""
    candidate, dense = prepared.candidate, prepared.dense
    results, _ = verification.verify("sparse", candidate, job.vset, reference, twin_outs,
                                     tols(report))
    failed = [r for r in results if not r.passed]
    if failed:
        report.fallbacks.append(
            "sparse model failed verification (" + "; ".join(
                f"{r.resolver}: {r.error}" for r in failed) + "): writing the dense twin")
        return None, results
    if len(candidate) > len(dense):
        report.fallbacks.append(
            f"sparse model ({len(candidate)} B) is larger than its dense twin "
            f"({len(dense)} B): writing the dense twin")
        return None, results
    return candidate, results


def failures(rows) -> str:
    """The failed verification rows in one line."""
    return "; ".join(
        f"{r.resolver}: {r.error}, rel err vs keras max {r.rel_err_keras:.4g}, p99 "
        f"{_num(r.p99_rel_err_keras)} on {r.samples} samples (tol {r.tol_keras} on the "
        f"{r.bound_on})" if r.rel_err_keras is not None else f"{r.resolver}: {r.error}"
        for r in rows)


def tols(report) -> tuple:
    """``(vs_keras, vs_dense_twin, bounded statistic)`` for :func:`verification.verify`."""
    return tuple(report.tolerances) + (arguments.KERAS_BOUND[report.quantization],)


def _note_tail(report) -> None:
    """A note when the bound is on the p99 and some samples are beyond the tolerance."""
    rows = [v for v in report.verification if v.bound_on == "p99" and v.passed
            and v.rel_err_keras is not None and v.rel_err_keras > v.tol_keras]
    if rows:
        worst = max(rows, key=lambda v: v.rel_err_keras)
        report.notes.append(
            f"{report.quantization}: a few inputs are far off (max rel err {worst.rel_err_keras:.3g}"
            f" > tol {worst.tol_keras}, p99 {_num(worst.p99_rel_err_keras)}): their activations "
            "leave the ranges calibrated on representative_data; calibrate on more varied samples "
            "if such inputs matter")
