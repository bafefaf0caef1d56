"""Block structure of the Keras kernels, and the ``block=`` argument's checks.

LiteRT has fast sparse FULLY_CONNECTED kernels for 1x4 (float32) and 1x16 (int8) blocks in
TFLite's [out, in] layout, i.e. (4, 1) / (16, 1) blocks along the input axis of a Keras Dense
kernel [in, out].
"""

from __future__ import annotations

import numpy as np

from .keras_side import float_kernels, matrix_view
from .reports import LayerInfo

SPARSE_MIN_ZERO_FRACTION = 0.3  # the converter's threshold for sparse-encoding a weight


def block_structure(kernel: np.ndarray) -> tuple[str, int]:
    """Detects (16,1)/(4,1) zero blocks along the input axis of a Dense kernel [in, out].

    A kernel is (b,1)-structured when at least 99% of its zeros lie in all-zero b x 1 blocks
    (the trailing partial block, if ``in % b != 0``, counts as a block of the rows it has).
    Returns ``(structure, partial rows)``: structure ``"(16,1)"``, ``"(4,1)"``, ``"none"`` or
    ``"-"`` (no zeros), partial rows = ``in % b``.
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


def analyse_layers(model) -> list:
    """One :class:`LayerInfo` per layer with a float kernel (nested models included; one per
    EinsumDense kernel of a MultiHeadAttention, named ``"mha/query"`` etc., kind EinsumDense).
    The block structure of an EinsumDense kernel is that of its [in, out] matrix
    (:func:`~tflite_export.keras_side.matrix_view`)."""
    infos = []
    for name, layer, k in float_kernels(model):
        zf = float((k == 0).mean())
        matrix = matrix_view(layer, k)
        if matrix is not None:
            block, partial = block_structure(matrix)
        else:
            block, partial = ("-" if zf == 0 else "n/a (conv)"), 0
        infos.append(LayerInfo(name, type(layer).__name__, tuple(int(s) for s in k.shape),
                               zf, block, partial))
    return infos


def _sparse_dense_kernels(report):
    """The Dense kernels the converter will encode sparse (>= 30% zeros)."""
    return [info for info in report.layers if len(info.kernel_shape) == 2
            and info.zero_fraction >= SPARSE_MIN_ZERO_FRACTION]


def check_blocks(report, block, quantization) -> None:
    """For ``block=(b, 1)``: raises ``ValueError`` unless every Dense kernel with >= 30% zeros is
    zero in whole (b, 1) blocks ((16, 1) blocks are (4, 1) blocks too)."""
    if block == "auto":
        return
    b = block[0]
    bad = [f"{info.layer} (kernel {info.kernel_shape}, {info.zero_fraction:.1%} zeros, "
           f"structure {info.block})" for info in _sparse_dense_kernels(report)
           if not (info.block == "(16,1)" or (b == 4 and info.block == "(4,1)"))]
    if bad:
        raise ValueError(
            f"block={block!r}: these Dense kernels are not zero in whole {block} blocks along the "
            f"input axis (Keras layout [in, out]): {'; '.join(bad)}. Use block='auto' to export "
            "whatever structure the masks have, or prune with block-structured masks.")
    if b == 4 and quantization in ("dynamic", "int8"):
        report.notes.append(
            "block=(4, 1) with int8 weights: the int8 FULLY_CONNECTED fast path needs (16, 1) blocks; "
            "(4, 1) masks are encoded element-wise (CSR + DENSIFY), which XNNPACK cannot run")


def note_unexpected_encodings(report, quantization) -> None:
    """Notes every block-structured Dense kernel the converter did not encode with the fast
    path's block shape."""
    want = "block 1x4" if quantization in ("none", "float16") else "block 1x16"
    by_layer = {t.layer: t for t in report.tensors if t.layer}
    for info in _sparse_dense_kernels(report):
        expected = info.block == "(16,1)" or (want == "block 1x4" and info.block == "(4,1)")
        t = by_layer.get(info.layer)
        if expected and t is not None and t.converter_encoding != want:
            report.notes.append(f"layer {info.layer}: {info.block} mask, but the converter chose "
                                f"{t.converter_encoding} (expected {want})")
