"""tflite_export: pruned Keras model -> verified sparse .tflite, with size / latency / RAM reports.

Public API::

    report = tflite_export.export(model, "m.tflite", quantization="none", block="auto")
    print(report)                                   # ExportReport: encodings, fallbacks, parity, sizes
    tflite_export.export(model, "s.tflite", quantization="smallest", representative_data=x)
    print(tflite_export.inspect("m.tflite"))        # InspectReport: per-tensor encodings, ops, sizes
    print(tflite_export.benchmark("m.tflite"))      # BenchmarkReport: latency per resolver, peak RSS
    print(tflite_export.compare("dense.tflite", "m.tflite"))   # CompareReport: ratios side by side

Models: tf_keras (Keras 2) models, and Sequential / Functional Keras 3 models on every backend
(dispatch by model type, same pipeline, rules, fallbacks and report): on TensorFlow they are
converted in this process; on JAX or PyTorch they are saved to a temporary ``.keras`` file and
rebuilt under the TensorFlow backend in a subprocess, and the .tflite is verified against the
original backend's outputs (:mod:`~tflite_export.rebuild`; ``report.keras`` says which).

TensorFlow is imported lazily (on the first export / inspect call), so ``import tflite_export``
is cheap.  The package uses tfprune's public API only (``tfprune.strip``, ``tfprune.keras_utils``,
``tfprune.io``, ``tfprune.table``, ``tfprune.checks``).

Modules: :mod:`~tflite_export.pipeline` (``export``, step by step), ``arguments``, ``samples``
(the verification inputs), ``keras_side``, ``steps`` (one quantization: ``blocks``, ``conversion``,
``rules`` + ``pairing``, ``verification``), ``options`` (``quantization="smallest"``, the smaller
option a dense fallback names), ``writing``, ``reports``; ``rebuild`` + ``_rebuild_worker``
(Keras 3 on JAX / PyTorch); ``inspection``, ``benchmarking``;
``_flatbuf`` / ``_runtime`` (flatbuffer surgery, LiteRT).
"""

from .arguments import KERAS_BOUND, QUANTIZATIONS, TOLERANCES
from .benchmarking import BenchmarkReport, BenchmarkRow, CompareReport, benchmark, compare
from .inspection import InspectReport, TensorInfo, inspect
from .pipeline import export
from .reports import Candidate, ExportError, ExportReport, LayerInfo, TensorDecision, VerifyResult
from .rules import KNOWN_ISSUES

__all__ = [
    "export", "inspect", "benchmark", "compare",
    "ExportReport", "ExportError", "InspectReport", "BenchmarkReport", "BenchmarkRow", "CompareReport",
    "TensorInfo", "TensorDecision", "VerifyResult", "LayerInfo", "Candidate",
    "QUANTIZATIONS", "TOLERANCES", "KERAS_BOUND", "KNOWN_ISSUES",
]
