"""The export step of a run: the trained model to a verified sparse ``.tflite`` in ``out_dir``.

The experiment harness is the only part of tfprune that imports :mod:`tflite_export`.
"""
from __future__ import annotations

import os

TFLITE_FILE = "model.tflite"


def export_tflite(model, config, datasets, log=print) -> dict:
    """Exports ``model`` (wrappers stripped by the exporter) to ``out_dir/model.tflite`` with
    :func:`tflite_export.export` (sparse encoding, verified against Keras on 1,000 test inputs
    plus the exporter's own held-out and fresh in-range samples; int8 and ``smallest`` calibrate
    on 200 training inputs); returns its report as a dict, with ``error`` set (and nothing
    written) when no variant passed verification."""
    import tflite_export

    path = os.path.join(config.out_dir, TFLITE_FILE)
    representative = datasets.x_train[:200] if config.quantization in ("int8", "smallest") else None
    try:
        report = tflite_export.export(model, path, quantization=config.quantization,
                                      representative_data=representative, sparse=True, block="auto",
                                      verify_with=datasets.x_test[:1000])
    except tflite_export.ExportError as e:
        log(f"TFLite export failed verification, nothing written: {e}")
        out = e.report.to_dict() if getattr(e, "report", None) is not None else {}
        out["error"] = str(e)
        return out
    log("")
    log(str(report))
    return report.to_dict()
