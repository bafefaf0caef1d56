"""Pictures of a search (matplotlib, Agg): the Pareto front per generation, and a network.

    >>> g = minimal(3, 2, max_hidden=2, rng=np.random.default_rng(0), density=1.0)
    >>> draw_network(g, "net.png")
    'net.png'
"""
from __future__ import annotations

import numpy as np

from tfprune.wann import activations, ranking
from tfprune.wann.genome import Genome, minimal  # noqa: F401  (minimal: the docstring's example)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_pareto(history, path: str, generations: int = 8, title: str = "WANN search") -> str:
    """The front of (mean accuracy over the shared weights, fewer connections) of ``generations``
    evenly spaced generations of ``history`` (:attr:`SearchResult.history`), one colour each."""
    plt = _pyplot()
    accuracy, connections = np.asarray(history["mean_accuracy"]), np.asarray(history["connections"])
    total = len(accuracy)
    chosen = np.unique(np.linspace(0, total - 1, min(generations, total)).round().astype(int)) if total else []
    fig, ax = plt.subplots(figsize=(6, 4))
    colours = plt.cm.viridis(np.linspace(0, 1, max(len(chosen), 1)))
    for colour, g in zip(colours, chosen):
        front = ranking.pareto_fronts(np.stack([accuracy[g], -connections[g]], axis=1))[0]
        order = front[np.argsort(connections[g][front])]
        ax.step(connections[g][order], accuracy[g][order], where="post", color=colour, marker="o", ms=3,
                label=f"generation {g + 1}")
    ax.set_xlabel("connections")
    ax.set_ylabel("mean accuracy over shared weights (batch)")
    ax.set_title(title)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def draw_network(g: Genome, path: str, title: str = "") -> str:
    """The connections of ``g``: inputs (those connected) on the left, hidden nodes by depth, outputs
    on the right; hidden nodes coloured by activation."""
    plt = _pyplot()
    depth = g.depths()
    last = int(depth.max(initial=0)) + 1
    used_inputs = [i for i in range(g.n_inputs + 1) if g.conn[i].any()]
    position = {}
    for rank_, node in enumerate(used_inputs):
        position[node] = (0.0, rank_ / max(len(used_inputs) - 1, 1))
    for d in range(1, last):
        nodes = g.hidden[depth == d]
        for rank_, node in enumerate(nodes):
            position[node] = (d / last, (rank_ + 0.5) / len(nodes))
    outputs = np.arange(g.first_output, g.conn.shape[0])
    for rank_, node in enumerate(outputs):
        position[node] = (1.0, rank_ / max(len(outputs) - 1, 1))
    fig, ax = plt.subplots(figsize=(8, 6))
    for src, dst in zip(*np.nonzero(g.conn)):
        (x0, y0), (x1, y1) = position[src], position[dst]
        ax.plot([x0, x1], [y0, y1], color="0.6", lw=0.4, alpha=0.6, zorder=1)
    colours = plt.cm.tab10(np.arange(len(activations.ACTIVATIONS)))
    for a, name in enumerate(activations.ACTIVATIONS):
        nodes = [n for n in g.hidden if g.act[n] == a]
        if nodes:
            ax.scatter(*zip(*(position[n] for n in nodes)), color=colours[a], s=30, zorder=2, label=name)
    if used_inputs:
        ax.scatter(*zip(*(position[n] for n in used_inputs)), color="black", s=6, zorder=2, label="input / bias")
    ax.scatter(*zip(*(position[n] for n in outputs)), color="red", marker="s", s=30, zorder=2, label="output")
    ax.set_axis_off()
    ax.set_title(title or f"{g.n_connections} connections, {g.n_hidden} hidden units")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
