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

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Mapping, Optional

import numpy as np

_SAMPLE = 65536  # keys sampled to bound the threshold
THREADS = min(4, os.cpu_count() or 1)  # threads of each_layer and of the compaction
_PARALLEL = 1 << 20  # alive weights from which they are used
_POOL = []


def _pool() -> ThreadPoolExecutor:
    if not _POOL:
        _POOL.append(ThreadPoolExecutor(THREADS, thread_name_prefix="tfprune-survivors"))
    return _POOL[0]


class Survivors:
    """The alive weights of the layers ``shapes`` (``{name: shape}``, in order).

    ``index[name]``: the layer's alive flat indices (ascending); ``dropped[name]``: those the
    last :meth:`keep` dropped (at first: the weights ``within`` masks out). Both are views of
    one array over all layers, :attr:`flat`, split by :attr:`bounds`. The arrays a round needs
    are allocated once and reused (fresh large arrays cost a page fault per 4 KiB each round).

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
        n = len(self.flat)
        self._spare = np.empty(n, np.int64)  # the compaction writes here, then the two swap
        self._kept, self._keys, self._scratch = np.empty(n, bool), np.empty(n), {}

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

    def each_layer(self, fn, scratch_dtype=np.float64) -> np.ndarray:
        """float64 keys over the alive weights, filled by ``fn(name, index, out, scratch)`` for every
        layer (``index``: the layer's alive flat indices; ``out``: its part of the keys; ``scratch``:
        an array of ``scratch_dtype`` as long, to use freely). The keys are a view of a buffer that
        the next call overwrites. The layers run on :data:`THREADS` threads when there are many
        alive weights (numpy releases the GIL)."""
        n = len(self.flat)
        dtype = np.dtype(scratch_dtype)
        if dtype not in self._scratch:
            self._scratch[dtype] = np.empty(len(self._keys), dtype)
        out, scratch = self._keys[:n], self._scratch[dtype][:n]

        def layer(i):
            lo, hi = self.bounds[i], self.bounds[i + 1]
            fn(self.names[i], self.flat[lo:hi], out[lo:hi], scratch[lo:hi])
        self._each(layer)
        return out

    def _each(self, fn) -> None:
        """``fn(i)`` for every layer ``i``: largest first on :data:`THREADS` threads when there are
        many alive weights, else in order."""
        if THREADS > 1 and len(self.flat) >= _PARALLEL:
            list(_pool().map(fn, sorted(range(len(self.names)), key=lambda i: self.bounds[i] - self.bounds[i + 1])))
        else:
            for i in range(len(self.names)):
                fn(i)

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
            drops.append(lo + _lowest(keys[lo:hi], (hi - lo) - budget, self._kept[lo:hi]))
        drop = np.concatenate(drops) if len(drops) > 1 else drops[0]
        self._dropped = self.flat[drop]
        self._dropped_bounds = np.searchsorted(drop, self.bounds)
        if len(drop):
            kept = self._kept[:len(self.flat)]
            kept.fill(True)
            kept[drop] = False
            bounds = self.bounds - self._dropped_bounds
            flat = self._spare[:bounds[-1]]

            def compact(i):
                lo, hi = self.bounds[i], self.bounds[i + 1]
                flat[bounds[i]:bounds[i + 1]] = self.flat[lo:hi][kept[lo:hi]]
            self._each(compact)
            self._spare = self.flat.base if self.flat.base is not None else self.flat
            self.flat, self.bounds = flat, bounds

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


def _lowest(keys: np.ndarray, n_drop: int, scratch: "np.ndarray | None" = None) -> np.ndarray:
    """The ascending positions of the ``n_drop`` lowest ``keys``, ties at the highest dropped
    value resolved by dropping the last positions (``scratch``: a bool array as long as ``keys``
    to reuse)."""
    total = len(keys)
    if n_drop <= 0:
        return np.zeros(0, np.int64)
    if n_drop >= total:
        return np.arange(total, dtype=np.int64)
    below = np.less_equal(keys, _upper_bound(keys, n_drop), out=scratch)
    candidates = np.flatnonzero(below)
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
