"""SNIP (Lee et al. 2019): score = |∂L/∂w ⊙ w| on the given batch(es).

L is the model's loss on ``data`` with the model in inference mode (BatchNorm uses its moving
statistics); with several batches the gradient is the example-weighted mean, i.e. the gradient
of the mean loss over all the examples given. Pass about 10 examples per class
(``tfprune.experiment.data.balanced_batch``).
"""
import numpy as np
import tensorflow as tf

from tfprune import _keras
from tfprune.scoring._common import accumulate, kernel_values, scoring_clone, set_kernels


def make_snip(model, data, loss):
    clone, _ = scoring_clone(model)
    kernels = _keras.prunable_kernels(clone)
    names = list(kernels)
    variables = [kernels[n] for n in names]
    base = kernel_values(model)

    @tf.function(reduce_retracing=True)
    def gradients(x, y):
        with tf.GradientTape() as tape:
            value = tf.reduce_mean(loss(y, clone(x, training=False)))
        grads = tape.gradient(value, variables)
        return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]

    def score(masks=None):
        effective = {n: base[n] * masks[n] if masks and n in masks else base[n] for n in names}
        set_kernels(clone, effective)
        grads = accumulate(data, gradients)
        return {n: np.abs(g.numpy() * effective[n]) for n, g in zip(names, grads)}

    return score
