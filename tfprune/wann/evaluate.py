"""Evaluating a whole population at several shared weights in one batched numpy computation.

For a stack of P networks (:func:`tfprune.wann.genome.stack`), K shared weights ``w`` and N
examples, every node's value is ``v_j = f_j(w * sum_i conn[i, j] * v_i)`` with the inputs and
the bias (1) as the first values. The input part ``X @ conn[inputs, :]`` does not depend on ``w``
and is computed once per network; the hidden nodes are then computed level by level (depth 1,
2, ...: every network of the stack at once, summing over the list of the stack's connections
between hidden nodes), and the outputs last. Logits are the output values; the class probabilities their softmax.

Fitness per network and shared weight: the mean log-likelihood of the labels (``-`` the softmax
cross-entropy, the reference implementation's reward) or the accuracy. Non-finite logits (a deep
chain of large weights can overflow float32) count as the worst log-likelihood
:data:`WORST_LOG_LIKELIHOOD`.
"""
from __future__ import annotations

import numpy as np

from tfprune.wann import activations
from tfprune.wann.genome import hidden_depths

#: Log-likelihood given to a (network, weight) whose logits are not finite.
WORST_LOG_LIKELIHOOD = -1e4


def _activate(values: np.ndarray, act: np.ndarray, rows: np.ndarray) -> None:
    """``values[rows] = f_act[rows](values[rows])`` in place; ``values`` [R, ...], ``act`` [R]."""
    for a in np.unique(act[rows]):
        chosen = rows[act[rows] == a]
        values[chosen] = activations.numpy_fn(activations.ACTIVATIONS[a])(values[chosen])


def _gather_sum(rows, dst, src, values, k, n) -> np.ndarray:
    """``out[r] = sum(values[s] for s, d in edges if d == rows[r])`` [len(rows), K, N]; ``rows`` sorted."""
    out = np.zeros((len(rows), k, n), np.float32)
    take = np.isin(dst, rows)
    if take.any():
        order = np.argsort(dst[take], kind="stable")
        d, s = dst[take][order], src[take][order]
        starts = np.r_[0, np.flatnonzero(np.diff(d)) + 1]
        out[np.searchsorted(rows, d[starts])] = np.add.reduceat(values[s], starts, axis=0)
    return out


def forward(population, x: np.ndarray, shared_weights, n_inputs: int, n_outputs: int) -> np.ndarray:
    """Logits [P, K, N, n_outputs] of every network at every shared weight.

    ``population``: ``{"conn": [P, M, M], "act": [P, M], "n_hidden": [P]}``; ``x``: [N, n_inputs].
    The input part is one batched matmul; the hidden and output parts sum over the connections
    between hidden nodes and into the outputs only (an edge list of the whole stack), so their cost
    is proportional to those connections, not to ``hidden**2``.
    """
    conn, act = population["conn"], population["act"]
    p, m = conn.shape[:2]
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    if x.shape[1] != n_inputs:
        raise ValueError(f"x: got {x.shape[1]} features per example; allowed: n_inputs = {n_inputs}.")
    w = np.asarray(shared_weights, np.float32)[None, :, None]
    k, n, o = w.shape[1], len(x), n_outputs
    h = int(np.max(population["n_hidden"], initial=0))               # hidden slots used by any network
    fh, fo = n_inputs + 1, m - o
    nodes = np.r_[np.arange(fh, fh + h), np.arange(fo, m)]          # hidden in use, then outputs
    xb = np.concatenate([x, np.ones((n, 1), np.float32)], axis=1)   # the bias node is 1
    into = conn[:, :fh][:, :, nodes].astype(np.float32)              # [P, inputs + 1, h + O]
    base = np.matmul(into.transpose(0, 2, 1), xb.T)                  # [P, h + O, N], w-free
    hidden_base, out_base = base[:, :h].reshape(p * h, n), base[:, h:].reshape(p * o, n)
    values = np.zeros((p * h, k, n), np.float32)                     # hidden node (p, j) at row p * h + j
    depth = hidden_depths(conn[:, fh:fh + h, fh:fh + h])
    depth[np.arange(h)[None, :] >= population["n_hidden"][:, None]] = 0  # unused slots stay 0
    depth = depth.reshape(-1)
    q, i, j = np.nonzero(conn[:, fh:fh + h, fh:fh + h])             # hidden -> hidden edges
    src, dst = q * h + i, q * h + j
    act_hidden = act[:, fh:fh + h].reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        for level in range(1, int(depth.max(initial=0)) + 1):
            rows = np.flatnonzero(depth == level)
            values[rows] = w * (hidden_base[rows][:, None, :] + _gather_sum(rows, dst, src, values, k, n))
            _activate(values, act_hidden, rows)
        q, i, j = np.nonzero(conn[:, fh:fh + h, fo:])                # hidden -> output edges
        rows = np.arange(p * o)
        out = w * (out_base[:, None, :] + _gather_sum(rows, q * o + j, q * h + i, values, k, n))
        _activate(out, act[:, fo:].reshape(-1), rows)
    return out.reshape(p, o, k, n).transpose(0, 2, 3, 1)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        shifted = logits - logits.max(axis=-1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def scores(logits: np.ndarray, y: np.ndarray) -> "dict[str, np.ndarray]":
    """``log_likelihood`` and ``accuracy`` [P, K] of logits [P, K, N, C] for labels ``y`` [N]."""
    y = np.asarray(y, np.int64)
    finite = np.isfinite(logits).all(axis=(2, 3))
    logp = np.take_along_axis(log_softmax(logits), y[None, None, :, None], axis=-1)[..., 0]
    ll = np.where(finite, logp.mean(axis=-1, dtype=np.float64), WORST_LOG_LIKELIHOOD)
    ll = np.where(np.isfinite(ll), np.maximum(ll, WORST_LOG_LIKELIHOOD), WORST_LOG_LIKELIHOOD)
    accuracy = (np.argmax(np.nan_to_num(logits, nan=-np.inf), axis=-1) == y).mean(axis=-1)
    return {"log_likelihood": ll, "accuracy": accuracy}


def ensemble_accuracy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Accuracy [P] of each network's ensemble over its shared weights: the argmax of the mean of
    the K softmax probabilities (non-finite ones left out)."""
    probs = np.exp(log_softmax(logits))
    probs = np.where(np.isfinite(probs), probs, 0.0)
    return (np.argmax(probs.mean(axis=1), axis=-1) == np.asarray(y)).mean(axis=-1)


def evaluate(population, x, y, shared_weights, n_inputs: int, n_outputs: int, chunk: int = 0, ensemble: bool = True):
    """Per-network ``log_likelihood`` and ``accuracy`` [P, K] and (``ensemble=True``) the ``ensemble``
    accuracy [P], in chunks of ``chunk`` networks (0: all at once) to bound memory."""
    total = len(population["conn"])
    chunk = chunk or total
    parts = []
    for start in range(0, total, chunk):
        part = {key: value[start:start + chunk] for key, value in population.items()}
        logits = forward(part, x, shared_weights, n_inputs, n_outputs)
        part = scores(logits, y)
        if ensemble:
            part["ensemble"] = ensemble_accuracy(logits, y)
        parts.append(part)
    return {key: np.concatenate([part[key] for part in parts]) for key in parts[0]}
