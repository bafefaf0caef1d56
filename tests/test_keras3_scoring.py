"""The scorers on Keras 3 models, on each backend (one subprocess per backend: KERAS_BACKEND is per
process): closed forms, finite differences, and agreement with the tf_keras path on the same weights."""
import os
import subprocess
import sys

import numpy as np
import pytest

import tfprune
from tfprune._keras import keras

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")


@pytest.fixture(scope="module", params=BACKENDS)
def case(request, tmp_path_factory):
    pytest.importorskip(request.param)
    path = str(tmp_path_factory.mktemp(request.param) / "scores.npz")
    env = dict(os.environ, KERAS_BACKEND=request.param, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "keras3_scoring_case.py"), path],
                         env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def mse_gradients(k1, k2, x, y, temperature=1.0):
    """∇ of mean((x K1 K2 / T - y)²) over all elements."""
    h = x @ k1
    r = 2 * (h @ k2 / temperature - y) / y.size
    return x.T @ (r @ k2.T) / temperature, h.T @ r / temperature


def test_synflow_closed_form_in_float64(case):
    k1, k2 = case["lin_weights_l1"].astype(np.float64), case["lin_weights_l2"].astype(np.float64)
    assert case["lin_synflow_l1"].dtype == np.float64
    np.testing.assert_allclose(case["lin_synflow_l1"], np.abs(k1) * np.abs(k2).sum(axis=1)[None, :], rtol=1e-12)
    np.testing.assert_allclose(case["lin_synflow_l2"], np.abs(k2) * np.abs(k1).sum(axis=0)[:, None], rtol=1e-12)


def test_snip_closed_form(case):
    k1, k2 = case["lin_weights_l1"].astype(np.float64), case["lin_weights_l2"].astype(np.float64)
    g1, g2 = mse_gradients(k1, k2, case["lin_x"].astype(np.float64), case["lin_y"].astype(np.float64))
    np.testing.assert_allclose(case["lin_snip_l1"], np.abs(g1 * k1), rtol=2e-4, atol=1e-7)
    np.testing.assert_allclose(case["lin_snip_l2"], np.abs(g2 * k2), rtol=2e-4, atol=1e-7)


def test_grasp_matches_finite_difference_hessian_gradient_product(case):
    t = 3.0
    k1, k2 = case["lin_weights_l1"].astype(np.float64), case["lin_weights_l2"].astype(np.float64)
    x, y = case["lin_x"].astype(np.float64), case["lin_y"].astype(np.float64)
    g1, g2 = mse_gradients(k1, k2, x, y, t)
    eps = 1e-5
    p1, p2 = mse_gradients(k1 + eps * g1, k2 + eps * g2, x, y, t)
    m1, m2 = mse_gradients(k1 - eps * g1, k2 - eps * g2, x, y, t)
    np.testing.assert_allclose(case["lin_grasp_l1"], -k1 * (p1 - m1) / (2 * eps), rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(case["lin_grasp_l2"], -k2 * (p2 - m2) / (2 * eps), rtol=1e-3, atol=1e-8)


def test_obd_gauss_newton_closed_form(case):
    # f = x K1 K2, L = mean (f − y)² over n·m values: GN(K2)[h, j] = (2/m) mean_n (x K1)_nh²,
    # GN(K1)[i, h] = (2/m) mean_n x_ni² Σ_j K2[h, j]²; saliency ½ GN w².
    k1, k2 = case["lin_weights_l1"].astype(np.float64), case["lin_weights_l2"].astype(np.float64)
    x = case["lin_x"].astype(np.float64)
    m = k2.shape[1]
    gn1 = (2 / m) * np.mean(x ** 2, axis=0)[:, None] * np.sum(k2 ** 2, axis=1)[None, :]
    gn2 = np.repeat((2 / m) * np.mean((x @ k1) ** 2, axis=0)[:, None], m, axis=1)
    np.testing.assert_allclose(case["lin_obd_l1"], 0.5 * gn1 * k1 ** 2, rtol=2e-5)
    np.testing.assert_allclose(case["lin_obd_l2"], 0.5 * gn2 * k2 ** 2, rtol=2e-5)


@pytest.mark.parametrize("estimator", ["gauss_newton", "exact", "hutchinson", "fisher"])
def test_obd_agrees_with_the_tf_keras_path(case, estimator):
    scores = tfprune.compute_scores(tf_keras_conv(case), "obd", data=(case["conv_x"], case["conv_y"]),
                                    loss="sparse_categorical_crossentropy", estimator=estimator, samples=8,
                                    max_weights=1000)
    for name, value in scores.items():
        np.testing.assert_allclose(case[f"conv_obd_{estimator}_{name}"], value, rtol=1e-3,
                                   atol=1e-5 * np.abs(value).max())


def tf_keras_conv(case):
    model = keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                              keras.layers.Flatten(), keras.layers.Dense(8, activation="relu", name="fc"),
                              keras.layers.Dense(3, activation="softmax", name="out")])
    model.set_weights([case[f"conv_weight_{i}"] for i in range(len(model.weights))])
    return model


@pytest.mark.parametrize("method", ["random", "magnitude", "snip", "grasp", "synflow"])
def test_masks_agree_with_the_tf_keras_path(case, method):
    model = tf_keras_conv(case)
    kwargs = {"data": (case["conv_x"], case["conv_y"]), "loss": "sparse_categorical_crossentropy"} \
        if method in ("snip", "grasp") else {}
    if method == "random":
        kwargs["seed"] = 0
    scores = tfprune.compute_scores(model, method, **kwargs)
    masks = tfprune.compute_masks(model, method, 0.8, **kwargs)
    kept = shared = 0
    for name in masks:
        theirs = case[f"conv_masks_{method}_{name}"]
        np.testing.assert_allclose(case[f"conv_scores_{method}_{name}"], scores[name], rtol=2e-4,
                                   atol=1e-6 * np.abs(scores[name]).max())
        kept += int(masks[name].sum())
        shared += int((masks[name] * theirs).sum())
        assert theirs.sum() == masks[name].sum() or method not in ("random", "magnitude")
        if method in ("random", "magnitude"):
            np.testing.assert_array_equal(theirs, masks[name])
    assert sum(int(case[f"conv_masks_{method}_{n}"].sum()) for n in masks) == kept  # the same exact sparsity
    assert shared >= 0.999 * kept, f"{case['backend']}: {shared} of {kept} kept weights shared with tf_keras"


@pytest.mark.parametrize("method", ["edge_popup", "gem_miner"])
def test_mask_searches_agree_with_the_tf_keras_path(case, method):
    # Six steps of SGD on the scores from the same weights, data order and seed: the float32
    # gradients differ in the last bits between frameworks, so a few ranks may swap.
    masks = tfprune.compute_masks(tf_keras_conv(case), method, 0.8, data=(case["conv_x"], case["conv_y"]),
                                  loss="sparse_categorical_crossentropy", seed=0, epochs=2, batch_size=4)
    kept = sum(int(m.sum()) for m in masks.values())
    assert sum(int(case[f"conv_masks_{method}_{n}"].sum()) for n in masks) == kept
    assert kept == round(0.2 * sum(m.size for m in masks.values()))
    shared = sum(int((case[f"conv_masks_{method}_{n}"] * m).sum()) for n, m in masks.items())
    assert shared >= 0.99 * kept, f"{case['backend']}: {shared} of {kept} kept weights shared with tf_keras"


def test_n_m_and_layerwise_masks_equal_the_tf_keras_path(case):
    model = tf_keras_conv(case)
    n_m = tfprune.compute_masks(model, "magnitude", n_m=(2, 4))
    layerwise = tfprune.compute_masks(model, "snip", 0.8, data=(case["conv_x"], case["conv_y"]),
                                      loss="sparse_categorical_crossentropy", scope="layerwise")
    for name in n_m:
        np.testing.assert_array_equal(case[f"conv_nm_{name}"], n_m[name])
        assert case[f"conv_layerwise_{name}"].sum() == layerwise[name].sum()  # the same count in every layer
        shared = (case[f"conv_layerwise_{name}"] * layerwise[name]).sum()
        assert shared >= 0.999 * layerwise[name].sum()


def test_include_embedding_is_refused_on_the_tf_keras_path():
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(10, 3, name="emb"),
                              keras.layers.Flatten(), keras.layers.Dense(2, name="out")])
    with pytest.raises(ValueError, match="include: got \\('embedding',\\); tfprune prunes Embedding tables of Keras 3"):
        tfprune.compute_masks(model, "magnitude", 0.5, include=("embedding",))
