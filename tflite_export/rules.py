"""The known-issue rules: sparse weights that TF 2.21 / LiteRT 2.x get wrong are stored dense.

:func:`apply_rules` checks every weight the converter sparse-encoded against
:data:`KNOWN_ISSUES`, records a :class:`~tflite_export.TensorDecision` for each and rewrites the
offending ones in the flatbuffer (dense, or behind a DENSIFY op: :data:`RULE_ACTIONS`).
"""

from __future__ import annotations

import numpy as np

from . import _flatbuf as fb
from . import _surgery
from .pairing import layer_for, pair_sparse_tensors
from .reports import TensorDecision

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


def known_issue_rules_enabled() -> bool:
    """Whether the KNOWN_ISSUES rules run (tests turn them off to show verification catches
    the same cases on its own)."""
    return True


def has_hybrid_ops(model) -> bool:
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


def check_sparse_tensor(model, g, index, dense_twin_value, hybrid_model=False):
    """Returns ``(rule, reason)`` for a sparse weight (see KNOWN_ISSUES), or ``(None, None)``.

    ``hybrid_model``: the model has dynamic-range (float x int8) ops, see :func:`has_hybrid_ops`.
    """
    sg = model.subgraphs[g]
    t = sg.tensors[index]
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
    for c in fb.Graph.of(sg).consumers.get(index, []):
        name = fb.op_name(model, sg.operators[c])
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


def _decide(sparse_model, dense_model, kernels):
    """Returns ``(decisions, unmatched)``: ``(subgraph, tensor, dense value, TensorDecision)``
    per sparse weight paired with the twin, and the names of the weights that could not be."""
    pairs = pair_sparse_tensors(sparse_model, dense_model)
    hybrid = has_hybrid_ops(dense_model)
    decisions, unmatched = [], []
    for g, sg in enumerate(sparse_model.subgraphs):
        for i, t in enumerate(sg.tensors):
            if not fb.is_sparse(t):
                continue
            if (g, i) not in pairs:
                unmatched.append(fb.tensor_name(t))
                continue
            td = dense_model.subgraphs[g].tensors[pairs[(g, i)]]
            dense_value = fb.tensor_array(dense_model, td)
            rule, reason = (check_sparse_tensor(sparse_model, g, i, dense_value, hybrid)
                            if known_issue_rules_enabled() else (None, None))
            zeros = fb.zero_mask(dense_model, td, dense_value)
            decisions.append((g, i, dense_value, TensorDecision(
                tensor=fb.tensor_name(t), layer=layer_for(zeros, kernels),
                shape=tuple(int(s) for s in t.shape), dtype=fb.type_name(t.type),
                zero_fraction=float(zeros.mean()),
                converter_encoding=fb.encoding_name(t),
                final_encoding=_final_encoding(t, rule), rule=rule, reason=reason)))
    return decisions, unmatched


def apply_rules(sparse_bytes, dense_bytes, kernels, report):
    """Stores offending sparse weights dense; returns the candidate bytes (None = use the twin).

    ``kernels``: the Keras kernels' zero masks (:func:`tflite_export.keras_side.kernel_zero_masks`),
    to name the layer of each weight.  Fills ``report.tensors``, ``.fallbacks`` and ``.notes``.
    """
    sparse_model = fb.load(sparse_bytes)
    dense_model = fb.load(dense_bytes)
    decisions, unmatched = _decide(sparse_model, dense_model, kernels)
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
