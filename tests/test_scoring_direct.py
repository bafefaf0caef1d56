"""SNIP and GraSP without a scoring clone (tf_keras): passes at the model's own kernels run on the
user's model itself when that cannot change it, and GraSP's g and H·g come from one pass. Both
must give exactly (bit for bit) what the clone and the two separate passes give."""
import numpy as np
import pytest
import tensorflow as tf

import tfprune
from tfprune._keras import keras
from tfprune.scoring import _tfkeras_net, nets
from tfprune.scoring._tfkeras_clone import same_as_its_scoring_clone
from tfprune.scoring.grasp import tempered_loss
from tfprune.scoring.snip import mean_loss

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def conv_net(seed=0, softmax=False, **dense):
    """Conv + BatchNorm (moving statistics away from 0/1) + Dropout + Dense: every layer whose
    inference call could write a variable if it ran in training mode."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 2))
    h = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = keras.layers.Dropout(0.5)(keras.layers.Flatten()(keras.layers.ReLU()(h)))
    outputs = keras.layers.Dense(3, name="out", activation="softmax" if softmax else None, **dense)(h)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.linspace(-0.5, 0.5, 4)), bn.moving_variance.assign(np.linspace(0.5, 2.0, 4))
    return model


def batch(n=12, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6, 6, 2)).astype(np.float32), np.arange(n) % 3


def snapshot(model):
    return [np.array(w, copy=True) for w in model.get_weights()]


def test_which_models_are_differentiated_in_place():
    assert same_as_its_scoring_clone(conv_net())
    assert same_as_its_scoring_clone(conv_net(softmax=True))                         # SNIP keeps the softmax
    assert not same_as_its_scoring_clone(conv_net(softmax=True), strip_softmax=True)  # GraSP scores logits
    assert not same_as_its_scoring_clone(conv_net(activity_regularizer="l2"))        # would record a loss
    wrapped = tfprune.apply_masks(conv_net(), {"conv": np.ones((3, 3, 2, 4), np.float32)})
    assert not same_as_its_scoring_clone(wrapped)

    class Custom(keras.layers.Layer):  # a class outside tf_keras: its call is unknown
        def call(self, x):
            return x

    inputs = keras.Input((4,))
    assert not same_as_its_scoring_clone(keras.Model(inputs, keras.layers.Dense(2)(Custom()(inputs))))
    assert not same_as_its_scoring_clone(keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Lambda(lambda t: t)(inputs))))
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        half = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert not same_as_its_scoring_clone(half)                                         # the clone computes in float32


@pytest.mark.parametrize("method", ["snip", "grasp"])
def test_in_place_scores_equal_the_clones_bit_for_bit_and_build_no_clone(method):
    model, (x, y) = conv_net(), batch()
    net = nets.loss_net(model, [(x, y)], strip_softmax=method == "grasp")
    assert net._direct is model
    objective = mean_loss(LOSS) if method == "snip" else tempered_loss(LOSS, 200.0)
    clone_net = _tfkeras_net.TfKerasNet(net._clone, [(x, y)], source=net._source)  # the same net, via its clone
    if method == "snip":
        got, want = net.masked_gradient(None, objective), clone_net.masked_gradient(None, objective)
    else:
        got, want = nets.masked_hessian_gradient(net, None, objective), clone_net.masked_hessian_gradient(None, objective)
    assert not isinstance(net._clone, keras.Model)  # never built: the pass ran on the model itself
    for a, b in zip(got, want):
        for name in net.names:
            np.testing.assert_array_equal(a[name], b[name])
            assert np.any(a[name] != 0)


@pytest.mark.parametrize("masks", [None, "half"])
def test_one_pass_g_and_hg_equal_the_two_passes_bit_for_bit(masks):
    model, (x, y) = conv_net(seed=2), batch(seed=2)
    rng = np.random.default_rng(2)
    if masks:
        masks = {"conv": (rng.random((3, 3, 2, 4)) < 0.5).astype(np.float32)}
    objective = tempered_loss(LOSS, 200.0)
    w, g, hg = nets.loss_net(model, [(x, y)], strip_softmax=True).masked_hessian_gradient(masks, objective)
    net = nets.loss_net(model, [(x, y)], strip_softmax=True)
    w2, g2 = net.masked_gradient(masks, objective)
    hg2 = net.hessian_gradient(w2, objective, g2)
    for name in net.names:
        np.testing.assert_array_equal(w[name], w2[name])
        np.testing.assert_array_equal(g[name], g2[name])
        np.testing.assert_array_equal(hg[name], hg2[name])
    if masks:
        assert np.all(w["conv"][masks["conv"] == 0] == 0)


def test_grasp_over_several_batches_equals_one_full_batch():
    """Several batches: g is the mean over all of them before any H·g (two passes per batch)."""
    model, (x, y) = conv_net(seed=3), batch(n=10, seed=3)
    full = tfprune.compute_scores(model, "grasp", data=(x, y), loss=LOSS)
    batched = tfprune.compute_scores(model, "grasp", data=tf.data.Dataset.from_tensor_slices((x, y)).batch(4), loss=LOSS)
    for name in full:
        np.testing.assert_allclose(batched[name], full[name], rtol=1e-4, atol=1e-12 * np.abs(full[name]).max())


@pytest.mark.parametrize("method", ["snip", "grasp"])
def test_the_users_model_weights_and_masks_are_bit_identical_after_compute_masks(method):
    x, y = batch()
    plain = conv_net(seed=4)
    before = snapshot(plain)
    tfprune.compute_masks(plain, method, 0.6, data=(x, y), loss=LOSS)  # in place (BatchNorm, Dropout)
    for a, b in zip(before, snapshot(plain)):
        np.testing.assert_array_equal(a, b)

    wrapped = tfprune.prune_at_init(conv_net(seed=5), "magnitude", 0.5)  # TF-MOT writes weight * mask on call
    masks, weights = tfprune.get_masks(wrapped), snapshot(wrapped)
    again = tfprune.compute_masks(wrapped, method, 0.8, data=(x, y), loss=LOSS)
    for a, b in zip(weights, snapshot(wrapped)):
        np.testing.assert_array_equal(a, b)
    for name, mask in tfprune.get_masks(wrapped).items():
        np.testing.assert_array_equal(mask, masks[name])
        assert np.all(again[name][mask == 0] == 0)  # within the masks
