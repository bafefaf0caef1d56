"""Mask transforms, pure numpy: the level rule of iterative pruning and the sanity-check
variants (Frankle et al. 2021, "Pruning neural networks at initialization: why are we missing
the mark?").

* :func:`level_densities` / :func:`prune_level`: the density of each layer group after ``n``
  levels, and the masks of the next level (prune a fraction of the *remaining* weights, ranked
  by :func:`tfprune.allocation.allocate`, optionally at a per-layer rate).
* :func:`shuffle_masks`: permute each layer's mask independently (every layer keeps exactly its
  number of weights, their positions are random).
* :func:`invert_keep`: the other end of a ranking (``"highest"`` ↔ ``"lowest"``), used to
  prune the highest-scoring weights instead of the lowest (for GraSP, whose scorer keeps the
  lowest, the reverse).
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from tfprune.allocation import allocate

__all__ = ["count_kept", "density", "invert_keep", "level_densities", "prune_level", "shuffle_masks"]


def density(masks: Mapping[str, np.ndarray]) -> float:
    """Fraction of weights kept over all layers of ``masks``."""
    total = sum(int(np.size(m)) for m in masks.values())
    return count_kept(masks) / total if total else 1.0


def count_kept(masks: Mapping[str, np.ndarray]) -> int:
    """Number of nonzero entries over all layers of ``masks``."""
    return int(sum(int(np.count_nonzero(m)) for m in masks.values()))


def invert_keep(keep: str) -> str:
    """``"highest"`` → ``"lowest"`` and back: which end of a ranking survives when inverted.

    Example:
        >>> invert_keep(tfprune.get_scorer("snip").keep)   # SNIP keeps the highest scores
        'lowest'
        >>> invert_keep(tfprune.get_scorer("grasp").keep)  # GraSP keeps the lowest
        'highest'
    """
    if keep == "highest":
        return "lowest"
    if keep == "lowest":
        return "highest"
    raise ValueError(f"keep: got {keep!r}; allowed: 'highest', 'lowest'.")


def shuffle_masks(masks: Mapping[str, np.ndarray], seed=None) -> "dict[str, np.ndarray]":
    """Each layer's mask with its entries randomly permuted, layers independently.

    The number of kept weights of every layer is exactly preserved; only their positions
    change. The layers are shuffled in the order of ``masks`` with one generator seeded by
    ``seed`` (same seed → same result). A layer that keeps all or none of its weights cannot
    change.

    Example:
        >>> shuffled = shuffle_masks({"dense": np.array([[1., 0.], [0., 0.]])}, seed=0)
        >>> int(shuffled["dense"].sum())
        1
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, mask in masks.items():
        mask = np.asarray(mask)
        flat = mask.reshape(-1).copy()
        rng.shuffle(flat)
        out[name] = flat.reshape(mask.shape).astype(np.float32)
    return out


def _check_fraction(value, argument):
    try:
        fraction = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{argument}: expected a number in (0, 1), got {value!r}.") from None
    if not 0.0 < fraction < 1.0 or math.isnan(fraction):
        raise ValueError(f"{argument}: got {value!r}; allowed: a fraction of the remaining weights to prune "
                         "per level, strictly between 0 and 1 (0.2 prunes 20% of the survivors each level).")
    return fraction


def check_layer_fractions(layer_fractions: "Mapping[str, float] | None", layers: Sequence[str],
                          argument: str = "layer_prune_fractions") -> "dict[str, float]":
    """Validates per-layer prune fractions (each in [0, 1); 0 = never pruned) for ``layers``."""
    if not layer_fractions:
        return {}
    if not isinstance(layer_fractions, Mapping):
        raise TypeError(f"{argument}: expected a dict {{layer name: fraction}}, got {type(layer_fractions).__name__}.")
    unknown = [name for name in layer_fractions if name not in layers]
    if unknown:
        raise ValueError(f"{argument}: no prunable layer named {unknown}; prunable layers: {list(layers)}.")
    out = {}
    for name, value in layer_fractions.items():
        try:
            fraction = float(value)
        except (TypeError, ValueError):
            raise TypeError(f"{argument}[{name!r}]: expected a number in [0, 1), got {value!r}.") from None
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"{argument}[{name!r}]: got {value!r}; allowed: a fraction in [0, 1) "
                             "(0 keeps the layer dense).")
        out[name] = fraction
    return out


def level_densities(level: int, prune_fraction: float,
                    layer_fractions: "Mapping[str, float] | None" = None) -> "tuple[float, dict[str, float]]":
    """Target densities after ``level`` levels: ``(1 - p)^level`` for the jointly ranked layers
    and ``(1 - p_l)^level`` for each layer with its own rate ``p_l``.

    Example:
        >>> level_densities(3, 0.2, {"output": 0.1})
        (0.512..., {'output': 0.729...})
    """
    prune_fraction = _check_fraction(prune_fraction, "prune_fraction")
    layer_fractions = dict(layer_fractions or {})
    return (1.0 - prune_fraction) ** level, {n: (1.0 - f) ** level for n, f in layer_fractions.items()}


def prune_level(scores: Mapping[str, np.ndarray], previous: Mapping[str, np.ndarray], level: int,
                prune_fraction: float, *, layer_fractions: "Mapping[str, float] | None" = None,
                scope: str = "global", keep: str = "highest") -> "dict[str, np.ndarray]":
    """Masks of pruning level ``level`` (>= 1) from the scores of the weights alive at level
    ``level - 1`` (``previous``).

    The layers without their own rate are ranked together (``scope="global"``) or each on its
    own (``"layerwise"``) and keep ``round(N · (1 - p)^level)`` weights, N being all their
    weights (not only the survivors): the density after ``level`` levels is ``(1 - p)^level``
    up to the rounding of one count (per layer with ``"layerwise"``), without accumulating
    rounding errors from level to level. A layer in ``layer_fractions`` keeps
    ``round(n_l · (1 - p_l)^level)`` of its own weights (e.g. the LTH paper prunes the output
    layer at half the rate). Only weights alive in ``previous`` can be kept, so the masks of
    successive levels are nested.

    Example:
        >>> m1 = prune_level(scores, ones, level=1, prune_fraction=0.2)
        >>> m2 = prune_level(new_scores, m1, level=2, prune_fraction=0.2)   # density 0.64
    """
    if not isinstance(level, (int, np.integer)) or level < 1:
        raise ValueError(f"level: expected an integer >= 1, got {level!r}.")
    layer_fractions = check_layer_fractions(layer_fractions, list(scores))
    joint_density, own = level_densities(int(level), prune_fraction, layer_fractions)
    masks = {}
    joint = [name for name in scores if name not in own]
    if joint:
        masks.update(allocate(scores, 1.0 - joint_density, scope=scope, keep=keep, exclude=list(own),
                              within=previous))
    for name, layer_density in own.items():
        masks.update(allocate({name: scores[name]}, 1.0 - layer_density, keep=keep,
                              within={name: previous[name]} if name in previous else None))
    return {name: masks[name] for name in scores}
