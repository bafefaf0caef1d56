"""``inspect``: what is inside a .tflite file (per-tensor encodings, op histogram, sizes)."""

from __future__ import annotations

import collections
import dataclasses
import gzip
import os

import numpy as np

from . import _flatbuf as fb
from tfprune.table import human_bytes, table


@dataclasses.dataclass
class TensorInfo:
    """One constant tensor of a .tflite model.

    ``bytes`` counts the stored values plus, for sparse tensors, the CSR segment/index arrays.
    ``zero_fraction`` is the fraction of the tensor's *logical* elements that are zero (for
    quantized tensors: equal to the zero point), so a 90%-sparse weight reads 0.9 whether it is
    stored dense or sparse.  ``encoding`` is ``"dense"``, ``"CSR"`` (element-wise sparse, read via
    a DENSIFY op) or ``"block 1x4"`` / ``"block 1x16"`` (block-sparse FULLY_CONNECTED weights).
    """

    subgraph: int
    index: int
    name: str
    shape: tuple
    dtype: str
    bytes: int
    zero_fraction: float | None
    encoding: str
    consumers: tuple = ()

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        d["consumers"] = list(self.consumers)
        return d


@dataclasses.dataclass
class InspectReport:
    """Result of :func:`inspect`; ``print(report)`` gives a table, ``report.to_dict()`` a dict."""

    path: str | None
    size_bytes: int
    gzip_bytes: int
    tensors: list
    ops: dict
    negative_zeros: int
    min_runtime_version: str | None = None

    @property
    def encodings(self) -> dict:
        """Tensor name -> encoding, for the constant tensors."""
        return {t.name: t.encoding for t in self.tensors}

    def sparse_tensors(self) -> list:
        return [t for t in self.tensors if t.encoding != "dense"]

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "size_bytes": self.size_bytes,
            "gzip_bytes": self.gzip_bytes,
            "ops": dict(self.ops),
            "negative_zeros": self.negative_zeros,
            "min_runtime_version": self.min_runtime_version,
            "tensors": [t.to_dict() for t in self.tensors],
        }

    def __str__(self) -> str:
        head = (f"TFLite model {self.path or '<bytes>'}: {self.size_bytes} bytes "
                f"({human_bytes(self.size_bytes)}), gzip -9 {self.gzip_bytes} bytes "
                f"({human_bytes(self.gzip_bytes)}); -0.0 values in float weights: {self.negative_zeros}; "
                f"min runtime version: {self.min_runtime_version or 'not recorded'}")
        rows = [(t.name if len(t.name) <= 48 else t.name[:45] + "...", t.shape, t.dtype, t.bytes,
                 None if t.zero_fraction is None else round(t.zero_fraction, 4), t.encoding,
                 ",".join(t.consumers)) for t in self.tensors]
        tensors = table(["tensor", "shape", "dtype", "bytes", "zeros", "encoding", "used by"], rows)
        ops = ", ".join(f"{k}: {v}" for k, v in sorted(self.ops.items()))
        return f"{head}\nops: {ops}\n{tensors}"


def gzip_size(data: bytes) -> int:
    """Size of ``data`` after ``gzip -9`` (what an app store / download sees)."""
    return len(gzip.compress(bytes(data), compresslevel=9, mtime=0))


def inspect(model, min_elements: int = 1) -> InspectReport:
    """Lists the constant tensors, their encodings and the op histogram of a .tflite model.

    Args:
      model: path of a .tflite file, or the model's bytes.
      min_elements: only list constant tensors with at least this many elements (use e.g. 64 to
        hide scalars and shape vectors).

    Returns:
      :class:`InspectReport`.

    Example (``model``: a small tf_keras model):

        >>> import tflite_export
        >>> _ = tflite_export.export(tfprune.prune_at_init(model, "magnitude", sparsity=0.9), "m.tflite")
        >>> rep = tflite_export.inspect("m.tflite")
        >>> rep.ops                     # print(rep): the table of tensors, encodings and ops
        {'DENSIFY': 3, 'FULLY_CONNECTED': 3}
        >>> [t.encoding for t in rep.sparse_tensors()]
        ['CSR', 'CSR', 'CSR']
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, path = bytes(model), None
    else:
        path = os.fspath(model)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"inspect: model={path!r} is not a file")
        with open(path, "rb") as f:
            data = f.read()
    m = fb.load(data)
    ops = collections.Counter()
    rows = []
    for g, sg in enumerate(m.subgraphs):
        graph = fb.Graph.of(sg)
        for op in sg.operators or []:
            ops[fb.op_name(m, op)] += 1
        for i, t in enumerate(sg.tensors):
            raw = fb.buffer_bytes(m, t)
            if not raw:
                continue
            shape = tuple(int(s) for s in (t.shape if t.shape is not None else []))
            n_elements = int(np.prod(shape)) if shape else 1
            if n_elements < min_elements:
                continue
            arr = fb.tensor_array(m, t)
            zero_fraction = float(fb.zero_mask(m, t, arr).mean()) if arr is not None and arr.size else None
            consumers = tuple(fb.op_name(m, sg.operators[c]) for c in graph.consumers.get(i, []))
            rows.append(TensorInfo(
                subgraph=g, index=i, name=fb.tensor_name(t), shape=shape, dtype=fb.type_name(t.type),
                bytes=len(raw) + fb.sparsity_index_bytes(t), zero_fraction=zero_fraction,
                encoding=fb.encoding_name(t), consumers=consumers))
    return InspectReport(path=path, size_bytes=len(data), gzip_bytes=gzip_size(data), tensors=rows,
                         ops=dict(ops), negative_zeros=fb.count_negative_zeros(m),
                         min_runtime_version=fb.min_runtime_version(m))
