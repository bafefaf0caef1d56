"""SynFlow (Tanaka et al. 2020): data-free, iterative.

One round, on a float64 copy of the model in inference mode whose every parameter (kernels,
biases, BatchNorm γ, β and moving statistics, ...) is replaced by its absolute value and whose
kernels are multiplied by the current masks:

    R        = sum(f(1))                  (1 = all-ones input of the model's input shape, batch 1;
                                           f returns pre-softmax outputs; with several outputs,
                                           R sums all of them)
    score(w) = |w ⊙ ∂R/∂w|

``compute_masks`` runs 100 rounds by default, density after round k = d^(k/100), pruned weights
staying masked in the forward pass. float64 because products of many weights overflow or
underflow float32 in deep nets. The user's model is never modified.

:func:`path_flow` reuses the same pass with kernels set to the 0/1 masks, biases zero and
BatchNorm as identity: the score of a kept weight is then the number of input→output paths
through it, which the sparsity report uses to detect layers whose every path is cut.
"""
import numpy as np
import tensorflow as tf

from tfprune import _keras
from tfprune.scoring._common import kernel_values, scoring_clone, set_kernels


def _ones_input(model, input_shape):
    shape = tuple(input_shape) if input_shape is not None else _keras.input_shape(model)[1:]
    if any(d is None for d in shape):
        raise ValueError(f"input_shape: model {model.name!r} has input shape {_keras.input_shape(model)} with unknown "
                         "dimensions; SynFlow feeds an all-ones input, so pass input_shape=(...) without the batch dimension.")
    return tf.ones((1,) + shape, dtype=tf.float64)


def _flow_function(clone, names, compiled=True):
    """``flow(ones)`` → ∂sum(clone(ones))/∂kernel for each named kernel (a tf.function if compiled)."""
    kernels = _keras.prunable_kernels(clone)
    variables = [kernels[n] for n in names]

    def flow(ones):
        with tf.GradientTape() as tape:
            r = tf.add_n([tf.reduce_sum(out) for out in tf.nest.flatten(clone(ones, training=False))])
        grads = tape.gradient(r, variables)
        return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]

    return tf.function(flow) if compiled else flow


def make_synflow(model, data=None, loss=None, *, input_shape=None):
    ones = _ones_input(model, input_shape)
    clone, _ = scoring_clone(model, dtype="float64", strip_softmax=True)
    for w in clone.weights:
        w.assign(tf.abs(w))
    base = {n: np.abs(v.astype(np.float64)) for n, v in kernel_values(model).items()}
    names = list(base)
    flow = _flow_function(clone, names)

    def score(masks=None):
        effective = {n: base[n] * masks[n] if masks and n in masks else base[n] for n in names}
        set_kernels(clone, effective)
        return {n: np.abs(effective[n] * g.numpy()) for n, g in zip(names, flow(ones))}

    return score


def path_flow(model, masks, *, input_shape=None):
    """Per layer, the number of input→output paths through its kept weights (float64).

    Zero means every path through that layer is cut, even if it keeps weights (except for the
    query and key kernels of an attention layer: under the all-ones input the attention is
    uniform and their count is 0 whatever the masks, see ``_keras.attention_logit_kernels``;
    SynFlow's scores of those kernels are 0 for the same reason). The pass is
    linear (activations replaced by the identity, biases zero, BatchNorm identity), so a
    saturating activation cannot hide a path. Max-pooling routes the flow through one input
    of each window, so with max-pooling the counts are lower bounds.
    """
    ones = _ones_input(model, input_shape)
    clone, _ = scoring_clone(model, dtype="float64", linear=True)
    for layer in clone.layers:
        if _keras.layer_kind(layer) == "batchnorm":
            values = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}
            for w in layer.weights:
                key = w.name.split("/")[-1].split(":")[0]
                w.assign(tf.fill(tf.shape(w), tf.constant(values.get(key, 1.0), tf.float64)))
        elif _keras.is_prunable(layer):
            kernels = {id(k) for k in _keras.layer_kernels(layer).values()}
            for w in layer.weights:
                if id(w) not in kernels:
                    w.assign(tf.zeros_like(w))
        else:
            for w in layer.weights:
                w.assign(tf.abs(w))
    names = list(_keras.prunable_kernels(clone))
    set_kernels(clone, {n: np.asarray(masks[n], np.float64) for n in names})
    grads = _flow_function(clone, names, compiled=False)(ones)  # one pass: no tracing
    return {n: float(np.sum(np.asarray(masks[n], np.float64) * g.numpy())) for n, g in zip(names, grads)}
