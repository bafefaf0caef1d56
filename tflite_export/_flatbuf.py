"""TFLite flatbuffer helpers: read/write, tensor values, sparse-tensor decoding, encoding names
and the op graph (the edits live in :mod:`tflite_export._surgery`).

Everything goes through ``tensorflow.lite.tools.flatbuffer_utils`` (the object API generated from
the TFLite schema); there is no hand-written flatbuffer parser here.

Sparse tensors follow the TFLite ``SparsityParameters`` format: the tensor's dimensions, plus one
extra dimension per blocked dimension (``block_map``), are stored in ``traversal_order``; each
stored level is either DENSE (``dense_size`` entries) or SPARSE_CSR (``array_segments`` indexed by
the parent position, ``array_indices`` giving the coordinate).  The buffer holds only the stored
values, in traversal order.
"""

from __future__ import annotations

import dataclasses

import numpy as np

# TensorType enum values of the TFLite schema -> numpy dtypes (the ones weights can have).
_NP_DTYPES = {
    0: np.float32,
    1: np.float16,
    2: np.int32,
    3: np.uint8,
    4: np.int64,
    6: np.bool_,
    7: np.int16,
    9: np.int8,
    10: np.float64,
    12: np.uint64,
    15: np.uint32,
    16: np.uint16,
}
_TYPE_NAMES = {
    0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string", 6: "bool",
    7: "int16", 8: "complex64", 9: "int8", 10: "float64", 11: "complex128", 12: "uint64",
    13: "resource", 14: "variant", 15: "uint32", 16: "uint16", 17: "int4", 18: "bfloat16",
}
FLOAT32, FLOAT16, INT8 = 0, 1, 9
DIM_DENSE, DIM_SPARSE_CSR = 0, 1


def ints(seq) -> list:
    """A flatbuffer index vector (None, list or numpy array) as a list of ints."""
    return [] if seq is None else [int(t) for t in seq]


def _fbu():
    from tensorflow.lite.tools import flatbuffer_utils  # pylint: disable=import-outside-toplevel

    return flatbuffer_utils


def load(model_bytes) -> object:
    """Parses TFLite bytes into the mutable object API (``ModelT``)."""
    return _fbu().read_model_from_bytearray(bytearray(model_bytes))


def load_path(path: str) -> object:
    return _fbu().read_model(path)


def dump(model) -> bytes:
    return bytes(_fbu().convert_object_to_bytearray(model))


def op_name(model, op) -> str:
    return _fbu().opcode_to_name(model, op.opcodeIndex)


def type_name(tensor_type: int) -> str:
    return _TYPE_NAMES.get(int(tensor_type), f"type{int(tensor_type)}")


def np_dtype(tensor_type: int):
    return _NP_DTYPES.get(int(tensor_type))


def tensor_name(tensor) -> str:
    name = tensor.name
    return name.decode("utf-8", "replace") if isinstance(name, (bytes, bytearray)) else str(name)


def buffer_bytes(model, tensor) -> bytes:
    data = model.buffers[tensor.buffer].data if tensor.buffer < len(model.buffers) else None
    if data is None:
        return b""
    return np.asarray(data, dtype=np.uint8).tobytes()


def stored_values(model, tensor) -> np.ndarray | None:
    """The values in the tensor's buffer (all of them for dense, only the stored ones for sparse)."""
    dtype = np_dtype(tensor.type)
    raw = buffer_bytes(model, tensor)
    if dtype is None or not raw:
        return None
    return np.frombuffer(raw, dtype=dtype)


def _index_array(vec) -> np.ndarray:
    if vec is None or getattr(vec, "values", None) is None:
        return np.zeros((0,), np.int64)
    return np.asarray(vec.values, dtype=np.int64)


def _index_nbytes(vec) -> int:
    if vec is None or getattr(vec, "values", None) is None:
        return 0
    return int(np.asarray(vec.values).nbytes)


def sparsity_index_bytes(tensor) -> int:
    """Bytes taken by the CSR segment/index arrays of a sparse tensor (0 for dense tensors)."""
    sp = tensor.sparsity
    if sp is None or not sp.dimMetadata:
        return 0
    return sum(_index_nbytes(d.arraySegments) + _index_nbytes(d.arrayIndices) for d in sp.dimMetadata)


def is_sparse(tensor) -> bool:
    return tensor.sparsity is not None and bool(tensor.sparsity.dimMetadata)


def block_shape(tensor) -> tuple[int, ...] | None:
    """Block shape in the tensor's own dimension order (e.g. (1, 4) for a 1x4 FC weight), or None."""
    sp = tensor.sparsity
    if sp is None or sp.blockMap is None or len(sp.blockMap) == 0:
        return None
    rank = len(tensor.shape)
    shape = [1] * rank
    for i, dim in enumerate(sp.blockMap):
        shape[int(dim)] = int(sp.dimMetadata[rank + i].denseSize)
    return tuple(shape)


def encoding_name(tensor) -> str:
    """'dense', 'CSR' (element-wise) or 'block 1x4' / 'block 1x16' / 'block AxB...'."""
    if not is_sparse(tensor):
        return "dense"
    blocks = block_shape(tensor)
    if blocks is None:
        return "CSR"
    return "block " + "x".join(str(b) for b in blocks)


def decode_sparse(model, tensor) -> tuple[np.ndarray, bool]:
    """Rebuilds the dense array of a sparse constant tensor.

    Returns ``(dense, in_range)``; ``in_range`` is False when a stored value's coordinate falls
    outside the tensor's shape (those values are dropped from ``dense``).
    """
    sp = tensor.sparsity
    shape = [int(s) for s in tensor.shape]
    rank = len(shape)
    values = stored_values(model, tensor)
    if values is None:
        if np_dtype(tensor.type) is None or not is_sparse(tensor):
            raise ValueError(f"tensor {tensor_name(tensor)!r} has no constant data")
        # an all-zero weight (a fully pruned kernel) is encoded with no stored value and an
        # empty buffer; the metadata must then describe no value either (checked below)
        values = np.zeros((0,), np_dtype(tensor.type))
    order = [int(t) for t in sp.traversalOrder]
    block_map = [] if sp.blockMap is None else [int(b) for b in sp.blockMap]
    levels = sp.dimMetadata
    n_levels = len(order)
    # Walk the levels in traversal order, expanding every stored position into its children.
    pos = np.zeros((1,), np.int64)
    coords = np.zeros((1, n_levels), np.int64)
    for level, dm in enumerate(levels):
        dim = order[level]
        if dm.format == DIM_DENSE:
            size = int(dm.denseSize)
            pos = (pos[:, None] * size + np.arange(size)[None, :]).reshape(-1)
            coords = np.repeat(coords, size, axis=0)
            coords[:, dim] = np.tile(np.arange(size), coords.shape[0] // max(size, 1))
        else:
            seg = _index_array(dm.arraySegments)
            idx = _index_array(dm.arrayIndices)
            starts, ends = seg[pos], seg[pos + 1]
            counts = ends - starts
            coords = np.repeat(coords, counts, axis=0)
            # positions of the children: concatenated ranges [start, end)
            offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
            pos = np.arange(int(counts.sum())) + offsets
            coords[:, dim] = idx[pos]
    if len(values) != len(pos):
        raise ValueError(
            f"tensor {tensor_name(tensor)!r}: {len(values)} stored values but the sparsity "
            f"metadata describes {len(pos)}")
    vals = values[pos] if len(pos) else values[:0]
    full = coords[:, :rank].copy()
    for i, dim in enumerate(block_map):
        bsize = int(levels[order.index(rank + i)].denseSize)
        full[:, dim] = coords[:, dim] * bsize + coords[:, rank + i]
    ok = np.all(full < np.asarray(shape)[None, :], axis=1) if rank else np.ones(len(vals), bool)
    dense = np.zeros(shape, dtype=values.dtype)
    if ok.any():
        dense[tuple(full[ok].T)] = vals[ok]
    return dense, bool(ok.all())


def tensor_array(model, tensor) -> np.ndarray | None:
    """Dense numpy view of a constant tensor (decoding sparse ones), or None if not constant."""
    if is_sparse(tensor):
        return decode_sparse(model, tensor)[0]
    values = stored_values(model, tensor)
    if values is None:
        return None
    shape = [int(s) for s in tensor.shape]
    if int(np.prod(shape)) != values.size:
        return None
    return values.reshape(shape)


def zero_mask(model, tensor, array: np.ndarray) -> np.ndarray:
    """Where ``array`` represents a real 0: the zero point for quantized tensors, 0.0 for floats."""
    q = tensor.quantization
    zps = None if q is None or q.zeroPoint is None else np.asarray(q.zeroPoint, np.int64)
    if zps is None or zps.size == 0 or not np.issubdtype(array.dtype, np.integer):
        return array == 0
    if zps.size == 1:
        return array == zps[0]
    axis = int(q.quantizedDimension)
    bshape = [1] * array.ndim
    bshape[axis] = zps.size
    return array == zps.reshape(bshape)


@dataclasses.dataclass
class Graph:
    """Producer/consumer index of one subgraph."""

    producers: dict
    consumers: dict

    @classmethod
    def of(cls, subgraph) -> "Graph":
        producers, consumers = {}, {}
        for i, op in enumerate(subgraph.operators or []):
            for t in ints(op.outputs):
                producers[t] = i
            for t in ints(op.inputs):
                if t >= 0:
                    consumers.setdefault(t, []).append(i)
        return cls(producers, consumers)


def metadata_buffer(model, name: str):
    """The buffer of the model metadata entry ``name`` (None if absent)."""
    for md in model.metadata or []:
        md_name = md.name.decode() if isinstance(md.name, bytes) else str(md.name)
        if md_name == name:
            return model.buffers[md.buffer]
    return None


def min_runtime_version(model) -> str | None:
    """The ``min_runtime_version`` metadata string written by the converter (None if absent)."""
    buf = metadata_buffer(model, "min_runtime_version")
    if buf is None:
        return None
    raw = b"" if buf.data is None else np.asarray(buf.data, np.uint8).tobytes()
    return raw.split(b"\0", 1)[0].decode("ascii", "replace") or None


def count_negative_zeros(model) -> int:
    count = 0
    for sg in model.subgraphs:
        for t in sg.tensors:
            if t.type in (FLOAT32, FLOAT16):
                values = stored_values(model, t)
                if values is not None:
                    count += int(((values == 0) & np.signbit(values)).sum())
    return count
