"""A ``--plugin`` for ``examples/train.py``: the scorer ``ticket_densities`` gives a random mask with
the per-layer densities of a saved ticket, the *shuffle* sanity check for a ticket whose method is
not a scorer (magnitude after training, a lottery level's ``mask.npz``). The ticket is named by
the environment variable ``TFPRUNE_DENSITIES_OF`` (the plugin has no flag of its own)::

    TFPRUNE_DENSITIES_OF=benchmarks/out/missing_the_mark/cells/magnitude_after_training/s0.98/seed0/ticket.npz \\
        python examples/train.py --plugin=benchmarks.ticket_densities --method=ticket_densities \\
        --dataset=fashion_mnist --model=lenet_300_100 --sparsity=0.98 --epochs=8 --seed=0 ...

Layer ``l`` of the ticket keeps ``k_l`` weights; the scorer draws ``k_l`` positions of the layer at
random (seeded by ``--seed``) and scores them ``1 + u``, every other weight ``u`` (``u ~ U(0, 1)``),
so a global allocation at the ticket's own sparsity keeps exactly them. Run at another sparsity,
the allocation adds or drops weights at random across layers (the run's report shows the
densities it got).
"""
import os

import numpy as np

from tfprune import scoring

ENV = "TFPRUNE_DENSITIES_OF"


def kept_counts(path) -> "dict[str, tuple[tuple[int, ...], int]]":
    """``{layer: (kernel shape, weights the ticket keeps)}``, in model order."""
    from tfprune.lottery.ticket import load_ticket
    return {name: (tuple(m.shape), int(np.count_nonzero(m))) for name, m in load_ticket(path).masks.items()}


def make_ticket_densities(model, data=None, loss=None, *, seed=None, include=()):
    from tfprune.scoring import nets
    path = os.environ.get(ENV, "")
    if not path:
        raise ValueError(f"{ENV}: not set; name the ticket (.npz) whose layer densities the random mask copies.")
    counts = kept_counts(path)
    shapes = nets.kernel_shapes(model, include)
    ours = {n: tuple(s) for n, s in shapes.items()}
    if ours != {n: shape for n, (shape, _) in counts.items()}:
        raise ValueError(f"{ENV}: {path!r} has the kernels {({n: c[0] for n, c in counts.items()})}, the model {ours}.")

    def score(masks=None):
        rng = np.random.default_rng([seed or 0, 17])
        scores = {}
        for name, shape in shapes.items():
            size = int(np.prod(shape))
            s = rng.random(size)
            s[rng.permutation(size)[:counts[name][1]]] += 1.0
            scores[name] = s.reshape(shape)
        return scores

    return score


scoring.register_scorer("ticket_densities", make_ticket_densities, needs_data=False, options=("seed", "include"))
