"""The exact top-k of several key arrays together, without sorting or copying all of them: the
selection behind element allocation (:func:`tfprune.allocation.allocate`)."""
from __future__ import annotations

import math

import numpy as np

SAMPLE = 1 << 16  # keys in the strided sample that bounds a threshold from below


def threshold(keys: "list[np.ndarray]", budget: int, lowest: bool = False):
    """The ``budget``-th highest (``lowest``: lowest) of the finite 1-D ``keys`` together
    (0 < budget < their count).

    Exact: a strided sample of about 65k keys gives a bound (its rank is the budget's share of
    the sample plus a 4-sigma margin); the keys on the budget's side of it are gathered and
    partitioned, unless fewer than ``budget`` of them are, and then every key is."""
    total = sum(len(k) for k in keys)
    stride = total // SAMPLE
    if stride > 1:
        sample = np.concatenate([k[::stride] for k in keys])
        expected = budget * len(sample) / total
        rank = min(len(sample), int(expected + 4.0 * math.sqrt(expected)) + 16)
        at = rank - 1 if lowest else len(sample) - rank
        sample.partition(at)
        bound = sample[at]
        candidates = np.concatenate([k[k <= bound] if lowest else k[k >= bound] for k in keys])
        if len(candidates) >= budget:
            at = budget - 1 if lowest else len(candidates) - budget
            candidates.partition(at)
            return candidates[at]
    every = np.concatenate(keys)  # a copy, partitioned in place
    at = budget - 1 if lowest else total - budget
    every.partition(at)
    return every[at]


def top(keys: "list[np.ndarray]", budget: int, lowest: bool = False, dtype=bool) -> "list[np.ndarray]":
    """Per array of ``keys`` (1-D, finite, in ranking order), the selection (1/True: kept, in
    ``dtype``) of the ``budget`` highest (``lowest``: lowest) keys of all of them together, ties
    by position (the first array first)."""
    total = sum(len(k) for k in keys)
    if budget >= total or budget <= 0:
        return [np.full(len(k), budget > 0, dtype) for k in keys]
    cut = threshold(keys, budget, lowest)
    beyond = np.less if lowest else np.greater
    chosen = [beyond(k, cut, out=np.empty(len(k), dtype)) for k in keys]
    missing = budget - sum(int(np.count_nonzero(c)) for c in chosen)
    for k, c in zip(keys, chosen):  # then the first (by position) of the keys tied at the threshold
        if missing <= 0:
            break
        tied = np.flatnonzero(k == cut)[:missing]
        c[tied] = 1
        missing -= len(tied)
    return chosen
