"""Random pruning: i.i.d. uniform scores, ranked like any other (expected equal layer density
under global ranking). Same seed → the same scores, drawn layer by layer in model order."""
import numpy as np

from tfprune import checks
from tfprune.scoring import nets


def make_random(model, data=None, loss=None, *, seed=None, include=()):
    seed = checks.seed(seed)
    shapes = nets.kernel_shapes(model, include)

    def score(masks=None):
        rng = np.random.default_rng(seed)
        return {name: rng.random(shape) for name, shape in shapes.items()}

    return score
