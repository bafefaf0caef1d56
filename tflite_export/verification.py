"""Parity of a .tflite candidate with Keras (and with its dense twin) under every op resolver.

Errors are relative: ``max|tflite - reference| / max|keras output|`` over all verification
samples and outputs, compared with the ``(vs_keras, vs_dense_twin)`` tolerances
(:data:`tflite_export.TOLERANCES`).
"""

from __future__ import annotations

import numpy as np

from . import _runtime
from .reports import ExportError, VerifyResult


def verify(label, model_bytes, inputs, reference, twin_outs, tols):
    """Runs ``model_bytes`` under every resolver; returns ``(results, outputs per resolver)``.

    ``reference``: the Keras outputs on ``inputs``; ``twin_outs``: the dense twin's outputs per
    resolver (``None`` when ``model_bytes`` is the twin); ``tols``: ``(vs_keras, vs_dense_twin)``.
    """
    scale = max(max(float(np.abs(v).max()) for v in reference.values()), 1e-12)
    results, outs = [], {}
    for resolver in _runtime.RESOLVERS:
        out, error = _run(model_bytes, inputs, reference, resolver)
        outs[resolver] = out
        if out is None:
            results.append(VerifyResult(label, resolver, None, None, tols[0], None, tols[1], False, error))
            continue
        abs_k, rel_k = _rel_err(out, reference, scale)
        rel_t = None
        twin = (twin_outs or {}).get(resolver)
        if twin is not None:
            rel_t = _rel_err(out, twin, scale)[1]
        ok = rel_k <= tols[0] and (rel_t is None or rel_t <= tols[1])  # False for NaN
        if np.isnan(rel_k):
            error = "NaN/Inf in the outputs"
        elif not ok:
            error = "outside tolerance"
        results.append(VerifyResult(label, resolver, abs_k, rel_k, tols[0], rel_t, tols[1], ok, error))
    return results, outs


def _run(model_bytes, inputs, reference, resolver):
    """``(outputs keyed like reference, None)``, or ``(None, error)`` if LiteRT failed."""
    try:
        return _align_outputs(_runtime.run_samples(model_bytes, inputs, resolver), reference), None
    except ExportError:
        raise
    except Exception as e:  # pylint: disable=broad-except
        msg = " ".join(str(e).split())
        return None, f"{type(e).__name__}: {msg}"


def _align_outputs(tfl: dict, reference: dict) -> dict:
    if set(tfl) == set(reference):
        return tfl
    if len(tfl) == len(reference) == 1:
        return {next(iter(reference)): next(iter(tfl.values()))}
    raise ExportError(f"cannot match TFLite outputs {sorted(tfl)} with Keras outputs "
                      f"{sorted(reference)}")


def _rel_err(a: dict, b: dict, scale: float) -> tuple[float, float]:
    """``(max abs error, max abs error / scale)`` of ``a`` against ``b``; NaN if not finite."""
    worst = 0.0
    for k in b:
        x = np.asarray(a[k], np.float64)
        y = np.asarray(b[k], np.float64)
        if x.shape != y.shape:
            raise ExportError(f"output {k!r}: TFLite shape {x.shape} != reference shape {y.shape}")
        d = np.abs(x - y)
        if not np.all(np.isfinite(d)):
            return float("nan"), float("nan")
        worst = max(worst, float(d.max()) if d.size else 0.0)
    return worst, worst / scale
