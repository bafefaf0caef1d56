"""Element and block allocation: the ranking behind :func:`tfprune.allocation.allocate`
(global or layerwise budgets, ties by position, ``min_density``, ``min_kept``, blocks, ``within``)."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np

from tfprune import checks
from tfprune.allocation._top import top

SCOPES = ("global", "layerwise")


def check_sparsity(sparsity, argument: str = "sparsity") -> float:
    """``sparsity`` as a float in [0, 1), or a clear error."""
    return checks.fraction(sparsity, argument,
                           allowed="a fraction of weights to prune in [0, 1) (0.98 prunes 98% of the weights)")


def _check_block(block):
    if block is None:
        return None
    if (not isinstance(block, (tuple, list)) or len(block) != 2
            or not all(isinstance(b, (int, np.integer)) and b >= 1 for b in block)):
        raise ValueError(f"block: got {block!r}; allowed: None or a pair of positive ints such as (4, 1) or (16, 1).")
    return (int(block[0]), int(block[1]))


class _Units:
    """A layer's weights grouped into units (single weights, or blocks) with a key per unit."""

    def __init__(self, key: np.ndarray, block):
        self.shape = key.shape
        if block is None or key.ndim != 2:
            self.unit_key = key.reshape(-1)
            self.unit_size = None  # all units of size 1
            self.unit_of = None
        else:
            bh, bw = block
            rows, cols = key.shape
            nbr, nbc = -(-rows // bh), -(-cols // bw)
            row_block = np.arange(rows) // bh
            col_block = np.arange(cols) // bw
            unit = (row_block[:, None] * nbc + col_block[None, :]).reshape(-1)
            size = np.bincount(unit, minlength=nbr * nbc).astype(np.int64)
            total = np.bincount(unit, weights=key.reshape(-1), minlength=nbr * nbc)
            self.unit_key = total / size
            self.unit_size = size
            self.unit_of = unit

    @property
    def n(self) -> int:
        return int(np.prod(self.shape))

    def sizes(self) -> np.ndarray:
        return np.ones(len(self.unit_key), np.int64) if self.unit_size is None else self.unit_size

    def to_mask(self, keep_units: np.ndarray) -> np.ndarray:
        keep_units = keep_units.astype(bool)
        flat = keep_units if self.unit_of is None else keep_units[self.unit_of]
        return flat.reshape(self.shape).astype(np.float32)


_ONE = np.ones(1, np.int64)  # sizes of single-weight units, whatever their number


def _top_units(keys: np.ndarray, sizes: np.ndarray, budget: int) -> np.ndarray:
    """Boolean selection of the best units (highest key first, ties by position) whose sizes
    add up to ``budget`` (element units: exactly; blocks: until the budget is reached)."""
    chosen = np.zeros(len(keys), bool)
    if budget <= 0 or len(keys) == 0:
        return chosen
    if sizes is _ONE or np.all(sizes == 1):
        budget = min(budget, len(keys))
        # O(N) threshold over the eligible (finite) keys only: ineligible ones are -inf, and
        # long runs of equal values make numpy's introselect an order of magnitude slower.
        eligible = keys[keys > -np.inf]  # a copy, partitioned in place
        if budget <= len(eligible):
            eligible.partition(len(eligible) - budget)
            threshold = eligible[len(eligible) - budget]
        else:
            threshold = -np.inf
        above = keys > threshold
        chosen |= above
        # then the first (by position) of the units tied at the threshold
        tied = np.flatnonzero(keys == threshold)
        chosen[tied[: budget - int(above.sum())]] = True
        return chosen
    order = np.argsort(-keys, kind="stable")
    cumulative = np.cumsum(sizes[order])
    count = int(np.searchsorted(cumulative, budget, side="left")) + 1
    chosen[order[:min(count, len(order))]] = True
    return chosen


def _check_scope_keep_exclude(scores, scope, keep, exclude) -> list:
    """Checks shared by every allocation pattern; returns ``exclude`` as a list."""
    if scope not in SCOPES:
        raise ValueError(f"scope: got {scope!r}; allowed: {', '.join(SCOPES)}.")
    if keep not in ("highest", "lowest"):
        raise ValueError(f"keep: got {keep!r}; allowed: 'highest', 'lowest'.")
    if isinstance(exclude, str):
        exclude = [exclude]
    try:
        names = list(exclude)
    except TypeError:
        names = None
    if names is None or not all(isinstance(n, str) for n in names):
        raise ValueError(f"exclude: got {exclude!r}; allowed: a layer name or a list of layer names.")
    exclude = names
    unknown = [name for name in exclude if name not in scores]
    if unknown:
        raise ValueError(f"exclude: unknown layer name(s) {unknown}; prunable layers: {list(scores)}.")
    if not scores:
        raise ValueError("scores: empty; there is no prunable layer to allocate.")
    return list(exclude)


def _layer_keys(scores, keep, exclude, within, mark_dead: bool = True):
    """Per layer, in order: ``(name, key, alive)`` for the layers to allocate, where ``key`` is
    the score oriented so that higher survives (-inf where ``within`` says the weight is gone,
    unless not ``mark_dead``) and ``alive`` the ``within`` mask (or None); excluded layers come
    back as all-ones masks."""
    dense, keyed = {}, []
    for name, score in scores.items():
        score = np.asarray(score)
        if score.dtype.kind != "f":
            score = score.astype(np.float64)  # floats rank as they are: a conversion orders nothing differently
        if not checks.all_finite(score):
            bad = ~np.isfinite(score)
            raise FloatingPointError(f"scores: layer {name!r} has {int(bad.sum())} NaN/inf score(s); allowed: finite numbers.")
        if name in exclude:
            dense[name] = np.ones(score.shape, np.float32)
            continue
        key = score if keep == "highest" else -score
        alive = None
        if within is not None and name in within:
            alive = np.asarray(within[name])
            if alive.shape != score.shape:
                raise ValueError(f"within: mask of layer {name!r} has shape {alive.shape}, scores have {score.shape}.")
            if mark_dead:
                alive = alive != 0
                key = np.where(alive, key, -np.inf)
        keyed.append((name, key, alive))
    return dense, keyed


def allocate(scores: Mapping[str, np.ndarray], sparsity: "float | None", *, scope: str = "global",
             keep: str = "highest", exclude: Sequence[str] = (), min_density: float = 0.0,
             block=None, within: "Mapping[str, np.ndarray] | None" = None, min_kept: int = 0,
             n_m: "tuple[int, int] | None" = None) -> "dict[str, np.ndarray]":
    """Turns per-layer scores into 0/1 masks (float32, kernel shape) for a target sparsity.

    Args:
        scores: ``{layer name: score array}`` in model order (the order breaks ties).
        sparsity: fraction of eligible weights to prune, in [0, 1).
        scope: ``"global"`` (rank all layers together) or ``"layerwise"``.
        keep: ``"highest"`` (default) or ``"lowest"`` scores survive (GraSP: lowest).
        exclude: layer names kept dense and left out of the count.
        min_density: minimum fraction of weights each non-excluded layer keeps, in [0, 1].
        block: ``None`` or ``(bh, bw)`` block shape for 2-D (Dense) kernels.
        within: masks of weights still alive; only those are eligible (iterative pruning), and
            the density is relative to all weights, not to the survivors.
        min_kept: every non-excluded layer keeps at least its ``min(min_kept, units)`` best
            units (weights, or blocks with ``block``); structured pruning uses 1 so that no
            layer loses every channel.
        n_m: ``(N, M)`` for N:M sparsity (e.g. ``(2, 4)``) grouped along the input-channel
            axis; ``sparsity`` must then be ``None`` or ``1 - N/M``, ``scope`` has no effect
            (the pattern is local), and ``block`` / ``min_density`` / ``min_kept`` are not
            allowed. See the module docstring for the trailing partial group.

    Returns:
        ``{layer name: np.float32 array of 0/1}`` for every layer in ``scores``.

    Example:
        >>> masks = allocate({"a": np.array([3., 1.]), "b": np.array([2., 0.])}, 0.5)
        >>> masks["a"].tolist(), masks["b"].tolist()
        ([1.0, 0.0], [1.0, 0.0])
        >>> m = allocate({"fc": np.arange(8.).reshape(4, 2)}, None, n_m=(2, 4))["fc"]
        >>> m.T.tolist()   # per output: the 2 best of the 4 inputs
        [[0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]
    """
    if n_m is not None:
        from tfprune.allocation.n_m import _allocate_n_m

        return _allocate_n_m(scores, sparsity, scope=scope, keep=keep, exclude=exclude, min_density=min_density,
                             block=block, within=within, min_kept=min_kept, n_m=n_m)
    if sparsity is None:
        raise ValueError("sparsity: got None; pass a fraction of weights to prune in [0, 1), or n_m=(N, M) for N:M sparsity.")
    sparsity = check_sparsity(sparsity)
    min_kept = _check_min_kept(min_kept)
    exclude = _check_scope_keep_exclude(scores, scope, keep, exclude)
    min_density = checks.fraction(min_density, "min_density", closed_high=True, allowed="a fraction in [0, 1]")
    block = _check_block(block)

    density = 1.0 - sparsity
    if block is None and not min_density and not min_kept:
        masks, keyed = _layer_keys(scores, "highest", exclude, within, mark_dead=False)  # the scores as they are
        masks.update(_select_elements(keyed, density, scope, lowest=keep == "lowest"))
        return {name: masks[name] for name in scores}
    masks, keyed = _layer_keys(scores, keep, exclude, within)
    units = {name: _Units(key, block) for name, key, _ in keyed}

    if not units:
        return masks
    total = sum(u.n for u in units.values())
    if scope == "layerwise":
        for name, u in units.items():
            chosen = _top_units(u.unit_key, u.sizes(), int(round(u.n * density)))
            if min_kept:
                chosen |= _top_units(u.unit_key, np.ones_like(u.sizes()), min_kept)
            masks[name] = u.to_mask(chosen)
    else:
        budget = int(round(total * density))
        chosen = {name: np.zeros(len(u.unit_key), bool) for name, u in units.items()}
        if min_density > 0 or min_kept:
            for name, u in units.items():
                chosen[name] = _top_units(u.unit_key, u.sizes(), int(math.ceil(u.n * float(min_density))))
                if min_kept:
                    chosen[name] |= _top_units(u.unit_key, np.ones_like(u.sizes()), min_kept)
            reserved = sum(int(u.sizes()[chosen[n]].sum()) for n, u in units.items())
            if reserved > budget and min_density > 0:
                raise ValueError(f"min_density={min_density}: keeps {reserved} weights, more than the {budget} that "
                                 f"sparsity={sparsity} allows; lower it or the sparsity.")
            budget = max(budget - reserved, 0)  # min_kept floors win over the budget
        names = list(units)
        keys = np.concatenate([np.where(chosen[n], -np.inf, units[n].unit_key) for n in names])
        sizes = np.concatenate([units[n].sizes() for n in names])
        picked = _top_units(keys, sizes, budget)
        offset = 0
        for name in names:
            count = len(units[name].unit_key)
            masks[name] = units[name].to_mask(chosen[name] | picked[offset:offset + count])
            offset += count
    # Never keep a weight that was not eligible (can only happen when the budget exceeds
    # the number of eligible weights, e.g. `within` with fewer survivors than the target).
    if within is not None:
        for name in units:
            if name in within:
                masks[name] = masks[name] * (np.asarray(within[name]) != 0).astype(np.float32)
    return {name: masks[name] for name in scores}


def _select_elements(keyed, density: float, scope: str, lowest: bool = False) -> "dict[str, np.ndarray]":
    """Masks of single-weight units without floors: the same choice as the general path (the
    highest keys, or with ``lowest`` the lowest, ties by position, ``round(n · density)`` of all
    n weights of a layer or of all layers), computed over the eligible (alive) weights only, so
    that iterative pruning (SynFlow's 100 rounds) does not pass over the weights it already
    removed; without ``within`` masks each mask is one comparison of a layer's keys with the
    threshold, written as float32 at once."""
    eligible = []  # (name, shape, flat indices of the alive weights or None, their keys)
    for name, key, alive in keyed:
        flat = key.reshape(-1)
        index = None if alive is None else np.flatnonzero(alive != 0)  # bool: numpy's fast nonzero
        eligible.append((name, key.shape, index, flat if index is None else flat[index]))

    def mask(shape, index, chosen):
        if index is None:
            return chosen.astype(np.float32, copy=False).reshape(shape)
        out = np.zeros(int(np.prod(shape)), np.float32)
        out[index[chosen.astype(bool, copy=False)]] = 1.0
        return out.reshape(shape)

    dtype = np.float32 if all(index is None for _, _, index, _ in eligible) else bool
    if scope == "layerwise":
        return {name: mask(shape, index, top([k], int(round(np.prod(shape) * density)), lowest, dtype)[0])
                for name, shape, index, k in eligible}
    budget = int(round(sum(int(np.prod(shape)) for _, shape, _, _ in eligible) * density))
    chosen = top([k for *_, k in eligible], budget, lowest, dtype)
    return {name: mask(shape, index, c) for (name, shape, index, _), c in zip(eligible, chosen)}


def _check_min_kept(min_kept) -> int:
    if not isinstance(min_kept, (int, np.integer)) or isinstance(min_kept, bool) or min_kept < 0:
        raise ValueError(f"min_kept: got {min_kept!r}; allowed: an integer >= 0.")
    return int(min_kept)

