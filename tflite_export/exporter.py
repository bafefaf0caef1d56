"""``export``: pruned Keras model -> sparse .tflite that is verified against Keras in LiteRT.

Pipeline (each step is recorded in the returned :class:`ExportReport`):

1. Strip pruning wrappers (tfprune's and TF-MOT's ``PruneLowMagnitude``) and copy the model with
   every ``-0.0`` weight rewritten as ``+0.0`` (TF-MOT masking leaves ``-0.0`` in about half of
   the zeros; they compress worse and are not what the mask means).  The caller's model is never
   modified.
2. Convert once *without* sparse encoding (with the requested quantization): the **dense twin**.
3. Sparse-encode the twin with the converter's ``EXPERIMENTAL_SPARSITY`` pass.
4. Check every sparse weight against the known-wrong combinations of TF 2.21 / LiteRT 2.x and
   store the offending ones dense (see :data:`KNOWN_ISSUES`).
5. Run the candidate and the twin under both op resolvers (default = XNNPACK, and
   ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``) on the verification inputs and compare with Keras and
   with each other (:data:`TOLERANCES`).  If the sparse candidate fails, fall back to the dense
   twin; if that fails too, raise :class:`ExportError`.
6. Never keep a sparse file that is larger than its dense twin.
7. Write the file atomically (temporary file in the same directory + ``os.replace``) only after
   verification passed.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import numpy as np

from . import _flatbuf as fb
from . import _surgery
from . import _runtime
from tfprune.table import human_bytes, table
from .inspection import gzip_size

QUANTIZATIONS = ("none", "float16", "dynamic", "int8")
BLOCKS = (None, "auto", (4, 1), (16, 1))

#: Verification tolerances per quantization, as ``(vs_keras, vs_dense_twin)``.  Both are relative
#: errors: ``max|tflite - reference| / max|keras output|`` over all verification samples and
#: outputs.  ``vs_keras`` bounds quantization noise (int8/dynamic are loose on purpose: the
#: model is quantized); ``vs_dense_twin`` compares the sparse file with the same model converted
#: without sparse encoding (same quantized weights), so it isolates what the sparse encoding did
#: and can be tight.  int8 allows a few output quantization steps there (block-sparse int8 kernels
#: round differently from dense ones).
TOLERANCES = {
    "none": (1e-4, 1e-4),
    "float16": (1e-2, 1e-3),
    "dynamic": (5e-2, 1e-2),
    "int8": (1e-1, 3e-2),
}

#: Rules applied to every sparse-encoded weight before verification.  Each one is a combination
#: reproduced on TF 2.21 / ai-edge-litert 2.3.0 that gives wrong results, no model, or no gain;
#: the weight is then stored dense (or, for float16 blocks, read through an inserted DENSIFY op:
#: RULE_ACTIONS), and the report says which rule fired for which weight.
KNOWN_ISSUES = {
    "partial_block": "block encoding dropped values: the input dim is not a multiple of the "
                     "block size and the converter silently drops the trailing partial block",
    "encoding_mismatch": "the sparse encoding does not reproduce the dense weights",
    "fp16_block_dequantize": "float16 block-sparse weight fed to DEQUANTIZE without a DENSIFY op "
                             "(converter bug: NaN outputs); a DENSIFY op is inserted",
    "unsupported_consumer": "sparse weight feeds an op that cannot read sparse tensors",
    "drq_block_xnnpack": "block-sparse FULLY_CONNECTED weight (int8 or float32) in a dynamic-range "
                         "quantized model: wrong outputs (garbage / NaN) under the default XNNPACK "
                         "delegate",
    "int8_densify_xnnpack": "int8 weight behind DENSIFY: the default XNNPACK delegate fails to "
                            "prepare the model",
    "larger_than_dense": "the sparse encoding is not smaller than the dense weight",
}
#: What each rule does to the weight: store it dense, or keep it sparse behind a DENSIFY op.
RULE_ACTIONS = {rule: "dense" for rule in KNOWN_ISSUES}
RULE_ACTIONS["fp16_block_dequantize"] = "insert DENSIFY"

DEFAULT_VERIFY_SAMPLES = 16
MAX_CALIBRATION_SAMPLES = 200
SPARSE_MIN_ZERO_FRACTION = 0.3  # the converter's threshold for sparse-encoding a weight


class ExportError(RuntimeError):
    """Export refused: nothing was written.  ``.report`` holds what was tried and measured."""

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
    verify_samples: int = 0
    verify_source: str = ""
    tolerances: tuple = ()
    layers: list = dataclasses.field(default_factory=list)
    tensors: list = dataclasses.field(default_factory=list)
    verification: list = dataclasses.field(default_factory=list)
    fallbacks: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    size_bytes: int | None = None
    gzip_bytes: int | None = None
    dense_twin_bytes: int | None = None
    dense_twin_gzip_bytes: int | None = None

    @property
    def passed(self) -> bool:
        return self.written

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
        d["size_ratio_vs_dense_twin"] = self.size_ratio
        return d

    @property
    def size_ratio(self) -> float | None:
        if self.size_bytes and self.dense_twin_bytes:
            return self.size_bytes / self.dense_twin_bytes
        return None

    def __str__(self) -> str:
        lines = [
            f"export -> {self.path}: {'WRITTEN' if self.written else 'NOT WRITTEN'}; "
            f"encoding written: {self.encoding}; quantization={self.quantization}; "
            f"sparse={self.sparse_requested}; block={self.block!r}",
            f"pruning wrappers stripped: {self.stripped}; -0.0 weights rewritten as +0.0: "
            f"{self.negative_zeros_fixed}",
        ]
        if self.size_bytes is not None:
            lines.append(
                f"size: {self.size_bytes} B ({human_bytes(self.size_bytes)}), gzip {self.gzip_bytes} B; "
                f"dense twin {self.dense_twin_bytes} B, gzip {self.dense_twin_gzip_bytes} B; "
                f"ratio {self.size_ratio:.3f}")
        elif self.dense_twin_bytes is not None:
            lines.append(f"dense twin: {self.dense_twin_bytes} B, gzip {self.dense_twin_gzip_bytes} B")
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
            lines.append(f"\nVerification on {self.verify_samples} samples ({self.verify_source}); "
                         "errors relative to max|keras output|:")
            lines.append(table(
                ["model", "resolver", "max|err| vs keras", "rel vs keras", "tol", "rel vs twin",
                 "tol", "ok", "error"],
                [(v.model, v.resolver, v.max_abs_err_keras, v.rel_err_keras, v.tol_keras,
                  v.rel_err_twin, v.tol_twin, v.passed, (v.error or "")[:60])
                 for v in self.verification]))
        if self.fallbacks:
            lines.append("\nFallbacks:")
            lines.extend(f"  - {f}" for f in self.fallbacks)
        if self.notes:
            lines.append("\nNotes:")
            lines.extend(f"  - {n}" for n in self.notes)
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Keras side


def _tf():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    return tf


def _keras():
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tf_keras  # pylint: disable=import-outside-toplevel

    return tf_keras


def _all_layers(model):
    """Every layer of a (stripped) model, descending into nested models."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def _strip(model):
    """``tfprune.strip(model)`` when the model has pruning wrappers (tfprune's subclass TF-MOT's
    ``PruneLowMagnitude``): a plain copy with masked weights exactly +0.0.  Otherwise ``model``."""
    import tfprune  # pylint: disable=import-outside-toplevel
    from tfprune import _keras  # pylint: disable=import-outside-toplevel

    if not any(_keras.is_pruning_wrapper(layer) for layer in model.layers):
        return model
    return tfprune.strip(model)


def _canonical_copy(model):
    """Returns ``(copy, n_fixed, restore)``: a copy whose float weights have -0.0 rewritten as
    +0.0, the number rewritten, and ``None``.

    A model that cannot be cloned (subclassed) is rewritten in place instead and ``restore`` holds
    its original weights, which :func:`export` puts back when it is done.
    """
    weights = model.get_weights()
    fixed, n = [], 0
    for w in weights:
        if np.issubdtype(np.asarray(w).dtype, np.floating):
            neg = (w == 0) & np.signbit(w)
            n += int(neg.sum())
            w = w + np.zeros((), w.dtype)  # -0.0 + 0.0 == +0.0; every other value unchanged
        fixed.append(w)
    try:
        clone = _keras().models.clone_model(model)
        clone.set_weights(fixed)
        return clone, n, None
    except Exception:  # pylint: disable=broad-except
        model.set_weights(fixed)
        return model, n, weights


def _kernel_tflite_layout(layer, kernel):
    kind = type(layer).__name__
    if kernel.ndim == 2:
        return kernel.T
    if kind in ("Conv2D", "Convolution2D") and kernel.ndim == 4:
        return np.transpose(kernel, (3, 0, 1, 2))
    return None


def _block_structure(kernel: np.ndarray) -> tuple[str, int]:
    """Detects (16,1)/(4,1) zero blocks along the input axis of a Dense kernel [in, out].

    A kernel is (b,1)-structured when at least 99% of its zeros lie in all-zero b x 1 blocks
    (the trailing partial block, if ``in % b != 0``, counts as a block of the rows it has).
    """
    zeros = kernel == 0
    total = int(zeros.sum())
    if total == 0:
        return "-", 0
    for b in (16, 4):
        rows = kernel.shape[0]
        pad = (-rows) % b
        padded = np.concatenate([zeros, np.ones((pad, zeros.shape[1]), bool)], axis=0)
        blocks = padded.reshape(-1, b, zeros.shape[1]).all(axis=1)
        in_blocks = int((np.repeat(blocks, b, axis=0)[:rows] & zeros).sum())
        if in_blocks >= 0.99 * total:
            return f"({b},1)", rows % b
    return "none", 0


def _analyse_layers(model) -> list:
    infos = []
    for layer in _all_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not hasattr(kernel, "numpy"):
            continue
        k = kernel.numpy()
        if not np.issubdtype(k.dtype, np.floating):
            continue
        kind = type(layer).__name__
        zf = float((k == 0).mean())
        if k.ndim == 2:
            block, partial = _block_structure(k)
        else:
            block, partial = ("-" if zf == 0 else "n/a (conv)"), 0
        infos.append(LayerInfo(layer.name, kind, tuple(int(s) for s in k.shape), zf, block, partial))
    return infos


def _kernels_for_mapping(model) -> list:
    out = []
    for layer in _all_layers(model):
        kernel = getattr(layer, "kernel", None)
        if kernel is None or not hasattr(kernel, "numpy"):
            continue
        t = _kernel_tflite_layout(layer, kernel.numpy())
        if t is not None:
            out.append((layer.name, t == 0))
    return out


# --------------------------------------------------------------------------------------------
# Arguments


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; allowed values: "
                         + ", ".join(repr(a) for a in allowed))


def _normalise_block(block):
    if block is None or (isinstance(block, str) and block == "auto"):
        return block
    if isinstance(block, (tuple, list)) and len(block) == 2 and all(
            isinstance(b, (int, np.integer)) and not isinstance(b, bool) for b in block):
        block = (int(block[0]), int(block[1]))
        if block in ((4, 1), (16, 1)):
            return block
    raise ValueError(f"block={block!r} is not supported; allowed values: "
                     + ", ".join(repr(b) for b in BLOCKS)
                     + "  (Keras layout: blocks of 4 or 16 along the Dense input axis)")


def _input_dict(model, data, argname: str) -> dict:
    """Normalises array / list / dict inputs to {input name: float array [n, ...]}."""
    names = list(model.input_names)
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"{argname}: missing inputs {missing}; the model's inputs are {names}")
        arrays = [data[n] for n in names]
    elif isinstance(data, (list, tuple)) and len(names) > 1:
        if len(data) != len(names):
            raise ValueError(f"{argname}: got {len(data)} arrays, the model has {len(names)} "
                             f"inputs {names}")
        arrays = list(data)
    else:
        if len(names) != 1:
            raise ValueError(f"{argname}: the model has {len(names)} inputs {names}; pass a list "
                             "or a dict of arrays")
        arrays = [data]
    out = {}
    n = None
    for name, arr, tensor in zip(names, arrays, model.inputs):
        try:
            arr = np.asarray(arr)
        except Exception as e:  # pylint: disable=broad-except
            raise ValueError(f"{argname}: input {name!r} is not array-like: {e}") from None
        want = tuple(tensor.shape[1:])
        if arr.ndim != len(want) + 1 or any(w is not None and w != a for w, a in zip(want, arr.shape[1:])):
            raise ValueError(f"{argname}: input {name!r} has shape {arr.shape}; expected "
                             f"(n_samples,) + {want}")
        if arr.shape[0] == 0:
            raise ValueError(f"{argname}: input {name!r} has no samples")
        if n is not None and arr.shape[0] != n:
            raise ValueError(f"{argname}: inputs have different numbers of samples")
        n = arr.shape[0]
        dtype = tensor.dtype.as_numpy_dtype if hasattr(tensor.dtype, "as_numpy_dtype") else np.float32
        out[name] = arr.astype(dtype, copy=False)
    return out


def _random_inputs(model, n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, tensor in zip(model.input_names, model.inputs):
        shape = tuple(tensor.shape[1:])
        if any(s is None for s in shape):
            raise ValueError(f"verify_with is required: input {name!r} has an unknown dimension "
                             f"{shape}, so random verification inputs cannot be drawn")
        if not tensor.dtype.is_floating:
            raise ValueError(f"verify_with is required: input {name!r} is {tensor.dtype.name}, "
                             "random verification inputs are drawn only for float inputs")
        out[name] = rng.standard_normal((n,) + shape).astype(tensor.dtype.as_numpy_dtype)
    return out


def _take(inputs: dict, n: int) -> dict:
    return {k: v[:n] for k, v in inputs.items()}


# --------------------------------------------------------------------------------------------
# Conversion


def _convert(model, quantization: str, calibration: dict | None, sparsity: bool = False) -> bytes:
    tf = _tf()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparsity else []
    if quantization != "none":
        optimizations.append(tf.lite.Optimize.DEFAULT)
    converter.optimizations = optimizations
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        names = list(calibration)
        n = len(calibration[names[0]])

        def gen():
            for i in range(n):
                yield [calibration[name][i:i + 1] for name in names]

        converter.representative_dataset = gen
    return bytes(converter.convert())


def _sparsify(dense_bytes: bytes, model, quantization, calibration) -> bytes:
    """The converter's EXPERIMENTAL_SPARSITY pass, applied to the dense twin itself.

    ``TFLiteConverter.convert`` runs this pass (``mlir_sparsify``) on the finished flatbuffer, so
    calling it on the twin gives the same file with bit-identical quantization; if that private
    function moves, convert again through the public API instead.
    """
    try:
        from tensorflow.lite.python.convert import mlir_sparsify  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover
        return _convert(model, quantization, calibration, sparsity=True)
    return bytes(mlir_sparsify(dense_bytes))


# --------------------------------------------------------------------------------------------
# Sparse-weight rules


def _pair_sparse_tensors(sparse_model, dense_model) -> dict:
    """Maps (subgraph, sparse-model tensor) -> dense-twin tensor index, for sparse tensors.

    The sparsity pass only inserts DENSIFY ops, so the other ops correspond one to one; a weight
    read through DENSIFY is paired with the twin's weight in the same input slot.
    """
    pairs = {}
    for g, (sg_s, sg_d) in enumerate(zip(sparse_model.subgraphs, dense_model.subgraphs)):
        graph = fb.Graph.of(sg_s)
        ops_s = [op for op in sg_s.operators or [] if fb.op_name(sparse_model, op) != "DENSIFY"]
        ops_d = [op for op in sg_d.operators or [] if fb.op_name(dense_model, op) != "DENSIFY"]
        names_s = [fb.op_name(sparse_model, op) for op in ops_s]
        names_d = [fb.op_name(dense_model, op) for op in ops_d]
        if names_s == names_d:
            for op_s, op_d in zip(ops_s, ops_d):
                for t_s, t_d in zip(op_s.inputs, op_d.inputs):
                    if t_s < 0 or t_d < 0:
                        continue
                    t_s = int(t_s)
                    prod = graph.producers.get(t_s)
                    if prod is not None and fb.op_name(sparse_model, sg_s.operators[prod]) == "DENSIFY":
                        t_s = int(sg_s.operators[prod].inputs[0])
                    ts, td = sg_s.tensors[t_s], sg_d.tensors[int(t_d)]
                    if fb.is_sparse(ts) and list(ts.shape) == list(td.shape) and ts.type == td.type:
                        pairs[(g, t_s)] = int(t_d)
        # anything left: unique match on (shape, dtype, quantization scales)
        for i, ts in enumerate(sg_s.tensors):
            if not fb.is_sparse(ts) or (g, i) in pairs:
                continue
            cands = [j for j, td in enumerate(sg_d.tensors)
                     if fb.buffer_bytes(dense_model, td) and list(td.shape) == list(ts.shape)
                     and td.type == ts.type and _same_quant(ts, td)
                     and j not in {v for (gg, _), v in pairs.items() if gg == g}]
            if len(cands) == 1:
                pairs[(g, i)] = cands[0]
    return pairs


def _same_quant(a, b) -> bool:
    qa, qb = a.quantization, b.quantization
    sa = None if qa is None or qa.scale is None else np.asarray(qa.scale)
    sb = None if qb is None or qb.scale is None else np.asarray(qb.scale)
    if sa is None or sb is None:
        return (sa is None or sa.size == 0) and (sb is None or sb.size == 0)
    return sa.shape == sb.shape and np.array_equal(sa, sb)


def _has_hybrid_ops(model) -> bool:
    """True when some op multiplies float activations by int8 constant weights (dynamic range)."""
    for sg in model.subgraphs:
        for op in sg.operators or []:
            ins = fb.ints(op.inputs)
            if len(ins) < 2 or min(ins[:2]) < 0:
                continue
            act, weight = sg.tensors[ins[0]], sg.tensors[ins[1]]
            if (act.type == fb.FLOAT32 and weight.type == fb.INT8
                    and fb.buffer_bytes(model, weight)):
                return True
    return False


def _check_sparse_tensor(model, g, index, dense_twin_value, hybrid_model=False):
    """Returns ``(rule, reason)`` for a sparse weight (see KNOWN_ISSUES), or ``(None, None)``.

    ``hybrid_model``: the model has dynamic-range (float x int8) ops, see :func:`_has_hybrid_ops`.
    """
    sg = model.subgraphs[g]
    t = sg.tensors[index]
    graph = fb.Graph.of(sg)
    decoded, in_range = fb.decode_sparse(model, t)
    blocks = fb.block_shape(t)
    if not in_range or not np.array_equal(decoded, dense_twin_value):
        lost = int((decoded != dense_twin_value).sum())
        if blocks is not None:
            dims = [(d, int(t.shape[d]), b) for d, b in enumerate(blocks) if b > 1]
            partial = [f"dim {d} = {n} is not a multiple of {b}" for d, n, b in dims if n % b]
            if partial:
                return "partial_block", (f"{KNOWN_ISSUES['partial_block']} ({'; '.join(partial)}; "
                                         f"{lost} weights differ)")
        return "encoding_mismatch", f"{KNOWN_ISSUES['encoding_mismatch']} ({lost} weights differ)"
    dense_bytes = dense_twin_value.size * dense_twin_value.dtype.itemsize
    sparse_bytes = len(fb.buffer_bytes(model, t)) + fb.sparsity_index_bytes(t)
    if sparse_bytes >= dense_bytes:
        return "larger_than_dense", (f"{KNOWN_ISSUES['larger_than_dense']} ({sparse_bytes} B "
                                     f"sparse vs {dense_bytes} B dense)")
    for c in graph.consumers.get(index, []):
        op = sg.operators[c]
        name = fb.op_name(model, op)
        if name == "DENSIFY":
            if t.type not in (fb.FLOAT32, fb.FLOAT16):
                return "int8_densify_xnnpack", KNOWN_ISSUES["int8_densify_xnnpack"]
            continue
        if name == "FULLY_CONNECTED" and blocks is not None:
            if hybrid_model:
                return "drq_block_xnnpack", KNOWN_ISSUES["drq_block_xnnpack"]
            continue
        if name == "DEQUANTIZE" and t.type == fb.FLOAT16 and blocks is not None:
            return "fp16_block_dequantize", KNOWN_ISSUES["fp16_block_dequantize"]
        return "unsupported_consumer", (f"{KNOWN_ISSUES['unsupported_consumer']} ("
                                        f"{fb.type_name(t.type)} {fb.encoding_name(t)} -> {name})")
    return None, None


def known_issue_rules_enabled() -> bool:
    """Whether the KNOWN_ISSUES rules run (tests turn them off to show verification catches
    the same cases on its own)."""
    return True


def _apply_rules(sparse_bytes, dense_bytes, kernels, report):
    """Stores offending sparse weights dense; returns the candidate bytes (None = use the twin)."""
    sparse_model = fb.load(sparse_bytes)
    dense_model = fb.load(dense_bytes)
    pairs = _pair_sparse_tensors(sparse_model, dense_model)
    hybrid = _has_hybrid_ops(dense_model)
    decisions = []
    unmatched = []
    for g, sg in enumerate(sparse_model.subgraphs):
        for i, t in enumerate(sg.tensors):
            if not fb.is_sparse(t):
                continue
            if (g, i) not in pairs:
                unmatched.append(fb.tensor_name(t))
                continue
            td = dense_model.subgraphs[g].tensors[pairs[(g, i)]]
            dense_value = fb.tensor_array(dense_model, td)
            rule, reason = (_check_sparse_tensor(sparse_model, g, i, dense_value, hybrid)
                            if known_issue_rules_enabled() else (None, None))
            zeros = fb.zero_mask(dense_model, td, dense_value)
            decisions.append((g, i, dense_value, TensorDecision(
                tensor=fb.tensor_name(t), layer=_layer_for(zeros, kernels),
                shape=tuple(int(s) for s in t.shape), dtype=fb.type_name(t.type),
                zero_fraction=float(zeros.mean()),
                converter_encoding=fb.encoding_name(t),
                final_encoding=_final_encoding(t, rule), rule=rule, reason=reason)))
    report.tensors = [d for *_, d in decisions]
    if unmatched:
        report.fallbacks.append(
            "sparse model: could not pair sparse weights " + ", ".join(unmatched) +
            " with the dense twin, so they cannot be checked; using the dense twin")
        return None
    for g, i, dense_value, d in decisions:
        if not d.rule:
            continue
        if RULE_ACTIONS[d.rule] == "insert DENSIFY":
            _surgery.insert_densify(sparse_model, g, i)
        else:
            _surgery.densify_in_place(sparse_model, g, i, dense_value)
        report.fallbacks.append(f"weight {d.tensor}" + (f" (layer {d.layer})" if d.layer else "")
                                + f": {d.converter_encoding} -> {d.final_encoding}: {d.reason}")
    _runtime_notes([d for *_, d in decisions if d.final_encoding != "dense"], report)
    _surgery.compact(sparse_model)
    fixed = _surgery.canonicalize_negative_zeros(sparse_model)
    if fixed:
        report.notes.append(f"{fixed} -0.0 values in the converted model rewritten as +0.0")
    if not any(fb.is_sparse(t) for sg in sparse_model.subgraphs for t in sg.tensors):
        if decisions:
            report.fallbacks.append("no sparse weight left after the checks: writing the dense twin")
        else:
            report.notes.append("no weight has >= 30% zeros: the converter encoded nothing sparse; "
                                "writing the dense twin")
        return None
    return fb.dump(sparse_model)


def _runtime_notes(kept, report) -> None:
    """Notes on how the kept sparse weights run (measured in benchmarks/results/tflite.md)."""
    if any(d.final_encoding.startswith("block") and d.dtype == "int8" for d in kept):
        report.notes.append(
            "int8 block-sparse FULLY_CONNECTED weights run in TFLite's built-in kernel even under "
            "XNNPACK (which takes no sparse weights); on x86 that was slower than dense int8 under "
            "XNNPACK: compare both files on the target device (tflite_export.compare)")
    if any(d.dtype == "float16" for d in kept):
        report.notes.append(
            "float16 sparse weights: under BUILTIN_WITHOUT_DEFAULT_DELEGATES DEQUANTIZE runs at "
            "every invoke (much slower than dense float16); XNNPACK (the default) expands them once")


def _final_encoding(tensor, rule) -> str:
    if rule is None:
        return fb.encoding_name(tensor)
    if RULE_ACTIONS[rule] == "insert DENSIFY":
        return fb.encoding_name(tensor) + " + DENSIFY"
    return "dense"


def _layer_for(zero_mask: np.ndarray, kernels) -> str | None:
    """Best-effort Keras layer name of a TFLite weight, by shape and zero pattern."""
    scores = []
    for name, kz in kernels:
        if kz.shape != zero_mask.shape:
            continue
        if not np.all(zero_mask[kz]):  # Keras zeros must stay zeros (quantization adds some)
            continue
        scores.append((float((kz == zero_mask).mean()), name))
    if not scores:
        return None
    scores.sort(reverse=True)
    if len(scores) > 1 and scores[0][0] == scores[1][0]:
        return None
    return scores[0][1]


# --------------------------------------------------------------------------------------------
# Verification


def _keras_outputs(model, inputs: dict) -> dict:
    names = list(model.input_names)
    feed = [inputs[n] for n in names]
    out = model(feed if len(feed) > 1 else feed[0], training=False)
    outs = out if isinstance(out, (list, tuple)) else [out]
    return {name: np.asarray(o) for name, o in zip(model.output_names, outs)}


def _align_outputs(tfl: dict, keras_out: dict) -> dict:
    if set(tfl) == set(keras_out):
        return tfl
    if len(tfl) == len(keras_out) == 1:
        return {next(iter(keras_out)): next(iter(tfl.values()))}
    raise ExportError(f"cannot match TFLite outputs {sorted(tfl)} with Keras outputs "
                      f"{sorted(keras_out)}")


def _rel_err(a: dict, b: dict, scale: float) -> tuple[float, float]:
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


def _run(model_bytes, inputs, keras_out, resolver):
    try:
        return _align_outputs(_runtime.run_samples(model_bytes, inputs, resolver), keras_out), None
    except ExportError:
        raise
    except Exception as e:  # pylint: disable=broad-except
        msg = " ".join(str(e).split())
        return None, f"{type(e).__name__}: {msg}"


def _verify(label, model_bytes, inputs, keras_out, twin_outs, tols):
    """Runs ``model_bytes`` under every resolver; returns (results, outputs per resolver)."""
    scale = max(max(float(np.abs(v).max()) for v in keras_out.values()), 1e-12)
    results, outs = [], {}
    for resolver in _runtime.RESOLVERS:
        out, error = _run(model_bytes, inputs, keras_out, resolver)
        outs[resolver] = out
        if out is None:
            results.append(VerifyResult(label, resolver, None, None, tols[0], None, tols[1], False, error))
            continue
        abs_k, rel_k = _rel_err(out, keras_out, scale)
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


# --------------------------------------------------------------------------------------------
# Writing


def _atomic_write(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


# --------------------------------------------------------------------------------------------
# Public entry point


def export(model, path, quantization="none", representative_data=None, sparse=True, block=None,
           verify_with=None, tolerance=None) -> ExportReport:
    """Exports a (pruned) tf_keras model to a sparse .tflite that is verified in LiteRT.

    Args:
      model: a tf_keras model; tfprune / TF-MOT pruning wrappers are stripped first (on a copy).
      path: where to write the .tflite.  Written atomically, and only if verification passed.
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

    Returns:
      :class:`ExportReport` (``print(report)``, ``report.to_dict()``).

    Raises:
      ValueError: bad arguments (the message names the argument, the value and what is allowed).
      ExportError: neither the sparse model nor its dense twin passed verification; nothing was
        written (``err.report`` has the details).

    Example::

        import tflite_export
        report = tflite_export.export(model, "lenet.tflite", block="auto")
        print(report)          # what was encoded how, fallbacks, parity, sizes
        report.to_dict()["size_ratio_vs_dense_twin"]
    """
    _check_choice("quantization", quantization, QUANTIZATIONS)
    block = _normalise_block(block)
    if not isinstance(sparse, (bool, np.bool_)):
        raise ValueError(f"sparse={sparse!r} is not supported; allowed values: True, False")
    if path is None or not str(path):
        raise ValueError("path=None is not supported; pass the output .tflite file path")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"path={path!r} is a directory; pass a file path such as "
                         f"{os.path.join(path, 'model.tflite')!r}")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"path={path!r}: directory {directory!r} does not exist")
    keras = _keras()
    if not isinstance(model, keras.Model):
        raise ValueError(f"model={type(model).__name__} is not supported; pass a tf_keras Model "
                         "(import tf_keras as keras)")
    if quantization == "int8" and representative_data is None:
        raise ValueError("quantization='int8' needs representative_data (calibration samples: an "
                         "array with samples on axis 0, e.g. 100 training inputs)")
    tols = TOLERANCES[quantization]
    if tolerance is not None:
        if isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) and tolerance > 0:
            tols = (float(tolerance), tols[1])
        elif (isinstance(tolerance, (tuple, list)) and len(tolerance) == 2
              and all(isinstance(t, (int, float)) and t > 0 for t in tolerance)):
            tols = (float(tolerance[0]), float(tolerance[1]))
        else:
            raise ValueError(f"tolerance={tolerance!r} is not supported; allowed values: None, a "
                             "positive float, or a (vs_keras, vs_dense_twin) pair of positive floats")

    report = ExportReport(path=path, quantization=quantization, sparse_requested=bool(sparse),
                          block=block, tolerances=tols)

    stripped = _strip(model)
    report.stripped = stripped is not model
    work, n_fixed, restore = _canonical_copy(stripped)
    report.negative_zeros_fixed = n_fixed
    try:
        return _export(work, path, quantization, representative_data, bool(sparse), block,
                       verify_with, tols, report)
    finally:
        if restore is not None:  # the model could not be cloned: put its weights back
            work.set_weights(restore)


def _export(model, path, quantization, representative_data, sparse, block, verify_with, tols, report):
    calibration = None
    if representative_data is not None:
        rep = _input_dict(model, representative_data, "representative_data")
        calibration = _take(rep, MAX_CALIBRATION_SAMPLES)
    if verify_with is not None:
        inputs = _input_dict(model, verify_with, "verify_with")
        report.verify_source = "verify_with"
    elif calibration is not None:
        inputs = _take(calibration, DEFAULT_VERIFY_SAMPLES)
        report.verify_source = "first samples of representative_data"
    else:
        inputs = _random_inputs(model, DEFAULT_VERIFY_SAMPLES)
        report.verify_source = "standard-normal random inputs, seed 0"
    report.verify_samples = len(next(iter(inputs.values())))

    report.layers = _analyse_layers(model)
    if block is not None:
        _check_blocks(report, block, quantization)

    keras_out = _keras_outputs(model, inputs)
    dense_bytes = _convert(model, quantization, calibration)
    report.dense_twin_bytes = len(dense_bytes)
    report.dense_twin_gzip_bytes = gzip_size(dense_bytes)
    twin_results, twin_outs = _verify("dense twin", dense_bytes, inputs, keras_out, None, tols)

    chosen = None
    results = []
    if sparse:
        sparse_bytes = _sparsify(dense_bytes, model, quantization, calibration)
        candidate = _apply_rules(sparse_bytes, dense_bytes, _kernels_for_mapping(model), report)
        if block is not None:
            _check_expected_encodings(report, quantization)
        if candidate is not None:
            results, _ = _verify("sparse", candidate, inputs, keras_out, twin_outs, tols)
            failed = [r for r in results if not r.passed]
            if failed:
                report.fallbacks.append(
                    "sparse model failed verification (" + "; ".join(
                        f"{r.resolver}: {r.error}" for r in failed) + "): writing the dense twin")
            elif len(candidate) > len(dense_bytes):
                report.fallbacks.append(
                    f"sparse model ({len(candidate)} B) is larger than its dense twin "
                    f"({len(dense_bytes)} B): writing the dense twin")
            else:
                chosen = candidate
                report.encoding = "sparse"
    report.verification = results + twin_results
    if chosen is None:
        bad = [r for r in twin_results if not r.passed]
        if bad:
            raise ExportError(
                "export refused, nothing written to " + repr(path) + ": the dense twin failed "
                "verification (" + "; ".join(
                    f"{r.resolver}: {r.error}, rel err vs keras {r.rel_err_keras} > tol {r.tol_keras}"
                    if r.rel_err_keras is not None else f"{r.resolver}: {r.error}" for r in bad)
                + "). If this is quantization noise, pass a larger tolerance=.", report)
        chosen = dense_bytes
        report.encoding = "dense"
    _atomic_write(path, chosen)
    report.written = True
    report.size_bytes = len(chosen)
    report.gzip_bytes = gzip_size(chosen)
    return report


def _check_blocks(report, block, quantization):
    if block == "auto":
        return
    b = block[0]
    bad = []
    for info in report.layers:
        if len(info.kernel_shape) != 2 or info.zero_fraction < SPARSE_MIN_ZERO_FRACTION:
            continue
        ok = info.block == "(16,1)" or (b == 4 and info.block == "(4,1)")
        if not ok:
            bad.append(f"{info.layer} (kernel {info.kernel_shape}, {info.zero_fraction:.1%} zeros, "
                       f"structure {info.block})")
    if bad:
        raise ValueError(
            f"block={block!r}: these Dense kernels are not zero in whole {block} blocks along the "
            f"input axis (Keras layout [in, out]): {'; '.join(bad)}. Use block='auto' to export "
            "whatever structure the masks have, or prune with block-structured masks.")
    if b == 4 and quantization in ("dynamic", "int8"):
        report.notes.append(
            "block=(4, 1) with int8 weights: the int8 FULLY_CONNECTED fast path needs (16, 1) blocks; "
            "(4, 1) masks are encoded element-wise (CSR + DENSIFY), which XNNPACK cannot run")


def _check_expected_encodings(report, quantization):
    want = "block 1x4" if quantization in ("none", "float16") else "block 1x16"
    by_layer = {t.layer: t for t in report.tensors if t.layer}
    for info in report.layers:
        if len(info.kernel_shape) != 2 or info.zero_fraction < SPARSE_MIN_ZERO_FRACTION:
            continue
        expected = info.block == "(16,1)" or (want == "block 1x4" and info.block == "(4,1)")
        t = by_layer.get(info.layer)
        if expected and t is not None and t.converter_encoding != want:
            report.notes.append(f"layer {info.layer}: {info.block} mask, but the converter chose "
                                f"{t.converter_encoding} (expected {want})")
