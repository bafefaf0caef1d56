"""SNIP (Lee et al. 2019): score = |∂L/∂w ⊙ w| on the given batch(es).

L is the model's loss on ``data`` with the model in inference mode (BatchNorm uses its moving
statistics); with several batches the gradient is the example-weighted mean, i.e. the gradient
of the mean loss over all the examples given. A multi-output model's L is the sum of its
outputs' mean losses. Pass about 10 examples per class
(``tfprune.experiment.data.balanced_batch``). With ``strategy=`` (a ``tf.distribute`` strategy,
tf_keras models) each batch is split across the replicas and their gradients all-reduced
(:mod:`tfprune.scoring._distributed`): the same gradient, the same scores.
"""
import numpy as np

from tfprune.scoring import nets
from tfprune.scoring._targets import per_output


def mean_loss(loss):
    """The objective ``L``: each output's mean loss, summed over the outputs."""
    def objective(ops, y, outputs):
        return sum(ops.mean(l(t, o)) for l, t, o in per_output(loss, y, outputs))
    return objective


def _absolute(a):
    return np.abs(a, out=a)  # in place: one temporary for |g ⊙ w|


def make_snip(model, data, loss, *, include=(), strategy=None):
    net = nets.loss_net(model, data, include=include, strategy=strategy)
    objective = mean_loss(loss)

    def score(masks=None):
        w, g = net.masked_gradient(masks, objective)  # w = θ ⊙ masks, g = ∂L/∂w
        return {n: _absolute(g[n] * w[n]) for n in net.names}

    return score
