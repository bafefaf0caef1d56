"""Which dense-twin tensor, and which Keras layer, a sparse-encoded weight corresponds to."""

from __future__ import annotations

import numpy as np

from . import _flatbuf as fb


def pair_sparse_tensors(sparse_model, dense_model) -> dict:
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


def layer_for(zero_mask: np.ndarray, kernels) -> str | None:
    """Best-effort Keras layer name of a TFLite weight, by shape and zero pattern.

    ``kernels``: ``(layer name, kernel == 0 in TFLite layout)`` pairs
    (:func:`tflite_export.keras_side.kernel_zero_masks`).  ``None`` when no kernel, or more than
    one equally good kernel, matches.
    """
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
