"""What the scorers differentiate: a *net*, one implementation per Keras.

A scorer's formula (``snip.py``, ``grasp.py``, ``synflow.py``) is written once against this
interface; the net does the framework's work on a private copy of the model (or, for a tf_keras
loss net at the model's own kernels, on the model itself where an inference pass provably
writes none of its variables), so the user's weights are never touched:

``net.names``
    the kernel keys, in model order (``fc1``, ``mha/query``, ...). Every function below takes
    ``include``: ``("embedding",)`` adds the Embedding tables (Keras 3 models only).
``net.dtype``
    the numpy dtype the net computes in (float64 for SynFlow's net).
``net.ops``
    the few array functions an objective needs, in the net's framework (``mean``, ``sum``,
    ``log_softmax``, ``one_hot(labels, classes, dtype)``, ``classes(z)``, ``cast``, ``reshape``,
    ``exp``, ``sqrt``, ``stop_gradient``, ``concatenate(values)`` along the last axis).
``net.gradient(kernels, objective, batches=None)``
    with the kernels set to ``kernels`` (``{key: array}``), the example-weighted mean over the
    net's batches (or over ``batches``, a list of numpy ``(x, y)``: the mask searches' minibatches)
    of ∇_kernels ``objective(ops, y, outputs)`` (a scalar; ``outputs`` is the list of the model's
    outputs, in inference mode), as ``{key: np.ndarray}``.
``net.hessian_gradient(kernels, objective, g)``
    the same mean of ∇_kernels (∇ objective · g), the Hessian-gradient product ``H g``.
``net.masked_hessian_gradient(masks, objective)`` (tf_keras; optional, see
:func:`masked_hessian_gradient`)
    ``(w, g, hg)``: ``masked_gradient`` and ``hessian_gradient`` at its ``w``, in one pass when the
    net holds a single batch on one device (the inner gradient of ``H g`` is ``g`` itself).
``net.masked_gradient(masks, objective)``
    ``(w, g)``: the net's own kernels (the model's, or their absolute values in SynFlow's net)
    times ``masks`` (``{key: 0/1 array}`` or None), and ``net.gradient(w, objective)``; the
    iterative scorers' step. The tf_keras net masks the kernels it holds in place when the masks
    only remove weights since its last call (no host copy of the kernels, no second copy of
    them); ``w`` may be read-only.
``net.drop_gradient(dropped, objective)`` (tf_keras only; optional)
    zeroes the kernel entries at the flat indices ``dropped`` (``{key: indices}``) in place, on
    top of those zeroed before, and returns the gradient at the kernels now held, in one call of
    one traced function: SynFlow's rounds, which score the surviving weights only
    (:mod:`tfprune.allocation.survivors`; round 1 drops the weights ``within`` prunes).
``net.squared_gradients(kernels, objective, batches=None)``
    per-example gradients: here ``objective(ops, y, outputs)`` returns one row of values per
    example (shape ``[n, m]``), and the result is the mean over all examples i of
    Σ_j (∂ v_ij / ∂kernels)² (elementwise squares; OBD's Gauss-Newton and Fisher diagonals).

Implementations: tf_keras in :mod:`tfprune.scoring._tfkeras_net` (``tf.GradientTape``); Keras 3
in :mod:`tfprune._keras3.net` (TensorFlow, JAX or PyTorch autodiff, by the model's backend).
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from tfprune import _keras3


def _impl(model):
    if _keras3.is_keras3(model):
        from tfprune._keras3 import net
        return net
    from tfprune.scoring import _tfkeras_net
    return _tfkeras_net


def input_shape(model) -> tuple:
    """The model's input shape, batch dimension first; a clear error for several inputs."""
    return _impl(model).input_shape(model)


def input_specs(model) -> "dict[str, tuple]":
    """``{input name: shape}`` (batch dimension first) of each model input, in order."""
    return _impl(model).input_specs(model)


def input_dtypes(model) -> "list[str]":
    """The dtype of each model input, in order."""
    return _impl(model).input_dtypes(model)


def output_names(model) -> "list[str]":
    """The names of the layers that produce the model's outputs, in output order."""
    return _impl(model).output_names(model)


def output_softmax(model) -> "list[bool]":
    """Whether each output layer ends in a softmax, in output order."""
    if _keras3.is_keras3(model):
        from tfprune._keras3.training import ends_in_softmax, output_layers
    else:
        from tfprune._keras import ends_in_softmax, output_layers
    return [ends_in_softmax(layer) for layer in output_layers(model)]


def get_loss(model, candidate):
    """``candidate`` (a name, object or callable) as a loss of the model's Keras."""
    if _keras3.is_keras3(model):
        import keras
        return keras.losses.get(candidate)
    from tfprune._keras import keras
    return keras.losses.get(candidate)


def _include(model, include) -> tuple:
    include = tuple(include or ())
    if include and not _keras3.is_keras3(model):
        raise ValueError(f"include: got {include!r}; tfprune prunes Embedding tables of Keras 3 models only "
                         "(the tf_keras path prunes Dense, Conv and attention kernels).")
    if include:
        from tfprune._keras3.layers import check_include
        include = check_include(include)
    return include


def kernel_shapes(model, include=()) -> "dict[str, tuple]":
    """``{key: kernel shape}`` of the prunable kernels, in model order."""
    include = _include(model, include)
    return _impl(model).kernel_shapes(model, include) if include else _impl(model).kernel_shapes(model)


def kernel_values(model, masks: "Mapping[str, np.ndarray] | None" = None, include=()) -> "dict[str, np.ndarray]":
    """The current kernels of ``model`` as numpy arrays, multiplied by ``masks`` where given."""
    include = _include(model, include)
    values = _impl(model).kernel_values(model, include) if include else _impl(model).kernel_values(model)
    if masks:
        for name, mask in masks.items():
            values[name] = values[name] * np.asarray(mask).astype(values[name].dtype)
    return values


def loss_net(model, batches, strip_softmax: bool = False, include=(), strategy=None):
    """A net of ``model`` as it is (float16 layers compute in float32), fed ``batches``; with
    ``strip_softmax`` the outputs are the pre-softmax logits. With a ``tf.distribute`` ``strategy``
    (tf_keras models) each batch is split across its replicas and the per-replica sums are
    all-reduced (:mod:`tfprune.scoring._distributed`)."""
    include = _include(model, include)
    if strategy is not None:
        from tfprune.scoring import _distributed
        if include:
            raise ValueError(f"include: got {include!r}; distributed scoring (strategy=) takes tf_keras models only.")
        return _distributed.loss_net(model, batches, strip_softmax, strategy)
    if include:
        return _impl(model).loss_net(model, batches, strip_softmax, include)
    return _impl(model).loss_net(model, batches, strip_softmax)


def flow_net(model, ones: np.ndarray, paths: bool = False, include=()):
    """SynFlow's net: float64, pre-softmax outputs, every weight replaced by its absolute value,
    fed the one batch ``ones``. With ``paths``: activations, biases and BatchNorm are the identity
    (the path-counting pass of :func:`tfprune.scoring.path_flow`). The tf_keras net (not
    ``paths``) is reused by the next call for the same model in the same thread, with the
    model's weights copied in again (no new clone, no new trace)."""
    include = _include(model, include)
    if include:
        return _impl(model).flow_net(model, ones, paths, include)
    if not _keras3.is_keras3(model):
        from tfprune.scoring import _tfkeras_flow
        return _tfkeras_flow.flow_net(model, ones, paths)
    return _impl(model).flow_net(model, ones, paths)


def masked_hessian_gradient(net, masks, objective):
    """``(w, g, hg)``: ``w, g = net.masked_gradient(masks, objective)`` and ``hg`` the
    Hessian-gradient product ``net.hessian_gradient(w, objective, g)``; one pass where the net
    can (see ``net.masked_hessian_gradient``)."""
    if hasattr(net, "masked_hessian_gradient"):
        return net.masked_hessian_gradient(masks, objective)
    w, g = net.masked_gradient(masks, objective)
    return w, g, net.hessian_gradient(w, objective, g)


def effective(base: Mapping[str, np.ndarray], masks) -> "dict[str, np.ndarray]":
    """``base * masks`` for the masked keys, ``base`` elsewhere."""
    return {n: base[n] * masks[n] if masks and n in masks else base[n] for n in base}
