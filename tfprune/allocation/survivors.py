"""Iterative element pruning over the alive weights only: :class:`Survivors`.

An iterative scorer (SynFlow's 100 rounds) prunes a little more each round and never revives a
weight. :func:`tfprune.allocation.allocate` with ``within=`` makes the same choice from dense
per-layer arrays, which costs several passes over *every* weight each round; here the state is
the alive weights' flat indices, a round reads only their keys and writes only what it drops,
so its cost falls with the density (the keys of 14.7M weights at 1% density are 147k numbers).

The state is **one** array for all layers: each layer's ascending flat indices of its alive
weights, the layers one after another (``bounds`` splits it), so that a round is a few numpy
passes over one array whatever the number of layers. A key array is aligned with it: one key
per alive weight, in that order.

The choice is :func:`allocate`'s, bit for bit (``scope="global"`` or ``"layerwise"``, no
``block`` / ``min_density`` / ``min_kept``): keep the ``round(n · density)`` highest keys of
all ``n`` weights of the layers (or of each layer), ties by position (earlier layer, then lower
flat index, first) — which is the order of the alive array. Here it is phrased as "drop the
lowest": the weights dropped are those below the highest dropped key ``t``, then the *last*
(by position) of those equal to ``t``. ``t`` is found without sorting every key: a strided
sample bounds it from above, one comparison per alive key gathers the candidates at or below
that bound, and only the candidates are partitioned.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

_SAMPLE = 65536  # keys sampled to bound the threshold


class Survivors:
    """The alive weights of the layers ``shapes`` (``{name: shape}``, in order).

    ``index[name]``: the layer's alive flat indices (ascending); ``dropped[name]``: those the
    last :meth:`keep` dropped (at first: the weights ``within`` masks out). Both are views of
    one array over all layers, :attr:`flat`, split by :attr:`bounds`.

    Example:
        >>> s = Survivors({"a": (2, 2), "b": (2,)})
        >>> s.keep(np.array([4., 1., 3., 0., 2., 5.]), sparsity=0.5)     # keys of a, then b
        >>> s.masks()["a"].tolist(), s.masks()["b"].tolist(), s.dropped["a"].tolist()
        ([[1.0, 0.0], [1.0, 0.0]], [0.0, 1.0], [1, 3])
    """

    def __init__(self, shapes: Mapping[str, tuple], within: Optional[Mapping[str, np.ndarray]] = None):
        self.shapes = {name: tuple(shape) for name, shape in shapes.items()}
        self.names = list(self.shapes)
        within = within or {}
        alive, dead = [], []
        for name in self.names:
            if name in within:
                flat = np.asarray(within[name]).reshape(-1) != 0
                alive.append(np.flatnonzero(flat))
                dead.append(np.flatnonzero(~flat))
            else:
                alive.append(np.arange(self.size(name), dtype=np.int64))
                dead.append(np.zeros(0, np.int64))
        self.flat, self.bounds = _join(alive)
        self._dropped, self._dropped_bounds = _join(dead)

    @property
    def index(self) -> "dict[str, np.ndarray]":
        return _split(self.names, self.flat, self.bounds)

    @property
    def dropped(self) -> "dict[str, np.ndarray]":
        return _split(self.names, self._dropped, self._dropped_bounds)

    def size(self, name: str) -> int:
        return int(np.prod(self.shapes[name]))

    def gather(self, name: str, values: np.ndarray) -> np.ndarray:
        """``values`` (an array of the layer's shape) at the layer's alive weights, a new array."""
        i = self.names.index(name)
        return np.take(np.asarray(values).reshape(-1), self.flat[self.bounds[i]:self.bounds[i + 1]])

    def gather_all(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """``values`` (``{name: array of the layer's shape}``, one dtype) at every alive weight, in
        order, as one new array."""
        values = [np.asarray(values[name]).reshape(-1) for name in self.names]
        out = np.empty(len(self.flat), values[0].dtype if values else np.float64)
        for i, flat in enumerate(values):
            lo, hi = self.bounds[i], self.bounds[i + 1]
            np.take(flat, self.flat[lo:hi], out=out[lo:hi], mode="clip")  # indices in range: no buffering
        return out

    def split(self, keys: np.ndarray) -> "dict[str, np.ndarray]":
        """A key array (one key per alive weight, in order) as ``{name: the layer's keys}`` (views)."""
        return _split(self.names, keys, self.bounds)

    def keep(self, keys, sparsity: float, scope: str = "global") -> None:
        """Keeps the highest ``keys`` (one finite key per alive weight, in :attr:`flat` order; or
        ``{name: the layer's keys}``) for a ``sparsity`` of all weights (density ``1 - sparsity``,
        computed as allocate does), and drops the rest for good."""
        if isinstance(keys, Mapping):
            keys = np.concatenate([np.asarray(keys[n], np.float64).reshape(-1) for n in self.names])
        density = 1.0 - sparsity
        groups = [[i] for i in range(len(self.names))] if scope == "layerwise" else [list(range(len(self.names)))]
        drops = []
        for group in groups:
            lo, hi = self.bounds[group[0]], self.bounds[group[-1] + 1]
            budget = int(round(sum(self.size(self.names[i]) for i in group) * density))
            drops.append(lo + _lowest(keys[lo:hi], (hi - lo) - budget))
        drop = np.concatenate(drops) if len(drops) > 1 else drops[0]
        self._dropped = self.flat[drop]
        self._dropped_bounds = np.searchsorted(drop, self.bounds)
        if len(drop):
            kept = np.ones(len(self.flat), bool)
            kept[drop] = False
            self.flat = self.flat[kept]
            self.bounds = self.bounds - self._dropped_bounds

    def masks(self) -> "dict[str, np.ndarray]":
        """``{name: float32 0/1 mask}`` of the alive weights."""
        out = {}
        for name, index in self.index.items():
            mask = np.zeros(self.size(name), np.float32)
            mask[index] = 1.0
            out[name] = mask.reshape(self.shapes[name])
        return out


def _join(arrays) -> "tuple[np.ndarray, np.ndarray]":
    bounds = np.concatenate([[0], np.cumsum([len(a) for a in arrays], dtype=np.int64)]).astype(np.int64)
    return (np.concatenate(arrays).astype(np.int64, copy=False) if arrays else np.zeros(0, np.int64)), bounds


def _split(names, values, bounds) -> "dict[str, np.ndarray]":
    return {name: values[bounds[i]:bounds[i + 1]] for i, name in enumerate(names)}


def _lowest(keys: np.ndarray, n_drop: int) -> np.ndarray:
    """The ascending positions of the ``n_drop`` lowest ``keys``, ties at the highest dropped
    value resolved by dropping the last positions."""
    total = len(keys)
    if n_drop <= 0:
        return np.zeros(0, np.int64)
    if n_drop >= total:
        return np.arange(total, dtype=np.int64)
    candidates = np.flatnonzero(keys <= _upper_bound(keys, n_drop))
    if len(candidates) < n_drop:  # the sample was unlucky: every key is a candidate
        candidates = np.arange(total, dtype=np.int64)
    values = keys[candidates]
    t = np.partition(values, n_drop - 1)[n_drop - 1]  # the highest dropped key
    dropped = values < t
    ties = np.flatnonzero(values == t)
    dropped[ties[len(ties) - (n_drop - int(np.count_nonzero(dropped))):]] = True
    return candidates[dropped]


def _upper_bound(keys: np.ndarray, n_drop: int) -> float:
    """A key value that at least ``n_drop`` keys are very likely at or below: an order statistic
    of a strided sample, a little above the dropped fraction (a miss only costs a second pass)."""
    total = len(keys)
    sample = keys[::max(1, total // _SAMPLE)].copy()
    q = n_drop / total
    margin = 0.002 + 4.0 * np.sqrt(q * (1.0 - q) / len(sample))
    if q + margin >= 1.0:
        return np.inf
    k = int(np.ceil((q + margin) * (len(sample) - 1)))
    return float(np.partition(sample, k)[k])
