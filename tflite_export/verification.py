"""Parity of a .tflite candidate with Keras (and with its dense twin) under every op resolver.

Errors are relative: ``|tflite - reference| / max|keras output|``, the scale taken over all
verification samples and outputs; per sample the worst element of any output counts.  The
maximum over all samples and the 99th percentile over the samples not used for calibration
(:mod:`tflite_export.samples`) are reported; the ``(vs_keras, vs_dense_twin)`` tolerances
(:data:`tflite_export.TOLERANCES`) bound the maximum, except for int8 vs Keras, where they
bound the 99th percentile (:data:`tflite_export.KERAS_BOUND`).  A maximum far above the 99th
percentile means a few inputs are far off (e.g. int8 activations outside the calibrated ranges).
"""

from __future__ import annotations

import numpy as np

from . import _runtime
from .reports import ExportError, VerifyResult

BATCH = 64  # samples per invoke after the primary (one-at-a-time) samples


def verify(label, model_bytes, vset, reference, twin_outs, tols):
    """Runs ``model_bytes`` under every resolver; returns ``(results, outputs per resolver)``.

    ``vset``: the :class:`~tflite_export.samples.VerificationSet`; ``reference``: the Keras
    outputs on its inputs; ``twin_outs``: the dense twin's outputs per resolver (``None`` when
    ``model_bytes`` is the twin); ``tols``: ``(vs_keras, vs_dense_twin[, "max" | "p99"])``,
    the last naming the vs-Keras statistic that is bounded (:data:`tflite_export.KERAS_BOUND`).
    """
    scale = max(max(float(np.abs(v).max()) for v in reference.values()), 1e-12)
    results, outs = [], {}
    for resolver in _runtime.RESOLVERS:
        out, error = _run(model_bytes, vset, reference, resolver)
        outs[resolver] = out
        if out is None:
            results.append(VerifyResult(label, resolver, None, None, tols[0], None, tols[1], False,
                                        error, samples=vset.total))
            continue
        per_sample = sample_errors(out, reference)
        abs_k, rel_k = float(per_sample.max()), float(per_sample.max()) / scale
        p99_k = float(np.percentile(per_sample[~vset.calibration], 99)) / scale
        rel_t = None
        twin = (twin_outs or {}).get(resolver)
        if twin is not None:
            rel_t = float(sample_errors(out, twin).max()) / scale
        bounded = p99_k if bound_on(tols) == "p99" else rel_k
        ok = bounded <= tols[0] and (rel_t is None or rel_t <= tols[1])  # False for NaN
        if np.isnan(rel_k) or (rel_t is not None and np.isnan(rel_t)):
            error = "NaN/Inf in the outputs"
        elif not ok:
            error = "outside tolerance"
        results.append(VerifyResult(label, resolver, abs_k, rel_k, tols[0], rel_t, tols[1], ok,
                                    error, p99_rel_err_keras=p99_k, samples=vset.total,
                                    bound_on=bound_on(tols)))
    return results, outs


def bound_on(tols) -> str:
    """Which statistic ``tols[0]`` bounds: ``tols[2]`` if given (:data:`KERAS_BOUND`), else the
    maximum."""
    return tols[2] if len(tols) > 2 else "max"


def _run(model_bytes, vset, reference, resolver):
    """``(outputs keyed like reference, None)``, or ``(None, error)`` if LiteRT failed."""
    try:
        out = _runtime.run_samples(model_bytes, vset.inputs, resolver, unbatched=vset.primary,
                                   batch=BATCH)
        return align_outputs(out, reference), None
    except ExportError:
        raise
    except Exception as e:  # pylint: disable=broad-except
        msg = " ".join(str(e).split())
        return None, f"{type(e).__name__}: {msg}"


def align_outputs(tfl: dict, reference: dict) -> dict:
    """The TFLite outputs keyed like the Keras ones: same names; or one output each; or the
    signature's ``output_0``, ``output_1``, ... (a Keras 3 model's) in the Keras output order."""
    if set(tfl) == set(reference):
        return tfl
    if len(tfl) == len(reference) == 1:
        return {next(iter(reference)): next(iter(tfl.values()))}
    positional = [f"output_{i}" for i in range(len(reference))]
    if set(tfl) == set(positional):
        return {name: tfl[key] for name, key in zip(reference, positional)}
    raise ExportError(f"cannot match TFLite outputs {sorted(tfl)} with Keras outputs "
                      f"{sorted(reference)}")


def sample_errors(a: dict, b: dict) -> np.ndarray:
    """Per sample, the largest ``|a - b|`` over every element of every output (NaN where an
    output is not finite)."""
    worst = None
    for k in b:
        x = np.asarray(a[k], np.float64)
        y = np.asarray(b[k], np.float64)
        if x.shape != y.shape:
            raise ExportError(f"output {k!r}: TFLite shape {x.shape} != reference shape {y.shape}")
        d = np.abs(x - y).reshape(len(x), -1)
        e = d.max(axis=1) if d.shape[1] else np.zeros(len(x))
        e[~np.isfinite(d).all(axis=1)] = np.nan
        worst = e if worst is None else np.maximum(worst, e)  # NaN propagates
    return worst
