"""tflite_export: pruned tf_keras model -> verified sparse .tflite, with size / latency / RAM reports.

Public API::

    report = tflite_export.export(model, "m.tflite", quantization="none", block="auto")
    print(report)                                   # ExportReport: encodings, fallbacks, parity, sizes
    print(tflite_export.inspect("m.tflite"))        # InspectReport: per-tensor encodings, ops, sizes
    print(tflite_export.benchmark("m.tflite"))      # BenchmarkReport: latency per resolver, peak RSS
    print(tflite_export.compare("dense.tflite", "m.tflite"))   # CompareReport: ratios side by side

TensorFlow is imported lazily (on the first export / inspect call), so ``import tflite_export``
is cheap.
"""

import os as _os

_os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

from .benchmarking import BenchmarkReport, BenchmarkRow, CompareReport, benchmark, compare  # noqa: E402
from .exporter import (  # noqa: E402
    KNOWN_ISSUES,
    QUANTIZATIONS,
    TOLERANCES,
    ExportError,
    ExportReport,
    LayerInfo,
    TensorDecision,
    VerifyResult,
    export,
)
from .inspection import InspectReport, TensorInfo, inspect  # noqa: E402

__all__ = [
    "export", "inspect", "benchmark", "compare",
    "ExportReport", "ExportError", "InspectReport", "BenchmarkReport", "BenchmarkRow", "CompareReport",
    "TensorInfo", "TensorDecision", "VerifyResult", "LayerInfo",
    "QUANTIZATIONS", "TOLERANCES", "KNOWN_ISSUES",
]
