"""Genomes shared by the weight-agnostic network tests (tests/test_wann.py, the Keras 3 checks in
tests/wann_keras3_checks.py): the shared-weight values and a network grown by random mutations."""
import numpy as np

from tfprune.wann import activations, genome, mutation

W = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)


def grown(n_inputs=5, n_outputs=3, steps=40, seed=0, max_hidden=12, choices=None):
    """A network grown by ``steps`` random mutations from a minimal one (hidden nodes, skips)."""
    rng = np.random.default_rng(seed)
    g = genome.minimal(n_inputs, n_outputs, max_hidden, rng, density=0.5)
    choices = np.arange(len(activations.ACTIVATIONS)) if choices is None else choices
    for _ in range(steps):
        g, _ = mutation.mutate(g, rng, choices)
    return g
