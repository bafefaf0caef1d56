"""Optimal Brain Damage (LeCun, Denker & Solla 1990): the saliency of weight k is

    s_k = ½ · h_kk · w_k²        h_kk = ∂²L/∂w_k², the Hessian diagonal of the training loss L

(the loss increase a second-order Taylor expansion predicts for setting w_k to 0, the gradient
taken as 0 at a trained minimum and off-diagonal terms ignored). The lowest saliencies are
pruned. L is the mean over the examples given of the model's loss, in inference mode; a
multi-output model's L is the sum of its outputs' mean losses. ``estimator=`` chooses h_kk:

``"gauss_newton"`` (default; OBD's own Levenberg-Marquardt approximation)
    h ≈ mean over examples of diag(Jᵀ ∇²_f ℓ J), J = ∂f/∂w the Jacobian of the outputs. For a
    (sparse) categorical cross-entropy on a softmax this is the true Fisher, computed exactly as
    Σ_c p_c (∂ log p_c/∂w)² per example (p = the model's softmax, no sampling); for the mean
    squared error (mean over m output values) it is (2/m) Σ_j (∂f_j/∂w)², the exact Hessian of a
    model linear in w. Other losses are refused.
``"exact"``
    the true diagonal: one Hessian-vector product H e_k per weight (unit vectors e_k); refused
    above ``max_weights`` prunable weights (default 4096).
``"hutchinson"``
    h ≈ mean over ``samples`` Rademacher vectors z (±1, from ``seed``) of z ⊙ Hz: unbiased, its
    error falls as 1/√samples.
``"fisher"``
    the empirical Fisher: the mean over examples of the squared per-example gradient of the
    loss with the true labels.

The exact and Hutchinson diagonals can be negative (away from a minimum), and so can their
saliencies. Cross-entropy is computed as −log_softmax(z)[y] on the logits, the model's output
softmax (if any) removed, as in GraSP (:mod:`.grasp`); its ``from_logits`` must match the output
(a string loss means ``from_logits=False``: a softmax output), or the scorer refuses. OBD is meant for a *trained* network and
wants more data than SNIP: the ``obd`` procedure passes 1,000 training examples (100 per class).

Example, the exact diagonal against the Gauss-Newton one of the tiny test model:

    >>> exact = tfprune.compute_scores(model, "obd", data=(x[:40], y[:40]), loss=loss, estimator="exact")
    >>> gn = tfprune.compute_scores(model, "obd", data=(x[:40], y[:40]), loss=loss)
    >>> sorted(exact) == sorted(gn), exact["fc1"].shape
    (True, (16, 32))
"""
from __future__ import annotations

import math

import numpy as np

from tfprune import checks
from tfprune.scoring import nets
from tfprune.scoring._targets import CE, SPARSE_CE, loss_name, per_output

ESTIMATORS = ("gauss_newton", "exact", "hutchinson", "fisher")
MSE = "mean_squared_error"
_SPARSE = {SPARSE_CE: True, CE: False}


def _log_probs(ops, out_loss, y, z):
    """``(log p, one-hot y)`` of a cross-entropy output on its logits ``z``."""
    labels = ops.one_hot(y, ops.classes(z), z.dtype) if _SPARSE[loss_name(out_loss)] else ops.cast(y, z.dtype)
    return ops.log_softmax(z), labels


def _per_example_loss(ops, out_loss, y, z):
    if loss_name(out_loss) in _SPARSE:
        log_p, labels = _log_probs(ops, out_loss, y, z)
        return -ops.sum(labels * log_p, axis=-1)
    values = getattr(out_loss, "call", out_loss)(y, z)  # a Loss object's call: unreduced
    return ops.mean(ops.reshape(values, (-1, math.prod(values.shape[1:]))), axis=-1)


def training_loss(loss):
    """L: the sum over the outputs of each mean loss (``exact``, ``hutchinson``)."""
    def objective(ops, y, outputs):
        return sum(ops.mean(_per_example_loss(ops, *term)) for term in per_output(loss, y, outputs))
    return objective


def example_losses(loss):
    """One value per example, ℓ_i (``fisher``)."""
    def objective(ops, y, outputs):
        total = sum(_per_example_loss(ops, *term) for term in per_output(loss, y, outputs))
        return ops.reshape(total, (-1, 1))
    return objective


def gauss_newton_rows(loss):
    """Per-example rows v_i with Σ_j (∂v_ij/∂w)² = diag(Jᵀ ∇²_f ℓ J) (``gauss_newton``)."""
    def rows(ops, out_loss, y, z):
        if loss_name(out_loss) in _SPARSE:
            log_p, _ = _log_probs(ops, out_loss, y, z)
            return ops.sqrt(ops.stop_gradient(ops.exp(log_p))) * log_p
        m = math.prod(z.shape[1:])
        return ops.reshape(z, (-1, m)) * math.sqrt(2.0 / m)  # a Python float keeps z.dtype (a cast rounds to float32)

    def objective(ops, y, outputs):
        return ops.concatenate([rows(ops, *term) for term in per_output(loss, y, outputs)])
    return objective


def _losses(loss) -> list:
    return list(loss.losses) if hasattr(loss, "losses") else [loss]


def _check_logits(model, loss) -> None:
    """A cross-entropy's ``from_logits`` must match its output (softmax: False), or log p is wrong."""
    for name, out_loss, softmax in zip(nets.output_names(model), _losses(loss), nets.output_softmax(model)):
        if out_loss is None or loss_name(out_loss) not in _SPARSE:
            continue
        config = out_loss.get_config() if hasattr(out_loss, "get_config") else {}
        from_logits = bool(config.get("from_logits", False))
        if from_logits == softmax:
            raise ValueError(f"loss: from_logits={from_logits} for output {name!r}, which "
                             f"{'ends' if softmax else 'does not end'} in a softmax; allowed: from_logits="
                             f"{not softmax} (obd takes log-probabilities from the logits).")


def _check_losses(model, loss, estimator) -> bool:
    """Whether the outputs are scored on their logits (every loss a cross-entropy)."""
    _check_logits(model, loss)
    names = [loss_name(l) for l in _losses(loss) if l is not None]
    crossentropy = [n in _SPARSE for n in names]
    if any(crossentropy) and not all(crossentropy):
        raise ValueError(f"loss: got {names}; obd scores a model whose losses are all cross-entropies (on the "
                         "logits) or none is.")
    if estimator == "gauss_newton" and not all(n in _SPARSE or n == MSE for n in names):
        raise ValueError(f"loss: got {names} with estimator='gauss_newton'; allowed: (sparse_)categorical_"
                         f"crossentropy or {MSE} (use estimator='exact', 'hutchinson' or 'fisher' for another loss).")
    return all(crossentropy)


def make_obd(model, data, loss, *, estimator="gauss_newton", samples=100, seed=0, max_weights=4096, include=()):
    checks.choice(estimator, "estimator", ESTIMATORS)
    samples = checks.integer(samples, "samples", 1)
    max_weights = checks.integer(max_weights, "max_weights", 1)
    seed = checks.integer(seed, "seed", 0)
    logits = _check_losses(model, loss, estimator)
    if estimator == "exact":
        size = sum(math.prod(s) for s in nets.kernel_shapes(model, include=include).values())
        if size > max_weights:
            raise ValueError(f"estimator: 'exact' takes one Hessian-vector product per weight and model "
                             f"{model.name!r} has {size} prunable weights, above max_weights={max_weights}; use "
                             "estimator='gauss_newton' or 'hutchinson', or raise max_weights.")
    net = nets.loss_net(model, data, strip_softmax=logits, include=include)
    base = nets.kernel_values(model, include=include)
    mean_loss = training_loss(loss)
    per_example = {"gauss_newton": gauss_newton_rows, "fisher": example_losses}.get(estimator)
    per_example = per_example and per_example(loss)

    def diagonal(w):
        if per_example is not None:
            return net.squared_gradients(w, per_example)
        if estimator == "exact":
            return exact_diagonal(net, w, mean_loss)
        return hutchinson_diagonal(net, w, mean_loss, samples, seed)

    def score(masks=None):
        w = nets.effective(base, masks)
        h = diagonal(w)
        return {n: 0.5 * h[n] * np.square(w[n]) for n in net.names}

    return score


def exact_diagonal(net, w, objective) -> "dict[str, np.ndarray]":
    """h_kk = (H e_k)_k, one Hessian-vector product per weight."""
    zeros = {n: np.zeros_like(w[n]) for n in net.names}
    diagonal = {n: np.zeros_like(w[n]) for n in net.names}
    for name in net.names:
        for k in range(w[name].size):
            unit = dict(zeros, **{name: np.zeros_like(w[name])})
            unit[name].flat[k] = 1.0
            diagonal[name].flat[k] = net.hessian_gradient(w, objective, unit)[name].flat[k]
    return diagonal


def hutchinson_diagonal(net, w, objective, samples: int, seed: int) -> "dict[str, np.ndarray]":
    """mean over ``samples`` Rademacher z of z ⊙ Hz."""
    rng = np.random.default_rng(seed)
    total = {n: np.zeros(w[n].shape, np.float64) for n in net.names}
    for _ in range(samples):
        z = {n: rng.choice(np.array([-1.0, 1.0], w[n].dtype), size=w[n].shape) for n in net.names}
        hz = net.hessian_gradient(w, objective, z)
        for n in net.names:
            total[n] += z[n] * hz[n]
    return {n: (total[n] / samples).astype(w[n].dtype) for n in net.names}
