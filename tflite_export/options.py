"""Trying several quantizations: ``quantization="smallest"``, and the smaller verified option a
dense fallback names.

Every option is converted and rule-checked first (cheap); then they are verified smallest
first, and an option that cannot beat the best verified file (or the file already chosen) is
not verified at all.  Each option becomes a :class:`~tflite_export.Candidate` in
``ExportReport.candidates``: its size, whether it was verified, and why it was not kept.
"""

from __future__ import annotations

from tfprune.table import human_bytes

from . import steps
from .reports import Candidate, ExportError

#: The options ``quantization="smallest"`` tries (int8 only with ``representative_data``).
SEARCH = ("none", "float16", "dynamic", "int8")
NEEDS_DATA = "not tried: int8 needs representative_data (calibration samples)"


def smallest(job: steps.Job):
    """Returns ``(report, bytes)`` of the smallest option that passes verification; raises
    :class:`ExportError` (with every option's reason) when none does."""
    candidates = {q: Candidate(q) for q in SEARCH}
    tried = _tried(job, candidates)
    best, reports = _search(job, tried, candidates, limit=None)
    if best is None:
        report = reports[-1] if reports else job.new_report(tried[0])
        report.quantization_requested, report.candidates = "smallest", list(candidates.values())
        raise ExportError(
            f"export refused, nothing written to {job.path!r}: no quantization passed "
            "verification (" + "; ".join(f"{c.quantization}: {c.reason}"
                                         for c in candidates.values()) + ")", report)
    report, data = best
    candidates[report.quantization].kept = True
    candidates[report.quantization].reason = "kept: the smallest verified file"
    report.quantization_requested, report.candidates = "smallest", list(candidates.values())
    return report, data


def suggest(job: steps.Job, report, written: int) -> None:
    """After a dense fallback: tries the other options and lists them in ``report.candidates``
    (the smallest verified one smaller than the written file is named by
    ``report.fallback_line()``).  Nothing changes in what is written."""
    candidates = {q: Candidate(q) for q in SEARCH}
    mine = candidates[report.quantization]
    mine.encoding, mine.size_bytes = report.encoding, written
    mine.verified, mine.kept, mine.reason = True, True, "written (the requested quantization)"
    tried = [q for q in _tried(job, candidates) if q != report.quantization]
    _search(job, tried, candidates, limit=(written, f"the written {report.quantization} file"))
    report.candidates = list(candidates.values())


def _tried(job, candidates) -> list:
    if job.calibration is None:
        candidates["int8"].reason = NEEDS_DATA
        return [q for q in SEARCH if q != "int8"]
    return list(SEARCH)


def _search(job, quantizations, candidates, limit):
    """Prepares every option, verifies them smallest first; returns ``(best, reports)``: best
    is ``(report, bytes)`` of the smallest verified option below ``limit`` (``(size, what)``)
    or ``None``."""
    prepared, reports, errors = [], [], []
    for q in quantizations:
        report = job.new_report(q)
        reports.append(report)
        try:
            prepared.append((report, steps.prepare(job, report)))
        except ExportError as e:
            if e.converter_message is None:
                raise
            errors.append(e)
            candidates[q].reason = "rejected: the converter failed: " + str(e).split(": ", 1)[-1]
    if errors and not prepared and limit is None:  # the model itself cannot be converted
        raise errors[0]
    best = None
    for report, prep in sorted(prepared, key=lambda rp: rp[1].size):
        c = candidates[report.quantization]
        c.encoding, c.size_bytes = prep.encoding, prep.size
        bound = (len(best[1]), f"{best[0].quantization}") if best else limit
        if bound is not None and prep.size >= bound[0]:
            c.reason = (f"not verified: {human_bytes(prep.size)} before verification, not "
                        f"smaller than {bound[1]} ({human_bytes(bound[0])})")
            continue
        try:
            data = steps.finish(job, report, prep)
        except ExportError as e:
            c.reason = "rejected: failed verification (" + _why(e) + ")"
            continue
        c.verified, c.encoding, c.size_bytes = True, report.encoding, len(data)
        if bound is not None and len(data) >= bound[0]:
            c.reason = (f"verified, but {human_bytes(len(data))} after falling back to its dense "
                        f"twin: not smaller than {bound[1]} ({human_bytes(bound[0])})")
            continue
        if best is not None:
            loser = candidates[best[0].quantization]
            loser.reason = f"verified, larger than {report.quantization} ({human_bytes(len(data))})"
        c.reason = "verified, smaller than " + (limit[1] if limit else "the others tried")
        best = (report, data)
    return best, reports


def _why(error: ExportError) -> str:
    report = error.report
    rows = [r for r in (report.verification if report else []) if not r.passed]
    return steps.failures(rows) if rows else str(error)
