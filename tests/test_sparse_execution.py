"""Sparse execution of fixed-mask Dense layers (tfprune.sparse_ops, tfprune.sparse_dense):
equal to the masked dense step up to float rounding, cheaper state, strip/export unchanged."""
import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import tfprune
from tfprune import sparse_dense, sparse_ops


# ------------------------------------------------------------------ the product and its gradients

def _hand_case():
    mask = np.array([[1, 0], [0, 1], [1, 1]], np.float32)          # (n_in=3, n_out=2)
    kernel = np.array([[1, 0], [0, 4], [5, 6]], np.float32)
    return mask, kernel, sparse_ops.SparseIndex.from_mask(mask)


@pytest.mark.parametrize("method", sparse_ops.VALUE_GRADIENTS)
def test_product_and_gradients_by_hand(method):
    mask, kernel, index = _hand_case()
    # values in the row-major order of the transposed kernel: (j, i) = (0,0), (0,2), (1,1), (1,2)
    assert index.gather(kernel).tolist() == [1, 5, 4, 6]
    x = tf.constant([[1.0, 2.0, 3.0]])
    values = tf.Variable(index.gather(kernel))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = sparse_ops.sparse_matmul(x, values, index, method)
        loss = tf.reduce_sum(y)                                       # g = [[1, 1]]
    dx, dv = tape.gradient(loss, [x, values])
    assert y.numpy().tolist() == [[16.0, 26.0]]                      # x @ kernel
    assert dx.numpy().tolist() == [[1.0, 4.0, 11.0]]                 # g @ kernelᵀ: row sums
    assert dv.numpy().tolist() == [1.0, 3.0, 2.0, 3.0]               # x[i_k] · g[j_k]


@pytest.mark.parametrize("method", sparse_ops.VALUE_GRADIENTS)
def test_gradients_equal_the_masked_dense_ones(method):
    rng = np.random.default_rng(1)
    mask = (rng.random((37, 23)) < 0.2).astype(np.float32)
    kernel = rng.standard_normal((37, 23)).astype(np.float32) * mask
    index = sparse_ops.SparseIndex.from_mask(mask)
    x = tf.constant(rng.standard_normal((9, 37)).astype(np.float32))
    values, dense = tf.Variable(index.gather(kernel)), tf.Variable(kernel)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        sparse_loss = tf.reduce_sum(tf.sin(sparse_ops.sparse_matmul(x, values, index, method)))
        dense_loss = tf.reduce_sum(tf.sin(x @ dense))
    np.testing.assert_allclose(sparse_loss, dense_loss, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(sparse_loss, x), tape.gradient(dense_loss, x), atol=1e-5)
    np.testing.assert_allclose(tape.gradient(sparse_loss, values), index.gather(tape.gradient(dense_loss, dense)),
                               atol=1e-5)
    assert np.array_equal(index.scatter(index.gather(kernel)), kernel)


def test_index_refuses_a_non_matrix_and_a_bad_method():
    with pytest.raises(ValueError, match=r"mask: expected a 2-D"):
        sparse_ops.SparseIndex.from_mask(np.ones((2, 2, 2)))
    _, _, index = _hand_case()
    with pytest.raises(ValueError, match=r"method: got 'fast'; allowed"):
        sparse_ops.value_gradient(tf.ones((1, 3)), tf.ones((1, 2)), index, "fast")


# ------------------------------------------------------------------ the layer inside a model

def _mlp(seed=0, hidden=24):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((20,))
    h = keras.layers.Dense(hidden, activation="relu", name="fc1")(inputs)
    return keras.Model(inputs, keras.layers.Dense(10, name="output")(h))


def _data(n=48):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 20)).astype(np.float32), rng.integers(0, 10, n)


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("epochs", [1, 3])
def test_fit_equals_the_masked_dense_fit(optimizer, epochs):
    x, y = _data()
    trained = {}
    for execution in ("dense", "sparse"):
        model = tfprune.prune_at_init(_mlp(), "magnitude", 0.8, execution=execution)
        model.compile(keras.optimizers.get({"class_name": optimizer, "config": {"learning_rate": 0.05}}), LOSS)
        # epochs=1, batch 48: exactly one step
        model.fit(x, y, batch_size=48 if epochs == 1 else 16, epochs=epochs, verbose=0, shuffle=False,
                  callbacks=tfprune.callbacks())
        trained[execution] = (model, tfprune.strip(model))
    (masked, plain_masked), (sparse, plain_sparse) = trained["dense"], trained["sparse"]
    assert sparse_dense.sparse_layers(sparse) == ["fc1", "output"]
    masks, sparse_masks = tfprune.get_masks(masked), tfprune.get_masks(sparse)
    assert all(np.array_equal(masks[k], sparse_masks[k]) for k in masks)             # bit-identical masks
    assert tfprune.sparsity_report(sparse).to_dict() == tfprune.sparsity_report(masked).to_dict()
    for a, b, layer in zip(plain_masked.get_weights(), plain_sparse.get_weights(), ["k1", "b1", "k2", "b2"]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=layer)
    for name, mask in masks.items():  # the stripped kernel is the masked dense kernel: pruned entries +0.0
        kernel = plain_sparse.get_layer(name).kernel.numpy()
        assert np.all(kernel[mask == 0] == 0) and not np.signbit(kernel[mask == 0]).any()
        assert np.count_nonzero(kernel[mask != 0]) == mask.sum()
    np.testing.assert_allclose(sparse.predict(x, verbose=0), masked.predict(x, verbose=0), rtol=1e-4, atol=1e-5)


def test_optimizer_state_and_gradients_cover_the_kept_weights_only():
    x, y = _data()
    model = tfprune.prune_at_init(_mlp(), "random", 0.9, seed=0, execution="sparse")
    kept = int(sum(m.sum() for m in tfprune.get_masks(model).values()))
    model.compile(keras.optimizers.Adam(1e-3), LOSS)
    model.fit(x, y, epochs=1, verbose=0)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert trainable == kept + 24 + 10                                               # values + biases
    slots = [v for v in model.optimizer.variables() if len(v.shape) > 0]
    assert sum(int(np.prod(v.shape)) for v in slots) == 2 * trainable                # Adam: m and v, nothing else


def test_custom_loop_then_sync_kernels():
    x, y = _data()
    models = {e: tfprune.prune_at_init(_mlp(), "magnitude", 0.7, execution=e) for e in ("dense", "sparse")}
    for model in models.values():
        optimizer = keras.optimizers.Adam(0.01)
        for _ in range(3):
            with tf.GradientTape() as tape:
                loss = LOSS(y, model(x, training=True))
            optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_weights), model.trainable_weights))
    sparse_dense.sync_kernels(models["sparse"])
    masks = tfprune.get_masks(models["dense"])
    for name in ("fc1", "output"):
        dense_kernel = models["dense"].get_layer(f"fixed_mask_wrapper_{name}").layer.kernel.numpy() * masks[name]
        sparse_kernel = [l for l in models["sparse"].layers if l.name.endswith(name)][0].layer.kernel.numpy()
        np.testing.assert_allclose(sparse_kernel, dense_kernel, rtol=1e-5, atol=1e-6)


def test_auto_picks_large_sparse_dense_layers_only():
    tiny = tfprune.prune_at_init(_mlp(), "random", 0.98, seed=0, execution="auto")
    assert sparse_dense.sparse_layers(tiny) == []                                  # too small to pay
    big = tfprune.prune_at_init(_mlp(hidden=6000), "random", 0.98, seed=0, execution="auto")
    assert sparse_dense.sparse_layers(big) == ["fc1"]                               # 120,000 weights; output: 60,000
    dense_enough = tfprune.prune_at_init(_mlp(hidden=6000), "random", 0.5, seed=0, execution="auto")
    assert sparse_dense.sparse_layers(dense_enough) == []
    assert sparse_dense.pays(4096, 4096, int(0.02 * 4096 ** 2)) and not sparse_dense.pays(300, 100, 600)


def test_ineligible_layers_stay_masked_dense_and_sequences_work():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 8))
    h = keras.layers.Conv1D(4, 3, name="conv")(inputs)
    h = keras.layers.Dense(5, name="seq", kernel_regularizer="l2")(h)
    out = keras.layers.Dense(3, name="dense3d")(h)                                   # rank-3 input
    model = tfprune.prune_at_init(keras.Model(inputs, out), "magnitude", 0.5, execution="sparse")
    assert sparse_dense.sparse_layers(model) == ["dense3d"]
    assert "regularizer" in sparse_dense.why_not_eligible(model.get_layer("fixed_mask_wrapper_seq"))
    x = np.random.default_rng(0).standard_normal((2, 6, 8)).astype(np.float32)
    np.testing.assert_allclose(model(x), tfprune.strip(model)(x), rtol=1e-5, atol=1e-6)


def test_bad_execution_keras3_and_re_masking_are_refused():
    with pytest.raises(ValueError, match=r"^execution: got 'fast'; allowed: 'dense', 'sparse', 'auto'\.$"):
        tfprune.prune_at_init(_mlp(), "random", 0.5, execution="fast")
    import keras as keras3
    inputs = keras3.Input((4,))
    model3 = keras3.Model(inputs, keras3.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match=r"execution: got 'sparse' for a Keras 3 model"):
        tfprune.prune_at_init(model3, "random", 0.5, execution="sparse")
    sparse = tfprune.prune_at_init(_mlp(), "random", 0.5, seed=0, execution="sparse")
    with pytest.raises(ValueError, match=r"run sparse"):
        tfprune.prune_at_init(sparse, "random", 0.8, seed=0)
    with pytest.raises(ValueError, match=r"run sparse"):
        tfprune.apply_masks(sparse, tfprune.get_masks(sparse))
