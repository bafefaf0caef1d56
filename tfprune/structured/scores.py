"""Channel scores: one number per output channel (neuron / filter) of every Dense/Conv layer.

* ``"l1"`` / ``"l2"``: the L1 / L2 norm of the channel's weights (a Dense neuron's column of
  the ``[in, out]`` kernel, a Conv filter ``kernel[..., c]``); the channels with the smallest
  norms are removed (Li et al. 2017, "Pruning filters for efficient ConvNets").
* any scorer of the core (``"magnitude"``, ``"random"``, ``"snip"``, ``"grasp"``,
  ``"synflow"`` or one added with :func:`tfprune.register_scorer`): the element scores of
  :func:`tfprune.compute_scores`, *pooled*: summed over every kernel axis but the output
  channel's. The scorer's ``keep`` direction is kept (GraSP keeps the lowest pooled sums).
  SynFlow is scored in one round here (its iterative schedule is element-wise).

Biases, BatchNorm parameters and consumers' input slices are not part of a channel's score.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from tfprune import _keras
from tfprune.scoring import compute_scores, get_scorer

NORMS = {"l1": 1, "l2": 2}


def _output_axis(layer) -> int:
    return -2 if _keras.layer_kind(_keras.inner_layer(layer)) == "transposed" else -1


def _kernel_owners(model) -> dict:
    """``{kernel key: the layer owning the kernel}`` (an EinsumDense for ``"mha/query"``): its
    last axis is taken as the output axis; structured pruning itself leaves attention alone."""
    return {key: owner for key, (_, owner) in _keras.prunable_kernel_layers(model).items()}


def pool_channel_scores(scores: Mapping[str, np.ndarray], model=None) -> "dict[str, np.ndarray]":
    """Sums element scores over every axis but the output-channel axis (the last one; ``-2``
    for transposed convolutions when ``model`` is given).

    Example:
        >>> pooled = pool_channel_scores(tfprune.compute_scores(model, "snip", data=(x, y), loss=loss))
        >>> pooled["fc1"].shape   # (units,); (filters,) for a convolution
        (32,)
    """
    owners = _kernel_owners(model) if model is not None else {}
    out = {}
    for name, value in scores.items():
        value = np.asarray(value, np.float64)
        if value.ndim == 0:
            raise ValueError(f"scores: layer {name!r} has a scalar score; expected a kernel-shaped array.")
        axis = _output_axis(owners[name]) if name in owners else -1
        moved = np.moveaxis(value, axis, -1)
        out[name] = moved.reshape(-1, moved.shape[-1]).sum(axis=0)
    return out


def channel_sizes(model) -> "dict[str, int]":
    """Number of kernel weights behind one output channel of each prunable layer (the pooled
    score's element count; a global ranking divides by it, see
    :func:`tfprune.allocation.allocate_channels`)."""
    out = {}
    for name, owner in _kernel_owners(model).items():
        shape = tuple(owner.kernel.shape)
        out[name] = int(np.prod(shape)) // int(shape[_output_axis(owner)])
    return out


def channel_norms(model, ord: int = 1) -> "dict[str, np.ndarray]":
    """L1 (``ord=1``) or L2 (``ord=2``) norm of every output channel's kernel weights.

    Masked weights (a model wrapped by :func:`tfprune.prune_at_init`) count as zero.

    Example:
        >>> norms = channel_norms(model, ord=1)
        >>> norms["fc1"].shape        # one value per output channel (unit or filter)
        (32,)
        >>> bool(np.allclose(norms["fc1"], np.abs(model.get_layer("fc1").kernel.numpy()).sum(axis=0)))
        True
    """
    if ord not in (1, 2):
        raise ValueError(f"ord: got {ord!r}; allowed: 1 (L1 norm) or 2 (L2 norm).")
    from tfprune.scoring import kernel_values
    from tfprune.wrapper import get_masks, is_wrapped

    _keras.check_model(model)
    _keras.require_prunable(model)
    owners = _kernel_owners(model)
    values = kernel_values(model, get_masks(model) if is_wrapped(model) else None)
    out = {}
    for name, value in values.items():
        moved = np.moveaxis(np.asarray(value, np.float64), _output_axis(owners[name]), -1)
        flat = moved.reshape(-1, moved.shape[-1])
        out[name] = np.abs(flat).sum(axis=0) if ord == 1 else np.sqrt(np.square(flat).sum(axis=0))
    return out


def criterion_keep(criterion) -> str:
    """Which end of the channel scores survives: ``"highest"``, or ``"lowest"`` for GraSP."""
    if isinstance(criterion, str) and criterion.lower() in NORMS:
        return "highest"
    try:
        return get_scorer(criterion).keep
    except ValueError as err:
        raise ValueError(f"criterion: {err} Channel norms: 'l1', 'l2'.") from None


def channel_scores(model, criterion: str = "l1", data=None, loss=None, **options) -> "dict[str, np.ndarray]":
    """One score per output channel of every Dense/Conv layer, by ``criterion``.

    Args:
        model: built tf_keras Sequential/Functional model.
        criterion: ``"l1"`` or ``"l2"`` (channel weight norms), or a core scorer name
            (``"magnitude"``, ``"random"``, ``"snip"``, ``"grasp"``, ``"synflow"``, ...) whose
            element scores are summed per output channel.
        data, loss, **options: passed to :func:`tfprune.compute_scores` (SNIP/GraSP need data;
            ``seed`` for random, ``temperature`` for GraSP, ``input_shape`` for SynFlow).

    Returns:
        ``{layer name: 1-D float64 array of length out_channels}``. Keep the highest scores,
        unless :func:`criterion_keep` says ``"lowest"`` (GraSP).

    Example:
        >>> scores = channel_scores(model, "l2")
        >>> scores = channel_scores(model, "snip", data=(x[:40], y[:40]), loss=loss)
        >>> {name: s.shape for name, s in scores.items()}
        {'fc1': (32,), 'fc2': (16,), 'output': (4,)}
    """
    criterion_keep(criterion)  # validates the name (lists l1, l2 and the scorers)
    if isinstance(criterion, str) and criterion.lower() in NORMS:
        if options:
            raise TypeError(f"{sorted(options)[0]}: not an option of criterion {criterion!r} (it takes none).")
        return channel_norms(model, NORMS[criterion.lower()])
    return pool_channel_scores(compute_scores(model, criterion, data=data, loss=loss, **options), model)
