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


def per_example_chunk(weights: int, budget: int = 2 ** 23) -> int:
    """Examples per vectorized per-example pass: its Jacobian holds ``examples × values × weights``
    numbers; keep ``examples × weights`` within ``budget`` (32 MiB of float32 per value)."""
    return max(1, budget // max(weights, 1))


def _squared_tensorflow(f):
    import tensorflow as tf

    def squared(ks, x, y):
        with tf.GradientTape() as tape:
            tape.watch(ks)
            values = f(ks, x, y)
            values = tf.reshape(values, [tf.shape(values)[0], -1])
        jacobians = _zeros_for_none(tape.jacobian(values, ks, experimental_use_pfor=True), ks, tf.zeros_like)
        n = tf.cast(tf.shape(values)[0], ks[0].dtype)
        return [tf.reduce_sum(tf.square(tf.convert_to_tensor(j)), axis=[0, 1]) / n for j in jacobians]

    return tf.function(squared, reduce_retracing=True)


def _squared_jax(f):
    import jax
    import jax.numpy as jnp

    def one(ks, x, y):  # one example's row of values
        x, y = jax.tree_util.tree_map(lambda a: a[None], (x, y))
        return jnp.reshape(f(ks, x, y), (-1,))

    def squared(ks, x, y):
        jacobians = jax.vmap(jax.jacrev(one), in_axes=(None, 0, 0))(ks, x, y)
        return [jnp.sum(jnp.square(j), axis=(0, 1)) / j.shape[0] for j in jacobians]

    return jax.jit(squared)


def _squared_torch(f):
    import keras
    import torch

    def squared(ks, x, y):
        ks = [k.detach().requires_grad_(True) for k in ks]
        total, n = [torch.zeros_like(k) for k in ks], len(keras.tree.flatten(x)[0])
        for i in range(n):
            xi, yi = keras.tree.map_structure(lambda a: a[i:i + 1], (x, y))
            values = f(ks, xi, yi).reshape(-1)
            for j in range(values.shape[0]):
                grads = torch.autograd.grad(values[j], ks, retain_graph=True, allow_unused=True)
                total = [t if g is None else t + g.detach() ** 2 for t, g in zip(total, grads)]
        return [t / n for t in total]

    return squared


BACKENDS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}
SQUARED = {"tensorflow": _squared_tensorflow, "jax": _squared_jax, "torch": _squared_torch}
PACKAGES = {"tensorflow": "tensorflow", "jax": "'jax[cpu]'", "torch": "torch"}


def differentiate(backend: str, f, table=BACKENDS):
    """``(gradient, hessian_gradient)`` of ``f`` on ``backend`` (``table=SQUARED``: squared_gradients)."""
    if backend not in table:
        raise ValueError(f"KERAS_BACKEND: tfprune scores Keras 3 models on {sorted(table)}, got {backend!r}.")
    try:
        return table[backend](f)
    except ImportError as err:
        raise ImportError(f"KERAS_BACKEND={backend}: scoring needs the {backend} package ({err}); "
                          f"pip install {PACKAGES[backend]} (or tfprune[keras3]).") from err
