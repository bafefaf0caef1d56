"""Channel-level allocation for structured pruning, through :func:`allocate`."""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from tfprune.allocation.elements import SCOPES, allocate, check_sparsity


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
