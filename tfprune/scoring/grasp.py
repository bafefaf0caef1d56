"""GraSP (Wang et al. 2020): score = −w ⊙ Hg, and the **highest** scores are pruned.

    z        = logits / T                     (T = temperature, default 200)
    g        = ∇_w L(z)                        (first pass, treated as a constant)
    Hg       = ∇_w (gᵀ ∇_w L(z))               (Hessian-gradient product, second pass)
    score(w) = −w ⊙ Hg

Models whose output layer applies a softmax are scored on their pre-softmax logits. For
(sparse) categorical cross-entropy the loss is computed as −log_softmax(z)[y] on those logits
(TF's fused sparse cross-entropy op has no second derivative); any other loss is applied to
``z`` as is. A multi-output model's objective is the sum of its outputs' losses, each on its own
logits / T. The model is in inference mode; several batches give example-weighted means for
both g and Hg. Registered with ``keep="lowest"``. With ``strategy=`` (tf_keras models) g is
all-reduced over the replicas first, then each replica's Hg with that full g is all-reduced
(:mod:`tfprune.scoring._distributed`).
"""
import numpy as np

from tfprune import checks
from tfprune.scoring import nets
from tfprune.scoring._targets import CE, SPARSE_CE, loss_name, per_output

_CROSSENTROPY = {SPARSE_CE: True, CE: False}


def tempered_loss(loss, temperature):
    """The objective L(z): the sum over the outputs of each loss's mean on logits / T."""
    def output_loss(ops, out_loss, y, out):
        z = out / ops.cast(temperature, out.dtype)
        sparse_labels = _CROSSENTROPY.get(loss_name(out_loss))
        if sparse_labels is None:
            return ops.mean(out_loss(y, z))
        log_p = ops.log_softmax(z)
        y = ops.one_hot(y, ops.classes(z), z.dtype) if sparse_labels else ops.cast(y, z.dtype)
        return -ops.mean(ops.sum(y * log_p, axis=-1))

    def objective(ops, y, outputs):
        return sum(output_loss(ops, *term) for term in per_output(loss, y, outputs))
    return objective


def _negated(a):
    return np.negative(a, out=a)


def make_grasp(model, data, loss, *, temperature=200.0, include=(), strategy=None):
    temperature = checks.positive_number(temperature, "temperature")
    net = nets.loss_net(model, data, strip_softmax=True, include=include, strategy=strategy)
    objective = tempered_loss(loss, temperature)

    def score(masks=None):
        w, _, hg = nets.masked_hessian_gradient(net, masks, objective)  # w = θ ⊙ masks, hg = H g there
        return {n: _negated(w[n] * hg[n]) for n in net.names}  # −(w·hg) = −w·hg exactly, one temporary less

    return score
