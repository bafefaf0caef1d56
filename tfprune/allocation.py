"""Allocation: scores + target sparsity + scope → 0/1 masks. The only place masks are made.

Pure numpy, no TensorFlow: every client (pruning at init, lottery tickets, sanity checks,
structured pruning, the Keras 3 path to come) goes through :func:`allocate`.

Rules
-----
* ``N`` = number of eligible weights (layers in ``exclude`` are kept dense and not counted;
  with ``within`` only weights still alive are eligible). Exactly ``k = round(N · density)``
  weights are kept with ``scope="global"`` (element-wise).
* ``scope="layerwise"`` keeps ``round(n_l · density)`` in each layer (the total can differ from
  ``k`` by the per-layer rounding).
* Ties are broken by position: earlier layer (model order) first, then lower flat index. The
  result is a deterministic function of the inputs.
* ``min_density``: every non-excluded layer keeps at least ``ceil(min_density · n_l)`` weights
  (its best ones); the rest of the budget is then ranked globally.
* ``block=(bh, bw)``: 2-D (Dense, Keras layout ``[in, out]``) kernels are pruned in blocks of
  ``bh × bw``; a block's score is the mean of its weights' scores. ``(4, 1)`` / ``(16, 1)``
  map to TFLite's 1x4 (float) / 1x16 (int8) sparse fully-connected kernels. Trailing partial
  blocks (an input dim that is not a multiple of ``bh``) are blocks of their own, smaller
  size; the exporter checks them. Counts are then exact to within one block.
* ``min_kept=k``: every non-excluded layer keeps at least its ``min(k, units)`` best units
  (weights, blocks or channels), whatever the scope; these floors come out of the global
  budget, and win over it when they alone exceed it.
* ``n_m=(N, M)``: N:M sparsity, see :func:`allocate` and :func:`n_m_report`. Each kernel is cut
  into groups of ``M`` consecutive weights along its **input-channel axis** (axis ``-2``: a
  Dense kernel ``[in, out]`` gives, for each output, groups of M consecutive inputs; a Conv
  kernel ``[..., C_in, C_out]`` gives groups along ``C_in`` for each output and tap; a 1-D
  array is grouped along its only axis), and every full group keeps exactly its ``N`` best
  weights. The pattern fixes the density, so ``sparsity`` must be ``None`` or ``1 - N/M``.
  **Trailing partial group** (``C_in`` not a multiple of M, ``r = C_in mod M`` weights): it
  keeps ``ceil(N·r/M)`` of its best weights. That is never more than ``N`` (so the group,
  zero-padded to M as TFLite / sparse tensor cores do, is still a valid N:M group), never more
  than ``r``, never zero (an input is never cut from every output by the rule alone), and the
  group's density is the smallest one ≥ N/M. For 2:4: ``C_in = 1`` keeps 1 of 1 (0% sparsity
  there: nothing else is possible without cutting the input), ``C_in = 2`` keeps 1 of 2 (50%),
  ``C_in = 3`` keeps 2 of 3 (33%), ``C_in = 6`` keeps 2 of 4 + 1 of 2 (50%). TF-MOT instead
  pads with zeros that count as pruned (C_in = 1, 2 → 0%; TF-MOT issue #1182).
  :func:`n_m_report` lists every layer where some group does not keep exactly N.
* :func:`allocate_channels`: the channel-level path used by structured pruning; it ranks
  1-D per-channel scores through :func:`allocate` (see there for its rules).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Mapping, Sequence

import numpy as np

SCOPES = ("global", "layerwise")


def check_sparsity(sparsity, argument: str = "sparsity") -> float:
    """``sparsity`` as a float in [0, 1), or a clear error."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise TypeError(f"{argument}: expected a number in [0, 1), got {sparsity!r}.") from None
    if not 0.0 <= value < 1.0 or math.isnan(value):
        raise ValueError(f"{argument}: got {sparsity!r}; allowed: a fraction of weights to prune in [0, 1) "
                         "(0.98 prunes 98% of the weights).")
    return value


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


def _top_units(keys: np.ndarray, sizes: np.ndarray, budget: int) -> np.ndarray:
    """Boolean selection of the best units (highest key first, ties by position) whose sizes
    add up to ``budget`` (element units: exactly; blocks: until the budget is reached)."""
    chosen = np.zeros(len(keys), bool)
    if budget <= 0 or len(keys) == 0:
        return chosen
    if np.all(sizes == 1):
        budget = min(budget, len(keys))
        # O(N) threshold over the eligible (finite) keys only: ineligible ones are -inf, and
        # long runs of equal values make numpy's introselect an order of magnitude slower.
        eligible = keys[keys > -np.inf]
        if budget <= len(eligible):
            threshold = np.partition(eligible, len(eligible) - budget)[len(eligible) - budget]
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
    unknown = [name for name in exclude if name not in scores]
    if unknown:
        raise ValueError(f"exclude: unknown layer name(s) {unknown}; prunable layers: {list(scores)}.")
    if not scores:
        raise ValueError("scores: empty; there is no prunable layer to allocate.")
    return list(exclude)


def _layer_keys(scores, keep, exclude, within):
    """Per layer, in order: ``(name, key, alive)`` for the layers to allocate, where ``key`` is
    the score oriented so that higher survives (-inf where ``within`` says the weight is gone)
    and ``alive`` the ``within`` mask (or None); excluded layers come back as all-ones masks."""
    dense, keyed = {}, []
    for name, score in scores.items():
        score = np.asarray(score, dtype=np.float64)
        bad = ~np.isfinite(score)
        if bad.any():
            raise FloatingPointError(f"scores: layer {name!r} has {int(bad.sum())} NaN/inf score(s); allowed: finite numbers.")
        if name in exclude:
            dense[name] = np.ones(score.shape, np.float32)
            continue
        key = score if keep == "highest" else -score
        alive = None
        if within is not None and name in within:
            alive = np.asarray(within[name]) != 0
            if alive.shape != score.shape:
                raise ValueError(f"within: mask of layer {name!r} has shape {alive.shape}, scores have {score.shape}.")
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
        return _allocate_n_m(scores, sparsity, scope=scope, keep=keep, exclude=exclude, min_density=min_density,
                             block=block, within=within, min_kept=min_kept, n_m=n_m)
    if sparsity is None:
        raise ValueError("sparsity: got None; pass a fraction of weights to prune in [0, 1), or n_m=(N, M) for N:M sparsity.")
    sparsity = check_sparsity(sparsity)
    min_kept = _check_min_kept(min_kept)
    exclude = _check_scope_keep_exclude(scores, scope, keep, exclude)
    if not 0.0 <= float(min_density) <= 1.0:
        raise ValueError(f"min_density: got {min_density!r}; allowed: a fraction in [0, 1].")
    block = _check_block(block)

    density = 1.0 - sparsity
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


def _check_min_kept(min_kept) -> int:
    if not isinstance(min_kept, (int, np.integer)) or isinstance(min_kept, bool) or min_kept < 0:
        raise ValueError(f"min_kept: got {min_kept!r}; allowed: an integer >= 0.")
    return int(min_kept)


# ----------------------------------------------------------------------------------- N:M
def check_n_m(n_m, argument: str = "n_m") -> "tuple[int, int]":
    """``n_m`` as a pair of ints ``(N, M)`` with ``1 <= N <= M``, or a clear error."""
    if (not isinstance(n_m, (tuple, list)) or len(n_m) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in n_m)
            or not 1 <= n_m[0] <= n_m[1]):
        raise ValueError(f"{argument}: got {n_m!r}; allowed: a pair (N, M) of ints with 1 <= N <= M, such as (2, 4).")
    return int(n_m[0]), int(n_m[1])


def partial_group_keep(n: int, m: int, r: int) -> int:
    """How many of the ``r`` weights of a trailing partial N:M group are kept: ``ceil(N·r/M)``.

    In ``[1, min(N, r)]`` for ``1 <= r < M``: the group padded to M stays a valid N:M group.

    Example:
        >>> [partial_group_keep(2, 4, r) for r in (1, 2, 3)]
        [1, 1, 2]
    """
    if r <= 0:
        return 0
    return min(n, r, -(-n * r // m))


def _group_axis(ndim: int) -> int:
    return 0 if ndim == 1 else ndim - 2


def _n_m_select(key: np.ndarray, n: int, m: int) -> np.ndarray:
    """Boolean mask keeping, in each group of ``m`` along the input axis, the best ``n`` keys
    (``partial_group_keep`` in the trailing partial group); ties by lower input index."""
    if key.ndim == 0:
        return np.ones((), bool)
    axis = _group_axis(key.ndim)
    moved = np.moveaxis(key, axis, -1)
    rows = moved.reshape(-1, moved.shape[-1])
    c_in = rows.shape[1]
    full, r = divmod(c_in, m)
    out = np.zeros(rows.shape, bool)

    def pick(block: np.ndarray, count: int) -> np.ndarray:
        # block: (..., g) → boolean of the `count` largest per last axis, stable by position.
        order = np.argsort(-block, axis=-1, kind="stable")[..., :count]
        chosen = np.zeros(block.shape, bool)
        np.put_along_axis(chosen, order, True, axis=-1)
        return chosen

    if full:
        out[:, :full * m] = pick(rows[:, :full * m].reshape(len(rows), full, m), n).reshape(len(rows), full * m)
    if r:
        out[:, full * m:] = pick(rows[:, full * m:], partial_group_keep(n, m, r))
    return np.moveaxis(out.reshape(moved.shape), -1, axis)


def check_n_m_options(n_m, sparsity=None, *, block=None, min_density=0.0, min_kept=0) -> "tuple[int, int]":
    """Validates ``n_m`` and the options it is combined with; returns ``(N, M)``."""
    n, m = check_n_m(n_m)
    if sparsity is not None:
        value = check_sparsity(sparsity)
        if abs(value - (1.0 - n / m)) > 1e-9:
            raise ValueError(f"sparsity: got {sparsity!r} with n_m={n_m!r}; an N:M pattern fixes the sparsity at "
                             f"1 - N/M = {1 - n / m:g}. Pass sparsity=None (or {1 - n / m:g}).")
    if block is not None:
        raise ValueError(f"block: got {block!r} with n_m={n_m!r}; use one pattern: block-sparse or N:M.")
    if float(min_density) > 0 or min_kept:
        raise ValueError("min_density / min_kept: not allowed with n_m; the N:M pattern already keeps N of every M "
                         "weights in every layer.")
    return n, m


def _allocate_n_m(scores, sparsity, *, scope, keep, exclude, min_density, block, within, min_kept, n_m):
    n, m = check_n_m_options(n_m, sparsity, block=block, min_density=min_density, min_kept=min_kept)
    exclude = _check_scope_keep_exclude(scores, scope, keep, exclude)
    masks, keyed = _layer_keys(scores, keep, exclude, within)
    for name, key, alive in keyed:
        chosen = _n_m_select(key, n, m)
        if alive is not None:
            chosen &= alive
        masks[name] = chosen.astype(np.float32)
    return {name: masks[name] for name in scores}


@dataclasses.dataclass(frozen=True)
class NMLayer:
    """N:M summary of one mask: input channels, groups, and the groups that do not keep N."""

    name: str
    shape: tuple
    in_channels: int
    full_groups: int          # per output (and tap): C_in // M
    partial_size: int         # r = C_in mod M (0: none)
    partial_kept: "tuple[int, ...]"   # distinct kept counts seen in the partial groups
    off_full: int             # full groups (over all outputs/taps) with a kept count != N
    over_n: int               # groups (full or partial) with more than N kept: invalid for N:M hardware
    sparsity: float

    @property
    def exact(self) -> bool:
        """Every group keeps exactly N (so no partial group and no deviating full group)."""
        return self.partial_size == 0 and self.off_full == 0

    @property
    def valid(self) -> bool:
        """Every group keeps at most N: the mask runs on N:M hardware (partial groups zero-padded)."""
        return self.over_n == 0


@dataclasses.dataclass(frozen=True)
class NMReport:
    """Per-layer N:M check of masks; ``str()`` is a table, ``to_dict()`` for JSON.

    ``notes`` lists, in words, every layer where some group does not keep exactly N: a trailing
    partial group (its size and what it keeps) or full groups with fewer/more than N kept
    (e.g. after ``within``, or for masks made elsewhere).
    """

    n: int
    m: int
    layers: "tuple[NMLayer, ...]"

    @property
    def exact(self) -> bool:
        return all(layer.exact for layer in self.layers)

    @property
    def valid(self) -> bool:
        return all(layer.valid for layer in self.layers)

    @property
    def notes(self) -> "list[str]":
        out = []
        for layer in self.layers:
            if layer.partial_size:
                kept = "/".join(str(k) for k in layer.partial_kept)
                out.append(f"{layer.name}: C_in={layer.in_channels} is not a multiple of {self.m}; its trailing partial "
                           f"group of {layer.partial_size} input(s) keeps {kept} (rule ceil(N·r/M) = "
                           f"{partial_group_keep(self.n, self.m, layer.partial_size)}) instead of {self.n} of {self.m}")
            if layer.off_full:
                out.append(f"{layer.name}: {layer.off_full} full group(s) of {self.m} do not keep exactly {self.n}")
            if layer.over_n:
                out.append(f"{layer.name}: {layer.over_n} group(s) keep more than {self.n}: NOT a valid "
                           f"{self.n}:{self.m} pattern")
        return out

    def to_dict(self) -> dict:
        return {"n": self.n, "m": self.m, "exact": self.exact, "valid": self.valid, "notes": self.notes,
                "layers": [dict(dataclasses.asdict(layer), shape=list(layer.shape), partial_kept=list(layer.partial_kept),
                                exact=layer.exact, valid=layer.valid) for layer in self.layers]}

    def __str__(self) -> str:
        header = f"{'layer':<24} {'shape':<20} {'C_in':>6} {'groups':>7} {'partial':>9} {'sparsity':>9}  note"
        lines = [f"N:M = {self.n}:{self.m} along the input-channel axis", header, "-" * len(header)]
        for layer in self.layers:
            note = "exact" if layer.exact else ("partial group" if layer.valid and not layer.off_full else
                                                 ("INVALID" if not layer.valid else "off-N full groups"))
            part = f"{'/'.join(map(str, layer.partial_kept))} of {layer.partial_size}" if layer.partial_size else "-"
            lines.append(f"{layer.name:<24} {str(layer.shape):<20} {layer.in_channels:>6} {layer.full_groups:>7} "
                         f"{part:>9} {layer.sparsity:>9.4f}  {note}")
        lines.extend("note: " + note for note in self.notes)
        return "\n".join(lines)


def n_m_report(masks: Mapping[str, np.ndarray], n_m) -> NMReport:
    """Checks 0/1 ``masks`` against the N:M pattern (groups along the input-channel axis).

    Example:
        >>> masks = allocate({"conv": np.random.rand(3, 3, 3, 8)}, None, n_m=(2, 4))
        >>> report = n_m_report(masks, (2, 4))
        >>> report.valid, report.exact   # C_in = 3: a partial group of 3 keeping 2
        (True, False)
    """
    n, m = check_n_m(n_m)
    rows = []
    for name, mask in masks.items():
        mask = np.asarray(mask) != 0
        if mask.ndim == 0:
            continue
        axis = _group_axis(mask.ndim)
        rows_ = np.moveaxis(mask, axis, -1).reshape(-1, mask.shape[axis])
        c_in = rows_.shape[1]
        full, r = divmod(c_in, m)
        kept_full = rows_[:, :full * m].reshape(len(rows_), full, m).sum(-1) if full else np.zeros((len(rows_), 0), int)
        kept_part = rows_[:, full * m:].sum(-1) if r else np.zeros(0, int)
        over = int((kept_full > n).sum()) + int((kept_part > n).sum())
        rows.append(NMLayer(name, tuple(mask.shape), c_in, full, r, tuple(sorted({int(k) for k in kept_part})),
                            int((kept_full != n).sum()), over, 1.0 - float(mask.mean()) if mask.size else 0.0))
    return NMReport(n, m, tuple(rows))


# ---------------------------------------------------------------------------- channels
def allocate_channels(scores: Mapping[str, np.ndarray], ratio, *, scope: str = "layerwise", keep: str = "highest",
                      exclude: Sequence[str] = (), sizes: "Mapping[str, float | np.ndarray] | None" = None,
                      min_kept: int = 1) -> "dict[str, np.ndarray]":
    """Channel-level allocation: ``{group: 1-D channel scores}`` → ``{group: 1-D 0/1 keep mask}``.

    A *group* is a layer's output channels, or several layers' channels that must be removed
    together (a residual ``Add``); a channel's score is its elements' scores summed
    (:func:`tfprune.structured.pool_channel_scores`). Everything goes through :func:`allocate`.

    Rules:
        * ``ratio`` is the fraction of **channels** removed. A float applies to every group; a
          dict ``{group: ratio}`` gives per-group ratios (groups not in it keep every channel;
          this is per-group, so ``scope`` must be ``"layerwise"``).
        * ``scope="layerwise"``: each group keeps ``round(C · (1 - ratio))`` channels, at least
          ``min_kept``.
        * ``scope="global"``: the channels of all groups are ranked together by their **mean**
          element score, ``score / sizes[group]`` (``sizes``: per group, a number or a 1-D array: the
          number of weights pooled into each channel's score). A pooled *sum* grows with the fan-in, so ranking sums would
          empty narrow layers first (the first conv has 9·C_in weights per filter, a deep one
          9·256); the mean is a per-weight importance that compares across layers. The budget
          is counted in channels, so ``ratio`` means the same in both scopes: exactly
          ``round(ΣC · (1 - ratio))`` channels are kept, at least ``min_kept`` per group
          (taken from the budget; more are kept only if these floors alone exceed it).
          Without ``sizes``, the scores are ranked as given.
        * Ties: earlier group, then lower channel index (as :func:`allocate`).

    Example:
        >>> keep = allocate_channels({"conv1": np.array([3., 1., 2., 0.])}, 0.5)
        >>> keep["conv1"].tolist()
        [1.0, 0.0, 1.0, 0.0]
    """
    if scope not in SCOPES:
        raise ValueError(f"scope: got {scope!r}; allowed: {', '.join(SCOPES)}.")
    for name, value in scores.items():
        if np.ndim(value) != 1:
            raise ValueError(f"scores: group {name!r} has shape {np.shape(value)}; channel allocation expects 1-D "
                             "per-channel scores (pool element scores with tfprune.structured.pool_channel_scores).")
    if isinstance(ratio, Mapping):
        if scope != "layerwise":
            raise ValueError("ratio: per-group ratios (a dict) need scope='layerwise'; a global ranking takes one ratio.")
        unknown = [name for name in ratio if name not in scores]
        if unknown:
            raise ValueError(f"ratio: unknown group(s) {unknown}; groups: {list(scores)}.")
        out = {}
        for name, value in scores.items():
            group_ratio = check_sparsity(ratio.get(name, 0.0), f"ratio[{name!r}]")
            excluded = [name] if name in exclude else []
            out[name] = allocate({name: value}, group_ratio, scope="layerwise", keep=keep, exclude=excluded,
                                 min_kept=min_kept)[name]
        return out
    ratio = check_sparsity(ratio, "ratio")
    if scope == "global" and sizes is not None:
        missing = [name for name in scores if name not in sizes]
        if missing:
            raise ValueError(f"sizes: missing group(s) {missing}.")
        bad = [name for name in scores if not np.all(np.asarray(sizes[name], np.float64) > 0)]
        if bad:
            raise ValueError(f"sizes: group(s) {bad} have a non-positive size.")
        scores = {name: np.asarray(value, np.float64) / np.asarray(sizes[name], np.float64)
                  for name, value in scores.items()}
    return allocate(scores, ratio, scope=scope, keep=keep, exclude=exclude, min_kept=min_kept)
