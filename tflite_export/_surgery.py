"""Edits of a parsed TFLite model (``ModelT``, see :mod:`tflite_export._flatbuf`): a sparse
constant stored dense again, a DENSIFY op inserted, unused tensors / buffers / op codes dropped,
-0.0 rewritten as +0.0, and the ``min_runtime_version`` metadata kept in step.
"""

from __future__ import annotations

import numpy as np

from ._flatbuf import (FLOAT16, FLOAT32, ints, metadata_buffer, min_runtime_version, np_dtype, op_name,
                       stored_values, tensor_name)

DENSIFY_MIN_RUNTIME = "2.2.0"  # tensorflow/lite/tools/versioning/runtime_version.cc: DENSIFY v1


def densify_in_place(model, subgraph_index: int, tensor_index: int, dense: np.ndarray) -> None:
    """Replaces sparse constant tensor ``tensor_index`` by the dense array ``dense``.

    DENSIFY ops fed by that tensor are removed and their consumers read the constant directly.
    Call :func:`compact` afterwards to drop what became unused.
    """
    sg = model.subgraphs[subgraph_index]
    tensor = sg.tensors[tensor_index]
    target_dtype = np_dtype(tensor.type)
    data = np.ascontiguousarray(dense.astype(target_dtype, copy=False)).reshape(-1)
    buf = type(model.buffers[0])()
    buf.data = np.frombuffer(data.tobytes(), np.uint8).copy()
    model.buffers.append(buf)
    tensor.buffer = len(model.buffers) - 1
    tensor.sparsity = None
    keep = []
    renames = {}
    for op in sg.operators:
        if op_name(model, op) == "DENSIFY" and ints(op.inputs)[:1] == [tensor_index]:
            renames[int(op.outputs[0])] = tensor_index
            continue
        keep.append(op)
    sg.operators = keep
    if renames:
        for op in sg.operators:
            op.inputs = [renames.get(t, t) for t in ints(op.inputs)]
        sg.outputs = [renames.get(t, t) for t in ints(sg.outputs)]
        for sig in model.signatureDefs or []:
            if sig.subgraphIndex == subgraph_index:
                for tm in sig.outputs or []:
                    tm.tensorIndex = renames.get(int(tm.tensorIndex), int(tm.tensorIndex))


def _densify_opcode(model) -> int:
    from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel

    for i, code in enumerate(model.operatorCodes):
        if max(int(code.builtinCode), int(code.deprecatedBuiltinCode)) == schema.BuiltinOperator.DENSIFY:
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = schema.BuiltinOperator.DENSIFY
    code.deprecatedBuiltinCode = schema.BuiltinOperator.DENSIFY
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def insert_densify(model, subgraph_index: int, tensor_index: int, keep_direct=("FULLY_CONNECTED",)) -> int:
    """Puts a DENSIFY op between sparse constant ``tensor_index`` and the ops that cannot read it.

    Consumers whose op name is in ``keep_direct`` (or that already are DENSIFY) keep reading the
    sparse tensor; the others read the new DENSIFY output.  Returns how many ops were rewired.
    """
    from tensorflow.lite.python import schema_py_generated as schema  # pylint: disable=import-outside-toplevel

    sg = model.subgraphs[subgraph_index]
    src = sg.tensors[tensor_index]
    users = [i for i, op in enumerate(sg.operators)
             if tensor_index in ints(op.inputs)
             and op_name(model, op) not in tuple(keep_direct) + ("DENSIFY",)]
    if not users:
        return 0
    out = schema.TensorT()
    out.shape = list(src.shape)
    out.shapeSignature = None
    out.type = src.type
    out.buffer = 0
    out.name = (tensor_name(src) + "/densified").encode()
    out.quantization = src.quantization
    sg.tensors.append(out)
    out_index = len(sg.tensors) - 1
    op = schema.OperatorT()
    op.opcodeIndex = _densify_opcode(model)
    op.inputs = [tensor_index]
    op.outputs = [out_index]
    op.builtinOptionsType = schema.BuiltinOptions.DensifyOptions
    op.builtinOptions = schema.DensifyOptionsT()
    for i in users:
        consumer = sg.operators[i]
        consumer.inputs = [out_index if t == tensor_index else t for t in ints(consumer.inputs)]
    sg.operators.insert(users[0], op)
    ensure_min_runtime_version(model, DENSIFY_MIN_RUNTIME)
    return len(users)


def _version_tuple(text: str) -> tuple:
    parts = []
    for p in text.split("."):
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def ensure_min_runtime_version(model, version: str) -> bool:
    """Raises the model's ``min_runtime_version`` metadata to at least ``version``.

    The converter records the oldest TFLite runtime that has every op version the model uses;
    ops inserted afterwards (DENSIFY needs 2.2.0) must be reflected there.  Returns whether the
    metadata was changed.
    """
    buf = metadata_buffer(model, "min_runtime_version")
    current = min_runtime_version(model)
    if buf is None or (current and _version_tuple(current) >= _version_tuple(version)):
        return False
    raw = b"" if buf.data is None else np.asarray(buf.data, np.uint8).tobytes()
    encoded = version.encode("ascii")
    padded = encoded + b"\0" * max(16 - len(encoded), len(raw) - len(encoded), 0)
    buf.data = np.frombuffer(padded, np.uint8).copy()
    return True


def compact(model) -> None:
    """Drops unreferenced tensors, empties unreferenced buffers and drops unused op codes."""
    for sg_index, sg in enumerate(model.subgraphs):
        sigs = [sig for sig in (model.signatureDefs or []) if sig.subgraphIndex == sg_index]
        used = set(ints(sg.inputs)) | set(ints(sg.outputs))
        for op in sg.operators or []:
            for field in (op.inputs, op.outputs, op.intermediates):
                used.update(t for t in ints(field) if t >= 0)
        for sig in sigs:
            used.update(int(tm.tensorIndex) for tm in (sig.inputs or []) + (sig.outputs or []))
        keep = [i for i in range(len(sg.tensors)) if i in used]
        if len(keep) == len(sg.tensors):
            continue
        old_to_new = {old: new for new, old in enumerate(keep)}
        remap = lambda seq: [old_to_new[t] if t >= 0 else t for t in ints(seq)]  # noqa: E731
        sg.tensors = [sg.tensors[i] for i in keep]
        sg.inputs = remap(sg.inputs)
        sg.outputs = remap(sg.outputs)
        for op in sg.operators or []:
            op.inputs = remap(op.inputs)
            op.outputs = remap(op.outputs)
            if op.intermediates is not None:
                op.intermediates = remap(op.intermediates)
        for sig in sigs:
            for tm in (sig.inputs or []) + (sig.outputs or []):
                tm.tensorIndex = old_to_new[int(tm.tensorIndex)]
    referenced = {0}
    for sg in model.subgraphs:
        referenced.update(int(t.buffer) for t in sg.tensors)
    referenced.update(int(m.buffer) for m in (model.metadata or []))
    for i, buf in enumerate(model.buffers):
        if i not in referenced:
            buf.data = None
    used_codes = sorted({int(op.opcodeIndex) for sg in model.subgraphs for op in sg.operators or []})
    if len(used_codes) != len(model.operatorCodes):
        code_map = {old: new for new, old in enumerate(used_codes)}
        model.operatorCodes = [model.operatorCodes[i] for i in used_codes]
        for sg in model.subgraphs:
            for op in sg.operators or []:
                op.opcodeIndex = code_map[int(op.opcodeIndex)]


def canonicalize_negative_zeros(model) -> int:
    """Rewrites every -0.0 stored in a float32/float16 constant buffer as +0.0; returns the count."""
    count = 0
    seen = set()
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.type not in (FLOAT32, FLOAT16) or t.buffer in seen:
                continue
            seen.add(t.buffer)
            values = stored_values(model, t)
            if values is None:
                continue
            neg = (values == 0) & np.signbit(values)
            n = int(neg.sum())
            if n:
                fixed = values.copy()
                fixed[neg] = 0
                model.buffers[t.buffer].data = np.frombuffer(fixed.tobytes(), np.uint8).copy()
                count += n
    return count
