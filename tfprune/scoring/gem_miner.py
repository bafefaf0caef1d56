"""Gem-Miner (Sreenivasan et al. 2022, "Rare Gems: Finding Lottery Tickets at Initialization").

The weights stay at their initial values θ0. Each weight has a score ``s`` in [0, 1], drawn
``U(0, 1)``; the forward pass keeps the weights with ``s > 0.5`` that are still *alive*. The
scores learn by SGD with momentum on the loss plus ``λ·‖s‖²`` (the gradient reaching the scores
straight through the rounding: ``∂L/∂s = ∂L/∂(θ0 ⊙ m) ⊙ θ0 + 2λs``, see :mod:`._mask_search`),
and are clipped to [0, 1] after each step. Every ``prune_every`` epochs (and after the last),
the lowest-scored alive weights are pruned for good — :func:`tfprune.allocation.allocate` over
the alive ones (``within``), globally or per layer — following ``d^(t/T)`` (event ``t`` of ``T``)
down to the target density ``d`` at the end; a pruned weight's score stays 0 and the pruned set
only grows; equal scores (clipping saturates many at 0 or 1) are ranked in a seeded random order,
not by position. The returned scores are ``s`` for the alive weights and -1 for the pruned ones, so
allocating them at the target sparsity gives exactly the alive set: the weights whose score the
penalty pushed to 0.5 or below are kept too (restoring the highest-scored ones when the penalty
overshot the target), and no pruned one comes back.

The default learning rate (3.0) is higher than edge-popup's: the scores live in [0, 1] and their
gradient ``g ⊙ θ0`` is small for Glorot-scale weights; on 1,400 sklearn digits (MLP 64-256-10, 50%
sparsity, 6 epochs) the mask's accuracy before any weight training was 44% with 0.1, 75% with 1.0
and 82% with 3.0 (edge-popup with 0.1: 74%).
"""
import math

import numpy as np

from tfprune import checks
from tfprune.allocation import allocate
from tfprune.scoring._mask_search import Search, SearchOptions, check_unpruned


def prune_events(epochs: int, prune_every: int) -> "list[int]":
    """The epochs after which weights are pruned for good (the last epoch always)."""
    events = [e for e in range(epochs) if (e + 1) % prune_every == 0]
    return events if events and events[-1] == epochs - 1 else events + [epochs - 1]


def make_gem_miner(model, data, loss, *, sparsity, scope="global", seed=None, epochs=10, batch_size=128, lr=3.0,
                   momentum=0.9, penalty=1e-4, prune_every=1, state_dir=None, include=()):
    seed = checks.seed(seed) or 0
    options = SearchOptions(epochs=epochs, batch_size=batch_size, lr=lr, momentum=momentum, seed=seed,
                            state_dir=state_dir)
    penalty = checks.nonnegative_number(penalty, "penalty")
    events = prune_events(epochs, checks.integer(prune_every, "prune_every", 1))
    density = 1.0 - sparsity

    def score(masks=None):
        check_unpruned(masks, "gem_miner")
        search = Search(model, data, loss, options, "gem_miner", include)
        rng = np.random.default_rng([seed, 2])
        search.start({n: rng.random(shape) for n, shape in search.shapes.items()},
                     **{f"alive:{n}": np.ones(shape, bool) for n, shape in search.shapes.items()})
        alive = lambda: {n: search.extra[f"alive:{n}"] for n in search.shapes}  # noqa: E731

        def mask_of(scores):
            return {n: ((scores[n] > 0.5) & a).astype(np.float32) for n, a in alive().items()}

        def project(scores):
            for n, a in alive().items():
                np.clip(scores[n], 0.0, 1.0, out=scores[n])
                scores[n][~a] = 0.0

        def end_of_epoch(epoch, scores):
            if epoch not in events:
                return
            t = events.index(epoch) + 1
            target = 1.0 - density ** (t / len(events))
            kept = allocate(ranked(scores), target, scope=scope, within=alive())
            for n, m in kept.items():
                search.extra[f"alive:{n}"] = m != 0
                scores[n][m == 0] = 0.0

        # Scores saturate at 0 and 1 (clipping), so ties are common: break them in a seeded random
        # order, not by position (which would fill the budget with the first layer's 1.0s).
        tie = {n: np.random.default_rng([seed, 3, i]).random(shape) * 1e-9 for i, (n, shape) in enumerate(search.shapes.items())}

        def ranked(scores):
            return {n: np.where(a, scores[n] + tie[n], -1.0) for n, a in alive().items()}

        scores = search.run(mask_of, penalty=lambda s: {n: 2 * penalty * v for n, v in s.items()}, project=project,
                            end_of_epoch=end_of_epoch)
        return ranked(scores)

    return score
