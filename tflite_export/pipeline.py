"""``export``: pruned Keras model -> sparse .tflite that is verified against Keras in LiteRT.

Pipeline (each step is recorded in the returned :class:`ExportReport`):

1. Strip pruning wrappers (tfprune's and TF-MOT's ``PruneLowMagnitude``) and copy the model with
   every ``-0.0`` weight rewritten as ``+0.0`` (TF-MOT masking leaves ``-0.0`` in about half of
   the zeros; they compress worse and are not what the mask means).  The caller's model is never
   modified.  (:mod:`~tflite_export.keras_side`)
2. Convert once *without* sparse encoding (with the requested quantization): the **dense twin**.
3. Sparse-encode the twin with the converter's ``EXPERIMENTAL_SPARSITY`` pass.
   (:mod:`~tflite_export.conversion`)
4. Check every sparse weight against the known-wrong combinations of TF 2.21 / LiteRT 2.x and
   store the offending ones dense (see :data:`KNOWN_ISSUES`, :mod:`~tflite_export.rules`).
5. Run the candidate and the twin under both op resolvers (default = XNNPACK, and
   ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``) on the verification inputs and compare with Keras and
   with each other (:data:`TOLERANCES`, :mod:`~tflite_export.verification`).  If the sparse
   candidate fails, fall back to the dense twin; if that fails too, raise :class:`ExportError`.
6. Never keep a sparse file that is larger than its dense twin.
7. Write the file atomically (``tfprune.io``: temporary file in the same directory +
   ``os.replace``, mode 0644) only after verification passed (:mod:`~tflite_export.writing`).
"""

from __future__ import annotations

from . import arguments, blocks, conversion, keras_side, rules, samples, verification, writing
from .inspection import gzip_size
from .reports import ExportError, ExportReport, _num


def export(model, path, quantization="none", representative_data=None, sparse=True, block=None,
           verify_with=None, tolerance=None, overwrite=False) -> ExportReport:
    """Exports a (pruned) Keras model to a sparse .tflite that is verified in LiteRT.

    Args:
      model: a Keras model of the kind tfprune prunes (:func:`tfprune.keras_utils.is_keras_model`);
        tfprune / TF-MOT pruning wrappers are stripped first (on a copy).
      path: where to write the .tflite.  Written atomically (mode 0644), and only if verification
        passed.
      quantization: ``"none"`` (float32), ``"float16"`` (float16 weights), ``"dynamic"``
        (dynamic-range int8 weights, float activations) or ``"int8"`` (int8 weights and
        activations calibrated on ``representative_data``; float32 model input/output).
      representative_data: calibration samples (array with samples on axis 0; a list or a dict of
        arrays for multi-input models).  Required for ``"int8"`` (up to 200 samples are used).
      sparse: encode weights with >= 30% zeros sparse (``EXPERIMENTAL_SPARSITY``).  ``False``
        writes the dense twin.
      block: ``None``: whatever the converter does.  ``(4, 1)`` / ``(16, 1)``: check that every
        Dense kernel with >= 30% zeros is zero in whole (b, 1) blocks along its input axis (Keras
        layout [in, out], i.e. 1xb in TFLite's [out, in]) and raise ``ValueError`` if not.
        ``"auto"``: detect and report the block structure per layer.  The fast paths are 1x4 for
        float32 and 1x16 for int8 FULLY_CONNECTED weights; conv weights are always element-wise.
      verify_with: verification inputs (same forms as ``representative_data``).  Default: the
        first 16 samples of ``representative_data`` if given, else 16 standard-normal samples of
        the model's input shape drawn with seed 0.
      tolerance: override :data:`TOLERANCES` for this call: a float (vs-Keras tolerance) or a
        ``(vs_keras, vs_dense_twin)`` pair.
      overwrite: replace ``path`` even if it is an existing read-only file (a writable one is
        always replaced).

    Returns:
      :class:`ExportReport` (``print(report)``, ``report.to_dict()``).

    Raises:
      ValueError: bad arguments (the message names the argument, the value and what is allowed).
      FileExistsError: ``path`` is a read-only file and ``overwrite`` is False.
      ExportError: neither the sparse model nor its dense twin passed verification; nothing was
        written (``err.report`` has the details).

    Example::

        import tflite_export
        report = tflite_export.export(model, "lenet.tflite", block="auto")
        print(report)          # what was encoded how, fallbacks, parity, sizes
        report.to_dict()["size_ratio_vs_dense_twin"]
    """
    quantization = arguments.check_quantization(quantization)
    block = arguments.check_block(block)
    sparse = arguments.check_flag(sparse, "sparse")
    overwrite = arguments.check_flag(overwrite, "overwrite")
    path = writing.check_path(path, overwrite)
    arguments.check_model(model)
    arguments.check_calibration(quantization, representative_data)
    tols = arguments.check_tolerances(tolerance, quantization)

    report = ExportReport(path=path, quantization=quantization, sparse_requested=sparse,
                          block=block, tolerances=tols)
    stripped = keras_side.strip(model)
    report.stripped = stripped is not model
    work, n_fixed, restore = keras_side.canonical_copy(stripped)
    report.negative_zeros_fixed = n_fixed
    try:
        chosen = _choose(work, representative_data, verify_with, report)
        writing.write(path, chosen, overwrite)
    except ExportError as e:
        if e.report is None:
            e.report = report
        raise
    finally:
        if restore is not None:  # the model could not be cloned: put its weights back
            work.set_weights(restore)
    report.written = True
    report.size_bytes = len(chosen)
    report.gzip_bytes = gzip_size(chosen)
    return report


def _choose(model, representative_data, verify_with, report) -> bytes:
    """Converts, checks and verifies; returns the bytes to write (the sparse candidate or the
    dense twin), or raises :class:`ExportError` if the twin itself failed verification."""
    calibration, vset = samples.build(model, representative_data, verify_with)
    report.verify_samples, report.verify_source = vset.primary, vset.source
    report.verify_total, report.verify_parts = vset.total, vset.parts
    report.verify_calibration = int(vset.calibration.sum())
    report.layers = blocks.analyse_layers(model)
    if report.block is not None:
        blocks.check_blocks(report, report.block, report.quantization)

    dense_bytes = conversion.convert(model, report.quantization, calibration,
                                     path=report.path)
    reference = keras_side.reference_outputs(model, vset.inputs)
    bad = keras_side.count_non_finite(reference)
    if bad:
        raise ExportError(
            f"export refused, nothing written to {report.path!r}: the Keras model itself outputs "
            f"{bad} non-finite values (NaN or inf) on the {vset.total} finite verification inputs; "
            "check its weights (e.g. training diverged)", report)
    report.dense_twin_bytes = len(dense_bytes)
    report.dense_twin_gzip_bytes = gzip_size(dense_bytes)
    twin_results, twin_outs = verification.verify("dense twin", dense_bytes, vset, reference,
                                                  None, _tols(report))
    chosen, results = None, []
    if report.sparse_requested:
        chosen, results = _sparse_candidate(model, dense_bytes, calibration, vset, reference,
                                            twin_outs, report)
    report.verification = results + twin_results
    _note_tail(report)
    if chosen is not None:
        report.encoding = "sparse"
        return chosen
    bad = [r for r in twin_results if not r.passed]
    if bad:
        raise ExportError(
            "export refused, nothing written to " + repr(report.path) + ": the dense twin failed "
            "verification (" + "; ".join(
                f"{r.resolver}: {r.error}, rel err vs keras max {r.rel_err_keras:.4g}, p99 "
                f"{_num(r.p99_rel_err_keras)} on {r.samples} samples (tol {r.tol_keras} on the "
                f"{r.bound_on})"
                if r.rel_err_keras is not None else f"{r.resolver}: {r.error}" for r in bad)
            + "). If this is quantization noise, pass a larger tolerance=.", report)
    report.encoding = "dense"
    return dense_bytes


def _sparse_candidate(model, dense_bytes, calibration, vset, reference, twin_outs, report):
    """Returns ``(sparse bytes, verification results)``; the bytes are ``None`` when the dense
    twin is to be written instead (the reason is in ``report.fallbacks`` / ``.notes``)."""
    quantization = report.quantization
    sparse_bytes = conversion.sparsify(dense_bytes, model, quantization, calibration,
                                      path=report.path)
    candidate = rules.apply_rules(sparse_bytes, dense_bytes, keras_side.kernel_zero_masks(model),
                                  report)
    if report.block is not None:
        blocks.note_unexpected_encodings(report, quantization)
    if candidate is None:
        return None, []
    results, _ = verification.verify("sparse", candidate, vset, reference, twin_outs,
                                     _tols(report))
    failed = [r for r in results if not r.passed]
    if failed:
        report.fallbacks.append(
            "sparse model failed verification (" + "; ".join(
                f"{r.resolver}: {r.error}" for r in failed) + "): writing the dense twin")
        return None, results
    if len(candidate) > len(dense_bytes):
        report.fallbacks.append(
            f"sparse model ({len(candidate)} B) is larger than its dense twin "
            f"({len(dense_bytes)} B): writing the dense twin")
        return None, results
    return candidate, results


def _tols(report) -> tuple:
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
