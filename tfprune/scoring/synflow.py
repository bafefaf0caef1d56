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
underflow float32 in deep nets (on JAX the pass runs with 64-bit types enabled). The user's
model is never modified.

:func:`path_flow` reuses the same pass with kernels set to the 0/1 masks, biases zero and
BatchNorm as identity: the score of a kept weight is then the number of input→output paths
through it, which the sparsity report uses to detect layers whose every path is cut.
"""
import numpy as np

from tfprune.scoring import nets


def _ones_input(model, input_shape):
    dtypes = nets.input_dtypes(model)
    if any(not d.startswith(("float", "bfloat")) for d in dtypes):
        raise ValueError(f"method: SynFlow feeds an all-ones input, which means nothing for model {model.name!r}'s "
                         f"integer inputs ({', '.join(dtypes)}; e.g. token ids); allowed for such models: snip, grasp, "
                         "magnitude, random.")
    full = nets.input_shape(model)
    shape = tuple(input_shape) if input_shape is not None else tuple(full[1:])
    if any(d is None for d in shape):
        raise ValueError(f"input_shape: model {model.name!r} has input shape {full} with unknown "
                         "dimensions; SynFlow feeds an all-ones input, so pass input_shape=(...) without the batch dimension.")
    return np.ones((1,) + shape, dtype=np.float64)


def total_output(ops, y, outputs):
    """R: the sum of every output."""
    return sum(ops.sum(out) for out in outputs)


def make_synflow(model, data=None, loss=None, *, input_shape=None, include=()):
    net = nets.flow_net(model, _ones_input(model, input_shape), include=include)  # holds |θ| in float64

    def score(masks=None):
        w, g = net.masked_gradient(masks, total_output)  # w = |θ| ⊙ masks, g = ∂R/∂w
        return {n: _times_abs(w[n], g[n]) for n in net.names}

    if hasattr(net, "drop_gradient"):  # tf_keras: rounds that score only the alive weights
        dtype = np.result_type(*net.start_kernels().values()) if net.names else np.float64
        theta = {n: v.reshape(-1).astype(dtype, copy=False) for n, v in net.start_kernels().items()}  # θ, flat views

        def score_alive(survivors, dropped=None):
            """The same scores at the alive weights of ``survivors`` (a
            :class:`tfprune.allocation.Survivors`) only, as one array in its order; the weights it
            dropped last (or ``dropped``, ``{key: flat indices}``) are masked from now on."""
            g = net.drop_gradient(survivors.dropped if dropped is None else dropped, total_output)

            def layer(name, index, out, scratch):  # out: the layer's scores, at its alive weights `index`
                np.take(g[name].reshape(-1), index, out=out, mode="clip")                 # ∂R/∂w
                out *= np.take(theta[name], index, out=scratch, mode="clip")              # θ ⊙ ∂R/∂w
                np.abs(out, out=out)                                                      # = |w ⊙ ∂R/∂w|, w = |θ|
            return survivors.each_layer(layer, scratch_dtype=dtype)

        score.alive = score_alive
    return score


def _times_abs(w, g):
    """``|w ⊙ g|`` for ``w >= 0`` (SynFlow's weights are absolute values): ``w · |g|``, one new array."""
    out = np.abs(g)
    out *= w
    return out


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
    net = nets.flow_net(model, _ones_input(model, input_shape), paths=True)
    m = {n: np.asarray(masks[n], np.float64) for n in net.names}
    g = net.gradient(m, total_output)
    return {n: float(np.sum(m[n] * g[n])) for n in net.names}
