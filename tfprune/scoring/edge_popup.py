"""Edge-popup (Ramanujan et al. 2020, "What's hidden in a randomly weighted neural network?").

The weights stay at their initial values θ0. Each weight has a real score ``s``; the forward
pass keeps the weights whose ``|s|`` is in the top ``1 - sparsity`` — of each layer
(``scope="layerwise"``, the paper's choice) or of the whole network (``"global"``), made by
:func:`tfprune.allocation.allocate` like every mask — and the scores learn by SGD with momentum,
the gradient reaching every score straight through the top-k of ``|s|``:
``∂L/∂s = ∂L/∂(θ0 ⊙ m) ⊙ θ0 ⊙ sign(s)`` plus weight decay ``wd · s`` (see :mod:`._mask_search`). Scores start Kaiming-uniform as in the
paper's code, ``U(-1/√fan_in, 1/√fan_in)``; with ``scope="global"`` every layer starts at the
smallest of these scales: per-layer scales would make the first global top-k keep the layers
with the smallest fan-in and empty the widest one (LeNet-300-100 at 98%: fc1 kept nothing, 10%
test accuracy). The returned scores are ``|s|``: allocating them at the same sparsity and scope
gives the mask of the last step.
"""
import numpy as np

from tfprune import checks
from tfprune.allocation import allocate
from tfprune.scoring._mask_search import Search, SearchOptions, check_unpruned


def initial_scores(shapes, seed: int, common: bool = False) -> "dict[str, np.ndarray]":
    """``U(-1/√fan_in, 1/√fan_in)`` per layer; ``common``: every layer with the smallest of these
    bounds (the largest fan-in), so that a global ranking starts uniform over the layers."""
    rng = np.random.default_rng([seed, 1])
    bounds = {name: 1.0 / np.sqrt(max(int(np.prod(shape[:-1])), 1)) for name, shape in shapes.items()}
    smallest = min(bounds.values(), default=1.0)
    return {name: rng.uniform(-(smallest if common else b), smallest if common else b, size=shapes[name])
            for name, b in bounds.items()}


def make_edge_popup(model, data, loss, *, sparsity, scope="global", seed=None, epochs=10, batch_size=128, lr=0.1,
                    momentum=0.9, weight_decay=5e-4, state_dir=None, include=()):
    seed = checks.seed(seed) or 0
    options = SearchOptions(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, seed=seed,
                            state_dir=state_dir)
    weight_decay = checks.nonnegative_number(weight_decay, "weight_decay")

    def mask_of(scores):
        return allocate({n: np.abs(s) for n, s in scores.items()}, sparsity, scope=scope)

    def score(masks=None):
        check_unpruned(masks, "edge_popup")
        search = Search(model, data, loss, options, "edge_popup", include)
        scores = search.start(initial_scores(search.shapes, seed, common=scope == "global")).run(
            mask_of, penalty=lambda s: {n: weight_decay * v for n, v in s.items()},
            ranked=lambda s: {n: np.sign(v) for n, v in s.items()})
        return {n: np.abs(s) for n, s in scores.items()}

    return score
