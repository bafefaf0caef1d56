"""Mask transforms, pure numpy: the level rule of iterative pruning and the sanity-check
variants (Frankle et al. 2021, "Pruning neural networks at initialization: why are we missing
the mark?").

* :func:`level_densities` / :func:`prune_level`: the density of each layer group after ``n``
  levels, and the masks of the next level (prune a fraction of the *remaining* weights, ranked
  by :func:`tfprune.allocation.allocate`, optionally at a per-layer rate);
  :func:`levels_for_sparsity`: how many levels reach a sparsity.
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

from tfprune import checks
from tfprune.allocation import allocate

__all__ = ["check_layer_fractions", "count_kept", "density", "invert_keep", "level_densities", "levels_for_sparsity",
           "prune_level", "shuffle_masks"]

SCOPES = ("global", "layerwise")  # how the weights of the layers are ranked: together or each on its own


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
        >>> from tfprune.scoring import get_scorer
        >>> invert_keep(get_scorer("snip").keep)   # SNIP keeps the highest scores
        'lowest'
        >>> invert_keep(get_scorer("grasp").keep)  # GraSP keeps the lowest
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


PRUNE_FRACTION_ALLOWED = ("a fraction of the remaining weights to prune per level, strictly between 0 and 1 "
                          "(0.2 prunes 20% of the survivors each level)")


def check_prune_fraction(value, argument: str = "prune_fraction") -> float:
    """``value`` as a per-level prune fraction in (0, 1) (the checks' one message format).

    Example:
        >>> check_prune_fraction(0.2)
        0.2
        >>> check_prune_fraction(1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: prune_fraction: got 1; allowed: a fraction of the remaining weights to prune per level, ...
    """
    return checks.fraction(value, argument, closed_low=False, allowed=PRUNE_FRACTION_ALLOWED)


def check_target_sparsity(value, argument: str = "target_sparsity") -> float:
    """``value`` as a sparsity to reach, in (0, 1)."""
    return checks.fraction(value, argument, closed_low=False,
                           allowed="a sparsity strictly between 0 and 1 (0.98 = 98% of the weights pruned)")


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
        out[name] = checks.fraction(value, f"{argument}[{name!r}]",
                                    allowed="a fraction in [0, 1) (0 keeps the layer dense)")
    return out


def level_densities(level: int, prune_fraction: float,
                    layer_fractions: "Mapping[str, float] | None" = None) -> "tuple[float, dict[str, float]]":
    """Target densities after ``level`` levels: ``(1 - p)^level`` for the jointly ranked layers
    and ``(1 - p_l)^level`` for each layer with its own rate ``p_l``.

    Example:
        >>> joint, own = level_densities(3, 0.2, {"output": 0.1})
        >>> round(joint, 6), {name: round(d, 6) for name, d in own.items()}
        (0.512, {'output': 0.729})
    """
    prune_fraction = check_prune_fraction(prune_fraction)
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
        >>> scores = {"dense": np.arange(1.0, 101.0).reshape(10, 10)}   # |w| of 100 weights
        >>> ones = {"dense": np.ones((10, 10), np.float32)}
        >>> m1 = prune_level(scores, ones, level=1, prune_fraction=0.2)
        >>> m2 = prune_level(scores, m1, level=2, prune_fraction=0.2)
        >>> count_kept(m1), count_kept(m2)                              # 100 · 0.8, 100 · 0.8²
        (80, 64)
    """
    level = checks.integer(level, "level", 1)
    layer_fractions = check_layer_fractions(layer_fractions, list(scores))
    joint_density, own = level_densities(level, prune_fraction, layer_fractions)
    masks = {}
    joint = [name for name in scores if name not in own]
    if joint:
        masks.update(allocate(scores, 1.0 - joint_density, scope=scope, keep=keep, exclude=list(own),
                              within=previous))
    for name, layer_density in own.items():
        masks.update(allocate({name: scores[name]}, 1.0 - layer_density, keep=keep,
                              within={name: previous[name]} if name in previous else None))
    return {name: masks[name] for name in scores}


def levels_for_sparsity(target_sparsity: float, prune_fraction: float,
                        layer_sizes: "Mapping[str, int] | None" = None,
                        layer_fractions: "Mapping[str, float] | None" = None) -> int:
    """Smallest number of levels whose planned sparsity reaches ``target_sparsity``.

    Without per-layer rates this is ``ceil(log(1 - target) / log(1 - prune_fraction))``.

    Example:
        >>> levels_for_sparsity(0.98, 0.2)
        18
    """
    target = check_target_sparsity(target_sparsity)
    fraction = check_prune_fraction(prune_fraction)
    layer_fractions = dict(layer_fractions or {})
    if layer_sizes is None or not layer_fractions:
        return max(1, math.ceil(math.log(1.0 - target) / math.log(1.0 - fraction) - 1e-9))
    total = sum(layer_sizes.values())
    for level in range(1, 100_000):
        joint, own = level_densities(level, fraction, layer_fractions)
        kept = sum(n * own.get(name, joint) for name, n in layer_sizes.items())
        if kept / total <= 1.0 - target + 1e-12:
            return level
    raise ValueError(f"target_sparsity: {target} cannot be reached with prune_fraction={fraction} and "
                     f"layer_prune_fractions={layer_fractions} (a layer that is never pruned keeps too many weights).")
