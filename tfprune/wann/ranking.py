"""Ranking a population on several objectives by Pareto dominance (NSGA-II), as WANN does.

Every objective is maximised. ``a`` dominates ``b`` when it is at least as good on every objective
and better on one. The population is split into fronts (front 0: dominated by none; front k:
dominated only by fronts < k); within a front, larger crowding distance first (the sum over
objectives of the gap between the two neighbours, divided by the objective's range; the ends of
a front get infinity); remaining ties by index, so the ranking is deterministic.

WANN's objectives (Gaier & Ha 2019, and its reference implementation): mean fitness over the
shared weights, max fitness over them, and ``1 / connections``. Each generation ranks on
(mean, 1 / connections) with probability ``p_connections`` (0.8), else on (mean, max).

    >>> pareto_fronts(np.array([[1., 1.], [2., 0.], [0., 0.], [1., 0.]]))
    [array([0, 1]), array([3]), array([2])]
"""
from __future__ import annotations

import numpy as np


def dominates(objectives: np.ndarray) -> np.ndarray:
    """bool [P, P]: ``d[i, j]`` when row i dominates row j (objectives [P, k], maximised)."""
    a, b = objectives[:, None, :], objectives[None, :, :]
    return np.all(a >= b, axis=-1) & np.any(a > b, axis=-1)


def pareto_fronts(objectives) -> "list[np.ndarray]":
    """The fronts, best first, each a sorted array of row indices."""
    objectives = np.asarray(objectives, np.float64)
    if objectives.ndim != 2 or not np.isfinite(objectives).all():
        raise ValueError(f"objectives: got shape {objectives.shape} (finite values required); allowed: a finite "
                         "[population, objectives] array.")
    dom = dominates(objectives)
    left = np.ones(len(objectives), bool)
    fronts = []
    while left.any():
        dominated = (dom[left][:, left]).any(axis=0)
        front = np.flatnonzero(left)[~dominated]
        fronts.append(front)
        left[front] = False
    return fronts


def crowding_distance(values: np.ndarray) -> np.ndarray:
    """Crowding distance [n] of the points ``values`` [n, k] of one front."""
    n = len(values)
    distance = np.zeros(n)
    for column in values.T:
        order = np.argsort(column, kind="stable")
        span = column[order[-1]] - column[order[0]]
        distance[order[0]] = distance[order[-1]] = np.inf
        if n > 2 and span > 0:
            distance[order[1:-1]] += (column[order[2:]] - column[order[:-2]]) / span
    return distance


def rank(objectives) -> np.ndarray:
    """Row indices, best first: by front, then by crowding distance (larger first), then by index."""
    objectives = np.asarray(objectives, np.float64)
    order = []
    for front in pareto_fronts(objectives):
        crowd = crowding_distance(objectives[front])
        order.extend(front[np.lexsort((front, -crowd))])
    return np.array(order, np.int64)


def wann_objectives(mean, best, connections, rng: np.random.Generator, p_connections: float = 0.8) -> np.ndarray:
    """The two objectives of this generation: (mean, 1 / connections) with probability
    ``p_connections``, else (mean, max). A network without connections counts as one."""
    mean, best = np.asarray(mean, np.float64), np.asarray(best, np.float64)
    if rng.random() < p_connections:
        return np.stack([mean, 1.0 / np.maximum(np.asarray(connections, np.float64), 1.0)], axis=1)
    return np.stack([mean, best], axis=1)
