"""Reverse-mode autodiff of a Keras 3 model on its backend: the one backend-specific piece of
scoring (``keras.ops`` has no gradients).

``gradient(f)`` and ``hessian_gradient(f)`` take ``f(kernels, x, y) -> scalar`` (``kernels`` a
list of backend tensors) and return functions of ``(kernels, x, y)`` (and ``g``) giving the list
of ∇f, resp. ∇(∇f · g), as backend tensors: ``tf.GradientTape`` in a ``tf.function``,
``jax.grad`` under ``jax.jit``, ``torch.autograd.grad``.
"""
from __future__ import annotations


def _zeros_for_none(grads, like, zeros_like):
    return [zeros_like(k) if g is None else g for g, k in zip(grads, like)]


def _tensorflow(f):
    import tensorflow as tf

    def dense(grads):  # an Embedding lookup's gradient is IndexedSlices
        return [g if g is None else tf.convert_to_tensor(g) for g in grads]

    def grad(ks, x, y):
        with tf.GradientTape() as tape:
            tape.watch(ks)
            value = f(ks, x, y)
        return _zeros_for_none(dense(tape.gradient(value, ks)), ks, tf.zeros_like)

    def hvp(ks, x, y, g):
        with tf.GradientTape() as outer:
            outer.watch(ks)
            with tf.GradientTape() as inner:
                inner.watch(ks)
                value = f(ks, x, y)
            grads = _zeros_for_none(dense(inner.gradient(value, ks)), ks, tf.zeros_like)
            z = tf.add_n([tf.reduce_sum(a * tf.stop_gradient(b)) for a, b in zip(grads, g)])
        return _zeros_for_none(dense(outer.gradient(z, ks)), ks, tf.zeros_like)

    return tf.function(grad, reduce_retracing=True), tf.function(hvp, reduce_retracing=True)


def _jax(f):
    import jax
    import jax.numpy as jnp

    grad = jax.grad(f)

    def hvp(ks, x, y, g):
        return jax.grad(lambda k: sum(jnp.vdot(a, b) for a, b in zip(grad(k, x, y), g)))(ks)

    return jax.jit(grad), jax.jit(hvp)


def _torch(f):
    import torch

    def leaves(ks):
        return [k.detach().requires_grad_(True) for k in ks]

    def grad(ks, x, y):
        ks = leaves(ks)
        grads = torch.autograd.grad(f(ks, x, y), ks, allow_unused=True)
        return [g.detach() for g in _zeros_for_none(grads, ks, torch.zeros_like)]

    def hvp(ks, x, y, g):
        # the fused CPU attention kernels have no second derivative: the math kernel has
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel([SDPBackend.MATH]):
            return _hvp(ks, x, y, g)

    def _hvp(ks, x, y, g):
        ks = leaves(ks)
        grads = torch.autograd.grad(f(ks, x, y), ks, create_graph=True, allow_unused=True)
        z = sum((a * b.detach()).sum() for a, b in zip(grads, g) if a is not None)
        if not torch.is_tensor(z) or not z.requires_grad:
            return [torch.zeros_like(k) for k in ks]
        return [h.detach() for h in _zeros_for_none(torch.autograd.grad(z, ks, allow_unused=True), ks, torch.zeros_like)]

    return grad, hvp


BACKENDS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}
PACKAGES = {"tensorflow": "tensorflow", "jax": "'jax[cpu]'", "torch": "torch"}


def differentiate(backend: str, f):
    """``(gradient, hessian_gradient)`` of ``f`` on ``backend``."""
    if backend not in BACKENDS:
        raise ValueError(f"KERAS_BACKEND: tfprune scores Keras 3 models on {sorted(BACKENDS)}, got {backend!r}.")
    try:
        return BACKENDS[backend](f)
    except ImportError as err:
        raise ImportError(f"KERAS_BACKEND={backend}: scoring needs the {backend} package ({err}); "
                          f"pip install {PACKAGES[backend]} (or tfprune[keras3]).") from err
