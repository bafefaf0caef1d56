"""The three mutations of a weight-agnostic network; each keeps the graph acyclic.

* :func:`add_connection`: a new connection, uniformly among all absent ones that keep the graph
  acyclic (from an input, the bias or a hidden node to a hidden or output node that cannot
  already reach the source).
* :func:`insert_node`: an existing connection ``a -> b``, chosen uniformly, is replaced by
  ``a -> new -> b``; the new hidden node gets a random activation.
* :func:`change_activation`: a hidden node, chosen uniformly, gets another activation.

:func:`mutate` makes exactly one of them on a copy, chosen with the given probabilities among the
ones that are possible (no activation to change without hidden nodes, no node to insert when the
hidden slots are full, ...), as the reference implementation forces one topological change.
"""
from __future__ import annotations

import numpy as np

from tfprune.wann.genome import Genome

#: Default probabilities (Gaier & Ha's ``prob_mutAct`` 0.5, ``prob_addNode`` 0.25,
#: ``prob_addConn`` 0.2 + ``prob_enable`` 0.05: this search never disables a connection).
PROBABILITIES = {"change_activation": 0.5, "insert_node": 0.25, "add_connection": 0.25}


def _reach(hidden_conn: np.ndarray) -> np.ndarray:
    """``reach[i, j]``: hidden node j is reachable from i (a path of length >= 0)."""
    reach = hidden_conn | np.eye(len(hidden_conn), dtype=bool)
    while True:
        new = reach | ((reach.astype(np.int32) @ reach.astype(np.int32)) > 0)
        if np.array_equal(new, reach):
            return reach
        reach = new


def allowed_connections(g: Genome) -> np.ndarray:
    """bool [M, M]: the absent connections :func:`add_connection` may add."""
    m = g.conn.shape[0]
    sources = np.zeros(m, bool)
    sources[:g.first_hidden + g.n_hidden] = True
    targets = np.zeros(m, bool)
    targets[g.first_hidden:g.first_hidden + g.n_hidden] = True
    targets[g.first_output:] = True
    ok = sources[:, None] & targets[None, :] & ~g.conn
    h = g.hidden
    if len(h):
        reach = _reach(g.conn[np.ix_(h, h)])          # j reaches i: i -> j would close a cycle
        ok[np.ix_(h, h)] &= ~reach.T
    return ok


def add_connection(g: Genome, rng: np.random.Generator) -> bool:
    """Adds one allowed connection in place; False if none is left."""
    candidates = np.flatnonzero(allowed_connections(g))
    if not len(candidates):
        return False
    src, dst = divmod(int(candidates[rng.integers(len(candidates))]), g.conn.shape[0])
    g.conn[src, dst] = True
    return True


def insert_node(g: Genome, rng: np.random.Generator, choices) -> bool:
    """Splits a random connection with a new hidden node (activation from ``choices``); False when
    the hidden slots are full or there is no connection."""
    edges = np.flatnonzero(g.conn)
    if g.n_hidden >= g.max_hidden or not len(edges):
        return False
    src, dst = divmod(int(edges[rng.integers(len(edges))]), g.conn.shape[0])
    new = g.first_hidden + g.n_hidden
    g.conn[src, dst] = False
    g.conn[src, new] = g.conn[new, dst] = True
    g.act[new] = choices[rng.integers(len(choices))]
    g.n_hidden += 1
    return True


def change_activation(g: Genome, rng: np.random.Generator, choices) -> bool:
    """Gives a random hidden node another activation from ``choices``; False without hidden nodes
    (or with a single choice)."""
    if not g.n_hidden or len(choices) < 2:
        return False
    node = g.first_hidden + int(rng.integers(g.n_hidden))
    others = [c for c in choices if c != g.act[node]]
    g.act[node] = others[rng.integers(len(others))]
    return True


def possible(g: Genome, choices) -> "dict[str, bool]":
    return {"change_activation": g.n_hidden > 0 and len(choices) > 1,
            "insert_node": g.n_hidden < g.max_hidden and bool(g.conn.any()),
            "add_connection": bool(allowed_connections(g).any())}


def mutate(g: Genome, rng: np.random.Generator, choices, probabilities=None) -> "tuple[Genome, str | None]":
    """A mutated copy of ``g`` and the name of the mutation made (None: none was possible).

    ``choices``: activation indices for new or changed hidden nodes.
    """
    probabilities = dict(PROBABILITIES if probabilities is None else probabilities)
    child = g.copy()
    can = possible(child, choices)
    names = [n for n in PROBABILITIES if can[n] and probabilities.get(n, 0) > 0]
    if not names:
        return child, None
    p = np.array([probabilities[n] for n in names], np.float64)
    name = names[int(rng.choice(len(names), p=p / p.sum()))]
    if name == "add_connection":
        add_connection(child, rng)
    elif name == "insert_node":
        insert_node(child, rng, choices)
    else:
        change_activation(child, rng, choices)
    return child, name
