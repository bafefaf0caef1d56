"""Iterative element pruning over the alive weights only: :class:`Survivors`.

An iterative scorer (SynFlow's 100 rounds) prunes a little more each round and never revives a
weight. :func:`tfprune.allocation.allocate` with ``within=`` makes the same choice from dense
per-layer arrays, which costs several passes over *every* weight each round; here the state is
the alive weights' flat indices, a round reads only their keys and writes only what it drops,
so its cost falls with the density (the keys of 14.7M weights at 1% density are 147k numbers).

The choice is :func:`allocate`'s, bit for bit (``scope="global"`` or ``"layerwise"``, no
``block`` / ``min_density`` / ``min_kept``): keep the ``round(n · density)`` highest keys of
all ``n`` weights of the layers (or of each layer), ties by position (earlier layer, then lower
flat index, first). Here it is phrased as "drop the lowest": the weights dropped are those
below the highest dropped key ``t``, then the *last* (by position) of those equal to ``t``.
``t`` is found without sorting every key: a strided sample bounds it from above, one
comparison per alive key gathers the candidates at or below that bound, and only the
candidates are partitioned.
"""
from __future__ import annotations

from typing import Mapping, Optional

import numpy as np

_SAMPLE = 65536  # keys sampled to bound the threshold


class Survivors:
    """The alive weights of each layer, as ascending flat indices (``index[name]``; ``None``
    while a layer has lost nothing), and those dropped by the last :meth:`keep`
    (``dropped[name]``, ascending flat indices).

    Example:
        >>> s = Survivors({"a": (2, 2), "b": (2,)})
        >>> s.keep({"a": np.array([4., 1., 3., 0.]), "b": np.array([2., 5.])}, sparsity=0.5)
        >>> s.masks()["a"].tolist(), s.masks()["b"].tolist(), s.dropped["a"].tolist()
        ([[1.0, 0.0], [1.0, 0.0]], [0.0, 1.0], [1, 3])
    """

    def __init__(self, shapes: Mapping[str, tuple], within: Optional[Mapping[str, np.ndarray]] = None):
        self.shapes = {name: tuple(shape) for name, shape in shapes.items()}
        self.index = {name: None if within is None or name not in within
                      else np.flatnonzero(np.asarray(within[name]).reshape(-1) != 0) for name in self.shapes}
        self.dropped = {name: np.zeros(0, np.int64) for name in self.shapes}

    def size(self, name: str) -> int:
        return int(np.prod(self.shapes[name]))

    def alive(self, name: str) -> int:
        index = self.index[name]
        return self.size(name) if index is None else len(index)

    def gather(self, name: str, values: np.ndarray, copy: bool = False) -> np.ndarray:
        """``values`` (an array of the layer's shape) at the alive weights, in their order; a new
        array if ``copy`` (else perhaps a view of ``values``)."""
        flat = np.asarray(values).reshape(-1)
        index = self.index[name]
        if index is None:
            return flat.copy() if copy else flat
        return np.take(flat, index)

    def keep(self, keys: Mapping[str, np.ndarray], sparsity: float, scope: str = "global") -> None:
        """Keeps the highest ``keys`` (``{name: 1-D array}`` over each layer's alive weights, in
        :attr:`index` order; finite) for a ``sparsity`` of all weights (density ``1 - sparsity``,
        computed as allocate does), and drops the rest for good."""
        density = 1.0 - sparsity
        names = list(self.shapes)
        if scope == "layerwise":
            groups = [[name] for name in names]
        else:
            groups = [names]
        for group in groups:
            budget = int(round(sum(self.size(n) for n in group) * density))
            n_drop = sum(self.alive(n) for n in group) - budget
            drops = _lowest([np.asarray(keys[n]).reshape(-1) for n in group], n_drop)
            for name, positions in zip(group, drops):
                index = self.index[name]
                if index is None:
                    self.dropped[name] = positions
                    if len(positions):
                        self.index[name] = np.delete(np.arange(self.size(name)), positions)
                else:
                    self.dropped[name] = index[positions]
                    if len(positions):
                        self.index[name] = np.delete(index, positions)

    def masks(self) -> "dict[str, np.ndarray]":
        """``{name: float32 0/1 mask}`` of the alive weights."""
        out = {}
        for name, shape in self.shapes.items():
            index = self.index[name]
            if index is None:
                out[name] = np.ones(shape, np.float32)
                continue
            mask = np.zeros(self.size(name), np.float32)
            mask[index] = 1.0
            out[name] = mask.reshape(shape)
        return out


def _lowest(keys: "list[np.ndarray]", n_drop: int) -> "list[np.ndarray]":
    """Per array, the ascending positions of the ``n_drop`` lowest keys of all the arrays taken
    in order, ties at the highest dropped value resolved by dropping the last positions."""
    total = sum(len(k) for k in keys)
    if n_drop <= 0:
        return [np.zeros(0, np.int64) for _ in keys]
    if n_drop >= total:
        return [np.arange(len(k)) for k in keys]
    bound = _upper_bound(keys, n_drop, total)
    candidates = [np.flatnonzero(k <= bound) for k in keys]
    if sum(len(c) for c in candidates) < n_drop:  # the sample was unlucky: every key is a candidate
        candidates = [np.arange(len(k)) for k in keys]
    values = np.concatenate([k[c] for k, c in zip(keys, candidates)])
    t = np.partition(values, n_drop - 1)[n_drop - 1]  # the highest dropped key
    dropped = values < t
    ties = np.flatnonzero(values == t)
    dropped[ties[len(ties) - (n_drop - int(np.count_nonzero(dropped))):]] = True
    out, offset = [], 0
    for c in candidates:
        out.append(c[dropped[offset:offset + len(c)]])
        offset += len(c)
    return out


def _upper_bound(keys, n_drop: int, total: int) -> float:
    """A key value that at least ``n_drop`` keys are very likely at or below: a quantile of a
    strided sample, a little above the dropped fraction (a miss only costs a second pass)."""
    step = max(1, total // _SAMPLE)
    sample = np.concatenate([k[::step] for k in keys])
    q = n_drop / total
    margin = 0.002 + 4.0 * np.sqrt(q * (1.0 - q) / len(sample))
    if q + margin >= 1.0:
        return np.inf
    return float(np.quantile(sample, q + margin, method="higher"))
