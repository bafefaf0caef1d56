"""A weight-agnostic network: an acyclic graph over input, bias, hidden and output nodes.

Nodes are numbered in one fixed layout of ``M = n_inputs + 1 + max_hidden + n_outputs`` slots:
the inputs ``0 .. n_inputs - 1``, the bias node ``n_inputs`` (always 1), the hidden slots (in the
order they were created; the first ``n_hidden`` are in use) and the outputs last. A network is a
0/1 connection matrix ``conn[src, dst]`` over those slots (every connection carries the one shared
weight) and an activation per node (an index into :data:`~tfprune.wann.activations.ACTIVATIONS`;
inputs and bias are never activated). Inputs and bias only send, outputs only receive, and the
mutations (:mod:`tfprune.wann.mutation`) keep the graph acyclic. A hidden node's *depth* is the
length of the longest path from an input to it (1: fed by inputs only).

    >>> g = minimal(n_inputs=3, n_outputs=2, max_hidden=4, rng=np.random.default_rng(0), density=1.0)
    >>> g.conn.shape, g.n_connections, g.n_hidden
    ((10, 10), 8, 0)
"""
from __future__ import annotations

import dataclasses

import numpy as np

from tfprune import checks
from tfprune.wann import activations


@dataclasses.dataclass
class Genome:
    """One network. ``conn``: bool [M, M]; ``act``: int8 [M]; ``n_hidden``: hidden slots in use."""

    n_inputs: int
    n_outputs: int
    conn: np.ndarray
    act: np.ndarray
    n_hidden: int

    @property
    def max_hidden(self) -> int:
        return self.conn.shape[0] - self.n_inputs - 1 - self.n_outputs

    @property
    def first_hidden(self) -> int:
        return self.n_inputs + 1

    @property
    def first_output(self) -> int:
        return self.conn.shape[0] - self.n_outputs

    @property
    def hidden(self) -> np.ndarray:
        """Node numbers of the hidden nodes in use."""
        return np.arange(self.first_hidden, self.first_hidden + self.n_hidden)

    @property
    def n_connections(self) -> int:
        return int(self.conn.sum())

    def copy(self) -> "Genome":
        return Genome(self.n_inputs, self.n_outputs, self.conn.copy(), self.act.copy(), self.n_hidden)

    def depths(self) -> np.ndarray:
        """Depth (>= 1) of each hidden node in use, in slot order."""
        return hidden_depths(self.conn[None, self.first_hidden:self.first_output, self.first_hidden:self.first_output]
                             [:, :self.n_hidden, :self.n_hidden])[0]

    def activation_names(self) -> "list[str]":
        """The activation of each hidden node in use, by name."""
        return [activations.ACTIVATIONS[a] for a in self.act[self.hidden]]


def hidden_depths(hidden_conn: np.ndarray) -> np.ndarray:
    """Depths [P, H] of the hidden nodes of a stack of hidden-to-hidden matrices [P, H, H] (acyclic).

    Longest path from the inputs: ``d(j) = 1 + max(d(i) for i -> j)``, 1 without hidden
    predecessors; iterated to its fixed point (at most H rounds on an acyclic graph).
    """
    conn = hidden_conn.astype(bool)
    depth = np.ones(conn.shape[:2], np.int64)
    for _ in range(conn.shape[1] + 1):
        new = 1 + np.max(np.where(conn, depth[:, :, None], 0), axis=1, initial=0)
        if np.array_equal(new, depth):
            return depth
        depth = new
    raise ValueError("hidden_conn: the graph has a cycle; allowed: an acyclic graph.")


def is_acyclic(conn: np.ndarray) -> bool:
    """Whether the directed graph ``conn[src, dst]`` has no cycle (Kahn's algorithm)."""
    conn = np.asarray(conn, bool).copy()
    indegree = conn.sum(axis=0)
    ready = list(np.flatnonzero(indegree == 0))
    seen = 0
    while ready:
        node = ready.pop()
        seen += 1
        for dst in np.flatnonzero(conn[node]):
            indegree[dst] -= 1
            if indegree[dst] == 0:
                ready.append(dst)
    return seen == conn.shape[0]


def minimal(n_inputs: int, n_outputs: int, max_hidden: int, rng: np.random.Generator, density: float = 0.5,
            output_activation: str = "linear") -> Genome:
    """A network without hidden nodes: each input/bias -> output connection present with probability
    ``density`` (the paper's ``prob_initEnable``, 0.5), outputs activated by ``output_activation``."""
    n_inputs = checks.integer(n_inputs, "n_inputs", 1)
    n_outputs = checks.integer(n_outputs, "n_outputs", 1)
    max_hidden = checks.integer(max_hidden, "max_hidden", 0)
    density = checks.fraction(density, "density", closed_low=False, closed_high=True)
    m = n_inputs + 1 + max_hidden + n_outputs
    conn = np.zeros((m, m), bool)
    conn[:n_inputs + 1, m - n_outputs:] = rng.random((n_inputs + 1, n_outputs)) < density
    act = np.zeros(m, np.int8)
    act[m - n_outputs:] = activations.index(output_activation)
    return Genome(n_inputs, n_outputs, conn, act, 0)


def stack(genomes) -> "dict[str, np.ndarray]":
    """A population as arrays: ``conn`` bool [P, M, M], ``act`` int8 [P, M], ``n_hidden`` [P]."""
    genomes = list(genomes)
    return {"conn": np.stack([g.conn for g in genomes]), "act": np.stack([g.act for g in genomes]),
            "n_hidden": np.array([g.n_hidden for g in genomes], np.int64)}


def unstack(arrays, n_inputs: int, n_outputs: int) -> "list[Genome]":
    """The inverse of :func:`stack`."""
    return [Genome(n_inputs, n_outputs, np.array(c, bool), np.array(a, np.int8), int(h))
            for c, a, h in zip(arrays["conn"], arrays["act"], arrays["n_hidden"])]


def random_like(g: Genome, rng: np.random.Generator) -> Genome:
    """The random-mask baseline of ``g``: as many hidden units with the same activations (randomly
    re-assigned), and as many connections, drawn uniformly among the acyclic ones (input/bias/hidden
    -> later hidden/output, in slot order; the hidden slots are exchangeable, so this is a random
    order too); the output activations are kept."""
    out = Genome(g.n_inputs, g.n_outputs, np.zeros_like(g.conn), g.act.copy(), g.n_hidden)
    out.act[g.hidden] = rng.permutation(g.act[g.hidden])
    m = g.conn.shape[0]
    nodes = np.r_[np.arange(g.first_hidden + g.n_hidden), np.arange(g.first_output, m)]
    allowed = np.zeros_like(g.conn)
    allowed[np.ix_(nodes, nodes)] = True
    allowed &= np.triu(np.ones((m, m), bool), k=1)
    allowed[:, :g.first_hidden] = False
    allowed[g.first_output:, :] = False
    candidates = np.flatnonzero(allowed)
    if g.n_connections > len(candidates):
        raise ValueError(f"g: has {g.n_connections} connections; allowed: at most {len(candidates)} for its nodes.")
    out.conn.flat[rng.choice(candidates, g.n_connections, replace=False)] = True
    return out
