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
both g and Hg. Registered with ``keep="lowest"``.
"""
import tensorflow as tf

from tfprune import _keras, checks
from tfprune.scoring._common import accumulate, kernel_values, scoring_clone, set_kernels
from tfprune.scoring._targets import CE, SPARSE_CE, loss_name, per_output

_CROSSENTROPY = {SPARSE_CE: True, CE: False}


def make_grasp(model, data, loss, *, temperature=200.0):
    temperature = checks.positive_number(temperature, "temperature")
    clone, _ = scoring_clone(model, strip_softmax=True)
    kernels = _keras.prunable_kernels(clone)
    names = list(kernels)
    variables = [kernels[n] for n in names]
    base = kernel_values(model)
    def output_loss(out_loss, y, out):
        z = out / tf.cast(temperature, out.dtype)
        sparse_labels = _CROSSENTROPY.get(loss_name(out_loss))
        if sparse_labels is None:
            return tf.reduce_mean(out_loss(y, z))
        log_p = tf.nn.log_softmax(z)
        if sparse_labels:
            y = tf.one_hot(tf.cast(tf.reshape(y, [-1]), tf.int32), tf.shape(z)[-1], dtype=z.dtype)
        return -tf.reduce_mean(tf.reduce_sum(tf.cast(y, z.dtype) * log_p, axis=-1))

    def objective(x, y):
        return tf.add_n([output_loss(*term) for term in per_output(loss, y, clone(x, training=False))])

    def _fill(grads):
        return [tf.zeros_like(v) if g is None else g for g, v in zip(grads, variables)]

    @tf.function(reduce_retracing=True)
    def gradient(x, y):
        with tf.GradientTape() as tape:
            value = objective(x, y)
        return _fill(tape.gradient(value, variables))

    @tf.function(reduce_retracing=True)
    def hessian_gradient(x, y, g):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                value = objective(x, y)
            grads = _fill(inner.gradient(value, variables))
            z = tf.add_n([tf.reduce_sum(a * tf.stop_gradient(b)) for a, b in zip(grads, g)])
        return _fill(outer.gradient(z, variables))

    def score(masks=None):
        effective = {n: base[n] * masks[n] if masks and n in masks else base[n] for n in names}
        set_kernels(clone, effective)
        g = accumulate(data, gradient)
        hg = accumulate(data, lambda x, y: hessian_gradient(x, y, g))
        return {n: -effective[n] * h.numpy() for n, h in zip(names, hg)}

    return score
