"""One backend's half of tests/test_keras3_scoring.py: run as
``KERAS_BACKEND=<backend> python tests/keras3_scoring_case.py OUT.npz`` (KERAS_BACKEND is per process).

Builds Keras 3 models with weights drawn from numpy (the same on every backend), scores them with
every built-in method and writes scores, masks and the inputs to OUT.npz; the test compares them
with closed forms, finite differences and the tf_keras path.
"""
import sys

import keras
import numpy as np

import tfprune

out = {}
rng = np.random.default_rng(0)


def linear_net(softmax=False):
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, use_bias=False, name="l1"),
                              keras.layers.Dense(3, use_bias=False, name="l2", activation="softmax" if softmax else None)])
    return model


def conv_net():
    return keras.Sequential([keras.Input((6, 6, 1)), keras.layers.Conv2D(4, 3, activation="relu", name="conv"),
                             keras.layers.Flatten(), keras.layers.Dense(8, activation="relu", name="fc"),
                             keras.layers.Dense(3, activation="softmax", name="out")])


def set_weights(model, seed):
    r = np.random.default_rng(seed)
    model.set_weights([r.normal(scale=0.5, size=w.shape).astype("float32") for w in model.get_weights()])
    return [w.copy() for w in model.get_weights()]


lin = linear_net()
out["lin_weights_l1"], out["lin_weights_l2"] = set_weights(lin, 1)
x, y = rng.normal(size=(9, 5)).astype("float32"), rng.normal(size=(9, 3)).astype("float32")
out["lin_x"], out["lin_y"] = x, y
for key, value in tfprune.compute_scores(lin, "synflow").items():
    out[f"lin_synflow_{key}"] = value
for key, value in tfprune.compute_scores(lin, "snip", data=(x, y), loss="mse").items():
    out[f"lin_snip_{key}"] = value
for key, value in tfprune.compute_scores(lin, "grasp", data=(x, y), loss="mse", temperature=3.0).items():
    out[f"lin_grasp_{key}"] = value

# GraSP on a softmax model is scored on its logits: the same as the logits model with from_logits=True.
labels = np.arange(9) % 3
soft = linear_net(softmax=True)
soft.set_weights(lin.get_weights())
a = tfprune.compute_scores(soft, "grasp", data=(x, labels), loss="sparse_categorical_crossentropy")
b = tfprune.compute_scores(lin, "grasp", data=(x, labels), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
for key in a:
    np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-12)

conv = conv_net()
weights = set_weights(conv, 2)
for i, w in enumerate(weights):
    out[f"conv_weight_{i}"] = w
cx, cy = rng.normal(size=(12, 6, 6, 1)).astype("float32"), np.arange(12) % 3
out["conv_x"], out["conv_y"] = cx, cy
for method in ("random", "magnitude", "snip", "grasp", "synflow"):
    kwargs = {"data": (cx, cy), "loss": "sparse_categorical_crossentropy"} if method in ("snip", "grasp") else {}
    if method == "random":
        kwargs["seed"] = 0
    for key, value in tfprune.compute_scores(conv, method, **kwargs).items():
        out[f"conv_scores_{method}_{key}"] = value
    for key, value in tfprune.compute_masks(conv, method, 0.8, **kwargs).items():
        out[f"conv_masks_{method}_{key}"] = value
for key, value in tfprune.compute_scores(lin, "obd", data=(x, y), loss="mse").items():  # Gauss-Newton
    out[f"lin_obd_{key}"] = value
for estimator in ("gauss_newton", "exact", "hutchinson", "fisher"):  # against the tf_keras path
    for key, value in tfprune.compute_scores(conv, "obd", data=(cx, cy), loss="sparse_categorical_crossentropy",
                                             estimator=estimator, samples=8, max_weights=1000).items():
        out[f"conv_obd_{estimator}_{key}"] = value
for method in ("edge_popup", "gem_miner"):  # mask searches: the straight-through loop on this backend's autodiff
    for key, value in tfprune.compute_masks(conv, method, 0.8, data=(cx, cy), loss="sparse_categorical_crossentropy",
                                            seed=0, epochs=2, batch_size=4).items():
        out[f"conv_masks_{method}_{key}"] = value
for key, value in tfprune.compute_masks(conv, "magnitude", n_m=(2, 4)).items():
    out[f"conv_nm_{key}"] = value
for key, value in tfprune.compute_masks(conv, "snip", 0.8, data=(cx, cy), loss="sparse_categorical_crossentropy",
                                        scope="layerwise").items():
    out[f"conv_layerwise_{key}"] = value
# scoring never touches the user's weights
for before, after in zip(weights, conv.get_weights()):
    assert np.array_equal(before, after), "scoring changed the model's weights"
# Embedding tables are scored and masked only with include=("embedding",)
tokens = keras.Input((6,), dtype="int32")
embedded = keras.layers.Embedding(20, 8, name="emb")(tokens)
text = keras.Model(tokens, keras.layers.Dense(3, name="out")(keras.layers.Flatten()(embedded)))
tx, ty = rng.integers(0, 20, (16, 6)).astype("int32"), (np.arange(16) % 3).astype("int32")
assert list(tfprune.compute_masks(text, "snip", 0.8, data=(tx, ty), loss="sparse_categorical_crossentropy")) == ["out"]
with_table = tfprune.compute_masks(text, "snip", 0.8, data=(tx, ty), loss="sparse_categorical_crossentropy",
                                   include=("embedding",))
assert list(with_table) == ["emb", "out"] and sum(int(m.sum()) for m in with_table.values()) == round(0.2 * 304)
pruned = tfprune.apply_masks(text, with_table)
assert [r.name for r in tfprune.sparsity_report(pruned).rows] == ["emb", "out"]

# mixed precision: the model computes in float16, its scores are taken in float32 (the same numbers)
keras.mixed_precision.set_global_policy("mixed_float16")
mixed = linear_net()
mixed.set_weights(lin.get_weights())
for key, value in tfprune.compute_scores(mixed, "snip", data=(x, y), loss="mse").items():
    assert value.dtype == np.float32 and np.array_equal(value, out[f"lin_snip_{key}"]), key
keras.mixed_precision.set_global_policy("float32")
out["backend"] = np.array(keras.backend.backend())
np.savez(sys.argv[1], **out)
