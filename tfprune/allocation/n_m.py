"""N:M allocation (N of every M consecutive weights along the input-channel axis) and its report;
the rules are in the :mod:`tfprune.allocation` docstring."""
from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from tfprune.allocation.elements import _check_scope_keep_exclude, _layer_keys, check_sparsity
from tfprune.table import table


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
        rows = []
        for layer in self.layers:
            note = "exact" if layer.exact else ("partial group" if layer.valid and not layer.off_full else
                                                 ("INVALID" if not layer.valid else "off-N full groups"))
            part = f"{'/'.join(map(str, layer.partial_kept))} of {layer.partial_size}" if layer.partial_size else "-"
            rows.append([layer.name, str(layer.shape), layer.in_channels, layer.full_groups, part,
                         f"{layer.sparsity:.4f}", note])
        body = table(["layer", "shape", "C_in", "groups", "partial", "sparsity", "note"], rows, align="<<>>>>")
        return "\n".join([f"N:M = {self.n}:{self.m} along the input-channel axis", body]
                         + ["note: " + note for note in self.notes])


def n_m_report(masks: Mapping[str, np.ndarray], n_m) -> NMReport:
    """Checks 0/1 ``masks`` against the N:M pattern (groups along the input-channel axis).

    Example:
        >>> from tfprune.allocation import allocate
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

