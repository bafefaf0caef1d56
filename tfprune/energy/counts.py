"""Counting a tf_keras model: MACs per layer, and :class:`LayerCount` s from a model and masks.

A layer's MACs for one example are ``reuse x kernel weights``: ``reuse`` is 1 for a Dense layer
on a vector (the product of the leading dimensions on a sequence), ``H_out x W_out`` for a
convolution (``H_out x W_out x k_h x k_w x C_in x C_out`` MACs; depthwise and separable alike)
and ``H_in x W_in`` for a transposed convolution. A masked layer keeps ``reuse x kept`` of them
(unstructured sparsity: only kept weights are multiplied; block sparsity: every weight of a kept
block). Counted: Dense, Conv1D/2D/3D, their transposes, depthwise and separable convolutions,
in tf_keras and Keras 3 models alike (Keras 3 shapes: :mod:`tfprune._keras3.counts`);
EinsumDense, attention and nested models are named in the notes, not counted.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from tfprune import _keras, _keras3, checks
from tfprune.energy.estimate import EnergyEstimate, LayerCount, estimate

COUNTED_KINDS = ("dense", "conv", "transposed", "depthwise", "separable")


def _prod(values) -> int:
    return int(np.prod([int(v) for v in values], dtype=np.int64)) if len(values) else 1


class _TfKeras:
    """The tf_keras seam for counting (:mod:`tfprune._keras`); Keras 3's is :mod:`tfprune._keras3.counts`."""

    @staticmethod
    def layer_kind(layer):
        return _keras.layer_kind(_keras.inner_layer(layer))

    @staticmethod
    def inner_layer(layer):
        return _keras.inner_layer(layer)

    @staticmethod
    def shapes(layer):
        return _shapes(_keras.inner_layer(layer))

    @staticmethod
    def top_layers(model):
        _keras.check_model(model)
        return [(layer, _keras.inner_layer(layer)) for layer in model.layers]


def _seam(obj):
    if _keras3.is_keras3(obj):
        from tfprune._keras3 import counts
        return counts
    return _TfKeras


def _shapes(layer):
    """``(input shape, output shape)`` of a tf_keras layer called once on known shapes, else None."""
    try:
        in_shape, out_shape = tuple(layer.input_shape), tuple(layer.output_shape)
    except (AttributeError, RuntimeError):
        return None
    if any(isinstance(s, (list, tuple)) for s in in_shape) or any(d is None for d in in_shape[1:] + out_shape[1:]):
        return None
    return in_shape, out_shape


def _spatial(layer, shape) -> "tuple[int, ...]":
    """The spatial dimensions of a convolution's input or output ``shape`` (batch included)."""
    return shape[2:] if getattr(layer, "data_format", "channels_last") == "channels_first" else shape[1:-1]


def layer_macs(layer) -> int:
    """Multiply-accumulates of one forward pass of ``layer`` (tf_keras or Keras 3, wrapped or not)
    for a single example (0 for layers without a Dense/convolution kernel or with unknown shapes)."""
    seam = _seam(layer)
    shapes, kind = seam.shapes(layer), seam.layer_kind(layer)
    return 0 if shapes is None else _macs(seam.inner_layer(layer), kind, *shapes)


def _macs(layer, kind, in_shape, out_shape) -> int:
    if kind == "dense":
        return _prod(in_shape[1:-1]) * in_shape[-1] * out_shape[-1]
    if kind in ("depthwise", "separable"):
        kernel = tuple(_depthwise_kernel(layer).shape)  # [..., in, multiplier]
        spatial = _prod(_spatial(layer, out_shape))
        depthwise = spatial * _prod(kernel[:-2]) * kernel[-2] * kernel[-1]
        return depthwise + (spatial * kernel[-2] * kernel[-1] * out_shape[-1] if kind == "separable" else 0)
    if kind == "transposed":
        kernel = tuple(layer.kernel.shape)  # [..., out, in]
        return _prod(_spatial(layer, in_shape)) * _prod(kernel)
    if kind == "conv":
        kernel = tuple(layer.kernel.shape)  # [..., in / groups, out]
        return _prod(_spatial(layer, out_shape)) * _prod(kernel)
    return 0


def _depthwise_kernel(layer):
    """A depthwise or separable convolution's depthwise kernel (Keras 3's DepthwiseConv calls it ``kernel``)."""
    kernel = getattr(layer, "depthwise_kernel", None)
    return layer.kernel if kernel is None else kernel


def _kernel_params(layer, kind) -> int:
    if kind in ("depthwise", "separable"):
        extra = _prod(layer.pointwise_kernel.shape) if kind == "separable" else 0
        return _prod(_depthwise_kernel(layer).shape) + extra
    return _prod(layer.kernel.shape)


def _check_block(block):
    if block is None:
        return None
    if not isinstance(block, (tuple, list)) or len(block) != 2:
        raise ValueError(f"block: got {block!r}; allowed: None or a pair of positive ints such as (4, 1).")
    return tuple(checks.integer(b, "block", 1, allowed="None or a pair of positive ints such as (4, 1)")
                 for b in block)


def with_mask(count: LayerCount, mask, block=None, sparse: "bool | None" = None) -> LayerCount:
    """``count`` with a 0/1 ``mask`` over its kernel: kept weights and indices, element-wise, or
    in ``block`` = ``(rows, cols)`` blocks of a 2-D (Dense, ``[in, out]``) kernel (partial blocks
    at the edges count their in-bounds weights; a kept block stores all its weights). A mask
    that keeps everything gives a dense count. ``sparse``: see :class:`LayerCount`."""
    mask = np.asarray(mask) != 0
    block = _check_block(block)
    if mask.size != count.params:
        raise ValueError(f"masks[{count.name!r}]: got {mask.size} entries; allowed: one per kernel weight "
                         f"({count.params}).")
    kept = int(mask.sum())
    if block is None or mask.ndim != 2:
        stored, indices, pattern = kept, kept, "element"
    else:
        (bh, bw), (rows, cols) = block, mask.shape
        nbr, nbc = -(-rows // bh), -(-cols // bw)
        padded = np.zeros((nbr * bh, nbc * bw), bool)
        padded[:rows, :cols] = mask
        kept_blocks = padded.reshape(nbr, bh, nbc, bw).any(axis=(1, 3))
        sizes = np.minimum(bh, rows - bh * np.arange(nbr))[:, None] * np.minimum(bw, cols - bw * np.arange(nbc))
        stored, indices, pattern = int(sizes[kept_blocks].sum()), int(kept_blocks.sum()), f"block {bh}x{bw}"
    if stored == count.params:
        return dataclasses.replace(count, kept=count.params, indices=0, sparse=False)
    return dataclasses.replace(count, kept=stored, indices=indices, sparse=sparse, pattern=pattern)


def count_layers(model, masks: "Mapping[str, np.ndarray] | None" = None, block=None
                 ) -> "tuple[list[LayerCount], list[str]]":
    """``(counts, notes)`` for the top-level layers of a tf_keras or Keras 3 (Sequential or
    Functional) ``model``, wrapped or plain.

    ``masks``: ``{layer name: 0/1 kernel mask}`` for the layers to count as sparse (others are
    dense; None: all dense); ``block``: count them in blocks (see :func:`with_mask`). ``notes``
    names each layer with weights that is not counted, and why.
    """
    seam = _seam(model)
    masks = dict(masks or {})
    counts, notes = [], []
    for layer, inner in seam.top_layers(model):
        if not inner.built:  # never called: no weights, no work
            continue
        kind = seam.layer_kind(layer)
        if kind not in COUNTED_KINDS:
            if inner.count_params() and kind not in ("batchnorm", "normalization", "prelu"):
                notes.append(f"{inner.name} ({type(inner).__name__}) not counted")
            continue
        shapes, params = seam.shapes(layer), _kernel_params(inner, kind)
        macs = 0 if shapes is None else _macs(inner, kind, *shapes)
        if not macs or macs % params:
            notes.append(f"{inner.name} ({type(inner).__name__}) not counted: input/output shapes unknown")
            continue
        count = LayerCount(inner.name, params, macs // params, _prod(shapes[0][1:]), _prod(shapes[1][1:]))
        mask = masks.pop(inner.name, None)
        counts.append(count if mask is None else with_mask(count, mask, block))
    return counts, notes


def estimate_energy(model, masks: "Mapping[str, np.ndarray] | None" = None, *, block=None, dtype: str = "float32",
                    costs=None, activation_dtype: "str | None" = None, compute_dtype: "str | None" = None
                    ) -> EnergyEstimate:
    """Energy per inference of a tf_keras or Keras 3 ``model`` (see :mod:`tfprune.energy`).

    ``masks``: default the model's own (its wrappers' masks, or a plain model's nonzeros:
    :func:`tfprune.get_masks`); ``block``: price masked Dense kernels block-sparse in ``(rows,
    cols)`` blocks of the Keras ``[in, out]`` layout (one index per kept block); ``dtype``,
    ``costs``, ...: as :func:`tfprune.energy.estimate`.

    Example:
        >>> pruned = tfprune.prune_at_init(model, "magnitude", sparsity=0.9)
        >>> dense, sparse = tfprune.estimate_energy(model, masks={}), tfprune.estimate_energy(pruned)
        >>> dense.macs, sparse.macs, sparse.weights_in
        (1088, 109, 'SRAM')
        >>> print(sparse)  # doctest: +NORMALIZE_WHITESPACE
        energy per inference (float32; 654 B of weights in SRAM, activations in SRAM): 0.002128 µJ = compute 0.0005014 µJ + memory 0.001626 µJ (109 MACs; tfprune.energy)
        layer   stored   MACs  weight B  compute pJ  register pJ  weights pJ  index pJ  activations pJ  total pJ
        ------  -------  ----  --------  ----------  -----------  ----------  --------  --------------  --------
        fc1     element    41       246         189           82         205       107             240       822
        fc2     element    42       252         193           84         210       109             240       836
        output  element    26       156         120           52         130        68             100       469
        ------  -------  ----  --------  ----------  -----------  ----------  --------  --------------  --------
        total             109       654         501          218         545       283             580     2,128
    """
    from tfprune.wrapper import get_masks

    if masks is None:
        masks = get_masks(model)
    counts, notes = count_layers(model, masks, block)
    return estimate(counts, costs, dtype, activation_dtype=activation_dtype, compute_dtype=compute_dtype, notes=notes)
