"""Magnitude: score = |w| (at initialization, or of trained weights for lottery tickets)."""
import numpy as np

from tfprune.scoring.nets import kernel_values


def make_magnitude(model, data=None, loss=None, *, include=()):
    def score(masks=None):
        return {name: np.abs(value) for name, value in kernel_values(model, masks, include).items()}

    return score
