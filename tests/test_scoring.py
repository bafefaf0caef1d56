"""Each scoring rule against a hand-computed value on tiny networks."""
import numpy as np
import pytest
import tensorflow as tf

import tfprune
from tfprune._keras import keras


def linear_net(in_dim=5, hidden=4, out=3, dtype="float32", softmax=False, seed=0, bias=False):
    """y = x K1 K2 (Keras layout: K1 [in, hidden], K2 [hidden, out])."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((in_dim,), dtype=dtype),
        keras.layers.Dense(hidden, use_bias=bias, name="l1", dtype=dtype),
        keras.layers.Dense(out, use_bias=bias, name="l2", dtype=dtype,
                           activation="softmax" if softmax else None),
    ])


def weights(model):
    return model.get_layer("l1").kernel.numpy().astype(np.float64), model.get_layer("l2").kernel.numpy().astype(np.float64)


# ---------------------------------------------------------------- SynFlow (closed form)

@pytest.mark.parametrize("softmax", [False, True])
def test_synflow_matches_closed_form_of_two_layer_linear_net(softmax):
    # R = 1ᵀ|K1||K2|1  ⇒  ∂R/∂K1[i,j] = Σ_k |K2[j,k]|,  ∂R/∂K2[j,k] = Σ_i |K1[i,j]|.
    model = linear_net(softmax=softmax)
    k1, k2 = weights(model)
    scores = tfprune.compute_scores(model, "synflow")
    expected_1 = np.abs(k1) * np.abs(k2).sum(axis=1)[None, :]
    expected_2 = np.abs(k2) * np.abs(k1).sum(axis=0)[:, None]
    np.testing.assert_allclose(scores["l1"], expected_1, rtol=1e-12)
    np.testing.assert_allclose(scores["l2"], expected_2, rtol=1e-12)
    assert scores["l1"].dtype == np.float64


def test_synflow_conserves_the_score_flowing_through_every_hidden_unit():
    # Tanaka et al. 2020, Theorem 1: in a ReLU network without biases, for every hidden unit the
    # SynFlow scores of its incoming weights sum to those of its outgoing weights.
    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input((7,)), keras.layers.Dense(6, activation="relu", use_bias=False, name="a"),
                              keras.layers.Dense(5, activation="relu", use_bias=False, name="b"),
                              keras.layers.Dense(3, use_bias=False, name="c")])
    scores = tfprune.compute_scores(model, "synflow")
    for inner, outer in (("a", "b"), ("b", "c")):
        incoming = scores[inner].sum(axis=0)   # kernel [in, out]: column j feeds unit j
        outgoing = scores[outer].sum(axis=1)   # row j leaves unit j
        np.testing.assert_allclose(incoming, outgoing, rtol=1e-12)
        assert incoming.min() > 0
    # and the total is the same in every layer (each layer is a cut through all the paths)
    totals = [scores[n].sum() for n in ("a", "b", "c")]
    np.testing.assert_allclose(totals, totals[0], rtol=1e-12)


def test_synflow_uses_absolute_values_of_every_parameter_including_batchnorm():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(5, name="a"),
                              keras.layers.BatchNormalization(name="bn"), keras.layers.Dense(2, name="b")])
    bn = model.get_layer("bn")
    bn.set_weights([np.linspace(0.5, 1.5, 5), np.linspace(-1, 1, 5), np.linspace(-0.2, 0.3, 5), np.linspace(1, 2, 5)])
    reference = tfprune.compute_scores(model, "synflow")
    # Flipping signs of any parameter (BN gamma/beta/mean, kernels, biases) must not change SynFlow scores.
    flipped = [-w if w.ndim and i != 3 else w for i, w in enumerate(bn.get_weights())]
    bn.set_weights(flipped)
    model.get_layer("a").set_weights([-w for w in model.get_layer("a").get_weights()])
    again = tfprune.compute_scores(model, "synflow")
    for name in reference:
        np.testing.assert_array_equal(reference[name], again[name])


def test_synflow_float64_survives_products_that_underflow_float32():
    # 24 layers with weights ~1e-3: path products ~1e-72 underflow float32 (min ~1e-45).
    layers = [keras.Input((4,))]
    for i in range(24):
        layers.append(keras.layers.Dense(4, use_bias=False, name=f"d{i}",
                                         kernel_initializer=keras.initializers.Constant(1e-3)))
    model = keras.Sequential(layers)
    scores = tfprune.compute_scores(model, "synflow")
    assert all(np.all(s > 0) for s in scores.values())
    assert np.float32(min(s.min() for s in scores.values())) == 0.0  # would be lost in float32


def test_synflow_iterative_masks_are_exact_and_never_revive_pruned_weights():
    model = linear_net(in_dim=20, hidden=30, out=10)
    final = tfprune.compute_masks(model, "synflow", 0.9, rounds=10)
    total = sum(m.size for m in final.values())
    assert sum(int(m.sum()) for m in final.values()) == round(total * 0.1)
    # 0.9 after 10 rounds passes through density 0.1**0.3 ≈ 0.5 at round 3; its survivors ⊆ earlier survivors
    three = tfprune.compute_masks(model, "synflow", 1 - 0.1 ** 0.3, rounds=3)
    for name in final:
        assert np.all(final[name] <= three[name])


def test_scorers_do_not_modify_the_model():
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="a"),
                              keras.layers.BatchNormalization(), keras.layers.Dense(3, activation="softmax", name="b")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    x, y = np.random.rand(12, 6).astype("float32"), np.arange(12) % 3
    for method in tfprune.scorer_names():
        search = "sparsity" in tfprune.scoring.get_scorer(method).options  # edge_popup, gem_miner: one round
        tfprune.compute_masks(model, method, 0.7, data=(x, y), seed=0, rounds=1 if search else 2)
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- SNIP (closed form)

def numpy_mse_gradients(k1, k2, x, y, temperature=1.0):
    """Gradients of L = mean((x K1 K2 / T − y)²) with respect to K1, K2."""
    h = x @ k1
    z = h @ k2 / temperature
    dz = 2.0 * (z - y) / z.size
    return x.T @ (dz @ k2.T) / temperature, h.T @ dz / temperature


def test_snip_matches_hand_computed_gradient_of_linear_net():
    model = linear_net(dtype="float64")
    k1, k2 = weights(model)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(7, 3))
    g1, g2 = numpy_mse_gradients(k1, k2, x, y)
    scores = tfprune.compute_scores(model, "snip", data=(x, y), loss="mse")
    np.testing.assert_allclose(scores["l1"], np.abs(g1 * k1), rtol=1e-10)
    np.testing.assert_allclose(scores["l2"], np.abs(g2 * k2), rtol=1e-10)


def test_snip_over_several_batches_equals_one_full_batch():
    model = linear_net(dtype="float64")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(10, 5)), rng.normal(size=(10, 3))
    full = tfprune.compute_scores(model, "snip", data=(x, y), loss="mse")
    batched = tfprune.compute_scores(model, "snip", data=tf.data.Dataset.from_tensor_slices((x, y)).batch(4), loss="mse")
    for name in full:
        np.testing.assert_allclose(full[name], batched[name], rtol=1e-10)


def test_snip_uses_compiled_loss_and_masks_zero_the_masked_scores():
    model = linear_net(dtype="float64")
    model.compile("sgd", "mse")
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(7, 3))
    masks = {"l1": (rng.random((5, 4)) > 0.5).astype(np.float32), "l2": np.ones((4, 3), np.float32)}
    scores = tfprune.compute_scores(model, "snip", data=(x, y), masks=masks)
    k1, k2 = weights(model)
    g1, g2 = numpy_mse_gradients(k1 * masks["l1"], k2, x, y)
    np.testing.assert_allclose(scores["l1"], np.abs(g1 * k1 * masks["l1"]), rtol=1e-10, atol=1e-300)
    np.testing.assert_allclose(scores["l2"], np.abs(g2 * k2), rtol=1e-10)
    assert np.all(scores["l1"][masks["l1"] == 0] == 0)


# ---------------------------------------------------------------- GraSP (finite differences)

def test_grasp_matches_finite_difference_hessian_gradient_product():
    temperature = 3.0
    model = linear_net(dtype="float64")
    k1, k2 = weights(model)
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(9, 5)), rng.normal(size=(9, 3))
    g1, g2 = numpy_mse_gradients(k1, k2, x, y, temperature)
    eps = 1e-5
    p1, p2 = numpy_mse_gradients(k1 + eps * g1, k2 + eps * g2, x, y, temperature)
    m1, m2 = numpy_mse_gradients(k1 - eps * g1, k2 - eps * g2, x, y, temperature)
    hg1, hg2 = (p1 - m1) / (2 * eps), (p2 - m2) / (2 * eps)
    scores = tfprune.compute_scores(model, "grasp", data=(x, y), loss="mse", temperature=temperature)
    np.testing.assert_allclose(scores["l1"], -k1 * hg1, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(scores["l2"], -k2 * hg2, rtol=1e-6, atol=1e-12)


def test_grasp_softmax_model_is_scored_on_its_logits():
    logits_model = linear_net(dtype="float64", softmax=False, seed=4)
    softmax_model = linear_net(dtype="float64", softmax=True, seed=4)
    x = np.random.default_rng(4).normal(size=(12, 5))
    y = np.arange(12) % 3
    from_logits = tfprune.compute_scores(
        logits_model, "grasp", data=(x, y), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    from_probs = tfprune.compute_scores(softmax_model, "grasp", data=(x, y), loss="sparse_categorical_crossentropy")
    for name in from_logits:
        np.testing.assert_allclose(from_logits[name], from_probs[name], rtol=1e-9, atol=1e-15)
        assert np.any(from_logits[name] != 0)


def test_grasp_cross_entropy_matches_finite_differences():
    temperature = 200.0
    model = linear_net(dtype="float64", seed=5)
    k1, k2 = weights(model)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(8, 5)), np.arange(8) % 3
    onehot = np.eye(3)[y]

    def grads(a, b):
        h = x @ a
        z = h @ b / temperature
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        dz = (p - onehot) / len(x)
        return x.T @ (dz @ b.T) / temperature, h.T @ dz / temperature

    g1, g2 = grads(k1, k2)
    eps = 1e-3 * max(np.abs(k1).max(), np.abs(k2).max()) / max(np.abs(g1).max(), np.abs(g2).max())
    p1, p2 = grads(k1 + eps * g1, k2 + eps * g2)
    m1, m2 = grads(k1 - eps * g1, k2 - eps * g2)
    scores = tfprune.compute_scores(model, "grasp", data=(x, y),
                                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    np.testing.assert_allclose(scores["l1"], -k1 * (p1 - m1) / (2 * eps), rtol=1e-5, atol=1e-14)
    np.testing.assert_allclose(scores["l2"], -k2 * (p2 - m2) / (2 * eps), rtol=1e-5, atol=1e-14)


def test_grasp_prunes_the_highest_scores():
    model = linear_net(in_dim=10, hidden=10, out=3, dtype="float64", seed=6)
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(9, 10)), rng.normal(size=(9, 3))
    scores = tfprune.compute_scores(model, "grasp", data=(x, y), loss="mse")
    masks = tfprune.compute_masks(model, "grasp", 0.5, data=(x, y), loss="mse")
    kept = np.concatenate([scores[n][masks[n] == 1] for n in scores])
    pruned = np.concatenate([scores[n][masks[n] == 0] for n in scores])
    assert kept.max() <= pruned.min()
    assert tfprune.get_scorer("grasp").keep == "lowest"


# ---------------------------------------------------------------- random, magnitude

def test_magnitude_is_absolute_weight():
    model = linear_net()
    k1, k2 = weights(model)
    scores = tfprune.compute_scores(model, "magnitude")
    np.testing.assert_array_equal(scores["l1"], np.abs(k1).astype(np.float32))
    np.testing.assert_array_equal(scores["l2"], np.abs(k2).astype(np.float32))


def test_random_scores_are_seeded():
    model = linear_net()
    a = tfprune.compute_scores(model, "random", seed=7)
    b = tfprune.compute_scores(model, "random", seed=7)
    c = tfprune.compute_scores(model, "random", seed=8)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
        assert not np.array_equal(a[name], c[name])


def test_random_global_ranking_gives_about_equal_layer_density():
    model = linear_net(in_dim=200, hidden=100, out=50)
    masks = tfprune.compute_masks(model, "random", 0.8, seed=0)
    densities = [m.mean() for m in masks.values()]
    assert all(abs(d - 0.2) < 0.02 for d in densities)


def test_custom_scorer_can_be_registered():
    from tfprune.scoring import kernel_values, unregister_scorer

    def make_square(model, data=None, loss=None):
        return lambda masks=None: {n: np.square(v) for n, v in kernel_values(model, masks).items()}

    tfprune.register_scorer("square_test", make_square, needs_data=False)
    try:
        model = linear_net()
        np.testing.assert_array_equal(tfprune.compute_masks(model, "square_test", 0.5)["l1"],
                                      tfprune.compute_masks(model, "magnitude", 0.5)["l1"])
        with pytest.raises(ValueError, match="already registered"):
            tfprune.register_scorer("square_test", make_square, needs_data=False)
    finally:
        unregister_scorer("square_test")
    assert "square_test" not in tfprune.scorer_names()


# ---------------------------------------------------------------- masked passes (the iterative scorers' step)

def test_synflow_masked_in_place_equals_the_closed_form_whatever_the_order_of_the_masks():
    """SynFlow masks the kernels its net holds in place while masks only shrink, and starts again
    from |θ| when a weight comes back: every call equals the closed form for its own masks."""
    from tfprune.scoring.synflow import make_synflow

    model = linear_net(in_dim=6, hidden=5, out=4)
    k1, k2 = weights(model)
    rng = np.random.default_rng(0)
    big = {"l1": (rng.random(k1.shape) < 0.8).astype(np.float32), "l2": (rng.random(k2.shape) < 0.8).astype(np.float32)}
    small = {n: m * (rng.random(m.shape) < 0.5) for n, m in big.items()}
    other = {"l1": (rng.random(k1.shape) < 0.5).astype(np.float32)}          # l2 unmasked, l1 not nested
    score = make_synflow(model)
    for masks in (None, big, small, small, other, big, None):
        m1, m2 = (masks or {}).get("l1", np.ones_like(k1)), (masks or {}).get("l2", np.ones_like(k2))
        a1, a2 = np.abs(k1) * m1, np.abs(k2) * m2
        got = score(masks)
        np.testing.assert_allclose(got["l1"], a1 * a2.sum(axis=1)[None, :], rtol=1e-12)
        np.testing.assert_allclose(got["l2"], a2 * a1.sum(axis=0)[:, None], rtol=1e-12)
    assert model.get_layer("l1").kernel.numpy().astype(np.float64) == pytest.approx(k1)  # the user's model untouched


def test_snip_after_a_mask_search_step_starts_from_the_models_kernels_again():
    """A net whose kernels were set by ``gradient`` (the mask searches) gives SNIP scores of the
    model's own kernels on the next masked call."""
    from tfprune.scoring import nets
    from tfprune.scoring.snip import make_snip, mean_loss

    model = linear_net()
    x = np.random.default_rng(1).random((8, 5)).astype(np.float32)
    y = np.arange(8) % 3
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    batches = [(x, y)]
    want = make_snip(model, batches, loss)(None)
    net = nets.loss_net(model, batches)
    net.gradient({"l1": np.zeros((5, 4)), "l2": np.ones((4, 3))}, mean_loss(loss))
    w, g = net.masked_gradient(None, mean_loss(loss))
    np.testing.assert_allclose(np.abs(w["l1"] * g["l1"]), want["l1"], rtol=1e-6)


def test_synflow_scores_of_the_alive_weights_equal_the_closed_form():
    """After round 1 SynFlow scores only the survivors, zeroing what each round dropped in place:
    every round equals the closed form of its masks, at the alive weights."""
    from tfprune.allocation.survivors import Survivors
    from tfprune.scoring.synflow import make_synflow

    model = linear_net(in_dim=6, hidden=5, out=4)
    k1, k2 = weights(model)
    score = make_synflow(model)
    state = Survivors({"l1": k1.shape, "l2": k2.shape})
    state.keep({n: state.gather(n, s) for n, s in score(None).items()}, 0.2)
    for sparsity in (0.4, 0.6, 0.8):
        m = state.masks()
        a1, a2 = np.abs(k1) * m["l1"], np.abs(k2) * m["l2"]
        keys = score.alive(state)
        got = state.split(keys)
        np.testing.assert_allclose(got["l1"], state.gather("l1", a1 * a2.sum(axis=1)[None, :]), rtol=1e-12)
        np.testing.assert_allclose(got["l2"], state.gather("l2", a2 * a1.sum(axis=0)[:, None]), rtol=1e-12)
        state.keep(keys, sparsity)


def small_conv_net(seed=4):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((8, 8, 2)), keras.layers.Conv2D(6, 3, name="c1", activation="relu"),
                             keras.layers.BatchNormalization(), keras.layers.Conv2D(5, 3, name="c2", activation="relu"),
                             keras.layers.Flatten(), keras.layers.Dense(7, name="d1", activation="relu"),
                             keras.layers.Dense(3, name="d2")])


@pytest.mark.parametrize("options", [{}, {"scope": "layerwise"}, {"exclude": ["c2"]}, {"within": True},
                                     {"within": True, "exclude": ["c2"]}, {"threads": True}])
def test_synflow_over_survivors_gives_the_masks_of_the_dense_rounds(options, monkeypatch):
    """compute_masks' survivor path (tf_keras SynFlow, rounds > 1) and the dense path (score every
    weight, allocate(within=...)) give bit-identical masks (``threads``: the layers' scores are
    gathered on threads, as above 1M alive weights)."""
    from tfprune.allocation import survivors
    from tfprune.scoring import registry, synflow

    model = small_conv_net()
    options = dict(options)
    if options.pop("threads", False):
        monkeypatch.setattr(survivors, "THREADS", 3)
        monkeypatch.setattr(survivors, "_PARALLEL", 0)
    if options.get("within"):
        rng = np.random.default_rng(2)
        options["within"] = {n: (rng.random(k.shape) < 0.5).astype(np.float32)
                             for n, k in tfprune.compute_scores(model, "magnitude").items()}
    fast = tfprune.compute_masks(model, "synflow", 0.97, rounds=12, **options)
    make = synflow.make_synflow
    monkeypatch.setitem(registry._REGISTRY, "synflow", registry._REGISTRY["synflow"].__class__(
        **{**registry._REGISTRY["synflow"].__dict__, "make": lambda *a, **k: (lambda f: lambda masks=None: f(masks))(make(*a, **k))}))
    dense = tfprune.compute_masks(model, "synflow", 0.97, rounds=12, **options)
    assert list(fast) == list(dense)
    for n in dense:
        np.testing.assert_array_equal(fast[n], dense[n], err_msg=n)


def test_synflow_reuses_its_net_for_the_same_model_and_scores_the_weights_it_holds_now():
    """A second compute_masks on the same model reuses SynFlow's float64 net (no new clone, no new
    trace) with the model's current weights: its masks equal those of a fresh model holding
    these weights. Another model, or another thread, gets a net of its own."""
    import threading

    from tfprune.scoring import _tfkeras_flow as _tfkeras_net

    model, twin = small_conv_net(seed=4), small_conv_net(seed=5)
    first = tfprune.compute_masks(model, "synflow", 0.9, rounds=6)
    net = _tfkeras_net._LAST_FLOW_NET[2]
    again = tfprune.compute_masks(model, "synflow", 0.9, rounds=6)
    assert _tfkeras_net._LAST_FLOW_NET[2] is net
    for n in first:
        np.testing.assert_array_equal(again[n], first[n], err_msg=n)
    model.set_weights(twin.get_weights())  # kernels, biases and BatchNorm statistics change
    now = tfprune.compute_masks(model, "synflow", 0.9, rounds=6)
    assert _tfkeras_net._LAST_FLOW_NET[2] is net
    want = tfprune.compute_masks(twin, "synflow", 0.9, rounds=6)
    assert _tfkeras_net._LAST_FLOW_NET[2] is not net
    assert any((now[n] != first[n]).any() for n in now)
    for n in want:
        np.testing.assert_array_equal(now[n], want[n], err_msg=n)
    other = {}
    thread = threading.Thread(target=lambda: other.update(tfprune.compute_masks(twin, "synflow", 0.9, rounds=6)))
    thread.start()
    thread.join()
    assert _tfkeras_net._LAST_FLOW_NET[2].clone is not None and _tfkeras_net._LAST_FLOW_NET[1][2] != threading.get_ident()
    for n in want:
        np.testing.assert_array_equal(other[n], want[n], err_msg=n)


def test_synflow_kept_net_holds_no_reference_to_the_model():
    """The net kept for the next call holds copies: the model's variables are freed with it."""
    import gc
    import weakref

    model = linear_net()
    kernel = weakref.ref(model.get_layer("l1").kernel)
    tfprune.compute_masks(model, "synflow", 0.5, rounds=3)
    del model
    gc.collect()
    assert kernel() is None


def test_synflow_kept_net_is_freed_with_its_model():
    """The float64 net kept for the next call on a model goes when that model is freed, not at
    the next SynFlow call (it is the size of the model's weights, twice)."""
    import gc
    import weakref

    from tfprune.scoring import _tfkeras_flow

    model = linear_net()
    tfprune.compute_masks(model, "synflow", 0.5, rounds=3)
    net = weakref.ref(_tfkeras_flow._LAST_FLOW_NET[2])
    del model
    gc.collect()
    assert _tfkeras_flow._LAST_FLOW_NET[2] is None and net() is None
