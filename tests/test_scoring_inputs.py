"""Scoring inputs a user can get wrong: seeds, labels out of range, multi-output models (issue 11)."""
import numpy as np
import pytest
import tensorflow as tf

import tfprune
from tfprune._keras import keras

CE = "sparse_categorical_crossentropy"


def mlp(seed=0, softmax=True):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((12,)),
        keras.layers.Dense(16, activation="relu", name="fc1"),
        keras.layers.Dense(3, activation="softmax" if softmax else None, name="out"),
    ])


def xy(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 12)).astype("float32"), rng.integers(0, 3, n)


# ---------------------------------------------------------------- seeds (item 12)

@pytest.mark.parametrize("seed", ["abc", 1.5, -1, True])
@pytest.mark.parametrize("call", ["compute_masks", "prune_at_init", "compute_scores"])
def test_bad_seed_is_one_line_error_naming_argument_value_and_allowed(call, seed):
    fn = getattr(tfprune, call)
    args = (mlp(), "random") if call == "compute_scores" else (mlp(), "random", 0.5)
    with pytest.raises(ValueError, match=rf"^seed: got {seed!r}; allowed: None or an integer >= 0\.$".replace("(", r"\(")):
        fn(*args, seed=seed)


def test_bad_seed_is_refused_even_by_methods_that_do_not_use_it():
    with pytest.raises(ValueError, match=r"^seed: got 'abc'; allowed: None or an integer >= 0\.$"):
        tfprune.compute_masks(mlp(), "magnitude", 0.5, seed="abc")


def test_numpy_integer_seed_is_accepted():
    a = tfprune.compute_masks(mlp(), "random", 0.5, seed=np.int64(3))
    b = tfprune.compute_masks(mlp(), "random", 0.5, seed=3)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


# ---------------------------------------------------------------- labels out of range (item 1)

@pytest.mark.parametrize("method", ["snip", "grasp"])
@pytest.mark.parametrize("bad", [3, -1, 7])
def test_labels_outside_the_classes_are_refused_before_scoring(method, bad):
    x, y = xy()
    y[4] = bad
    with pytest.raises(ValueError, match=rf"^data: labels must be class indices in \[0, 3\) for output 'out' "
                                         rf"\(3 classes\); got {bad} \(1 of 30 labels outside\)"):
        tfprune.compute_masks(mlp(), method, 0.5, data=(x, y), loss=CE)


def test_all_bad_labels_in_a_dataset_are_refused_for_grasp():
    x, _ = xy()
    ds = tf.data.Dataset.from_tensor_slices((x, np.full(30, 9))).batch(10)
    with pytest.raises(ValueError, match=r"data: labels must be class indices in \[0, 3\).*got 9 \(30 of 30"):
        tfprune.compute_masks(mlp(), "grasp", 0.5, data=ds, loss=CE)


def test_non_integer_labels_are_refused_for_sparse_crossentropy():
    x, y = xy()
    y = y.astype("float32")
    y[0] = 0.5
    with pytest.raises(ValueError, match=r"data: labels must be class indices .*got 0\.5"):
        tfprune.compute_masks(mlp(), "snip", 0.5, data=(x, y), loss=CE)


def test_integral_float_labels_are_accepted():
    x, y = xy()
    tfprune.compute_masks(mlp(), "snip", 0.5, data=(x, y.astype("float32")), loss=CE)


def test_one_hot_labels_of_the_wrong_width_are_refused():
    x, y = xy()
    with pytest.raises(ValueError, match=r"data: one-hot labels for output 'out' must have 3 columns \(its classes\); got shape \(30, 4\)"):
        tfprune.compute_masks(mlp(), "grasp", 0.5, data=(x, np.eye(4)[y % 4]), loss="categorical_crossentropy")


def test_custom_data_scorer_gets_the_label_check_before_its_factory_runs():
    made = []

    def make(model, data, loss):
        made.append(True)
        return lambda masks=None: {n: np.ones(k.shape) for n, k in
                                   ((l.name, l.kernel) for l in model.layers)}

    tfprune.register_scorer("needs_labels", make, needs_data=True)
    try:
        x, y = xy()
        y[0] = 3
        with pytest.raises(ValueError, match=r"data: labels must be class indices in \[0, 3\)"):
            tfprune.compute_scores(mlp(), "needs_labels", data=(x, y), loss=lambda t, p: tf.reduce_mean(p))
        assert made == []
    finally:
        tfprune.scoring.unregister_scorer("needs_labels")


# ---------------------------------------------------------------- multi-output models (item 11)

def two_heads(seed=0):
    keras.utils.set_random_seed(seed)
    i = keras.Input((12,))
    h = keras.layers.Dense(16, activation="relu", name="fc1")(i)
    a = keras.layers.Dense(3, activation="softmax", name="cls")(h)
    b = keras.layers.Dense(1, name="reg")(h)
    return keras.Model(i, [a, b])


def two_head_data(n=30):
    x, y = xy(n)
    return x, [y, np.random.default_rng(1).random((n, 1)).astype("float32")]


@pytest.mark.parametrize("method", ["random", "magnitude", "synflow", "snip", "grasp"])
def test_prune_at_init_supports_multi_output_models(method):
    x, ys = two_head_data()
    pruned = tfprune.prune_at_init(two_heads(), method, 0.5, data=(x, ys), loss=[CE, "mse"], seed=0)
    report = tfprune.sparsity_report(pruned)
    assert [r.name for r in report.rows] == ["fc1", "cls", "reg"]
    assert abs(report.sparsity - 0.5) < 1e-2 and report.collapsed == []
    assert all(r.paths > 0 for r in report.rows)


def test_snip_on_two_outputs_is_the_sum_of_the_two_single_output_scores():
    x, (y1, y2) = two_head_data()
    model = two_heads()
    both = tfprune.compute_scores(model, "snip", data=(x, [y1, y2]), loss={"cls": CE, "reg": "mse"})
    cls = keras.Model(model.input, model.outputs[0])
    reg = keras.Model(model.input, model.outputs[1])
    s1 = tfprune.compute_scores(cls, "snip", data=(x, y1), loss=CE)
    s2 = tfprune.compute_scores(reg, "snip", data=(x, y2), loss="mse")
    np.testing.assert_allclose(both["cls"], s1["cls"], rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(both["reg"], s2["reg"], rtol=1e-5, atol=1e-8)
    # the shared layer: |∂(L1 + L2)/∂w ⊙ w| (each loss the mean over the examples)
    kernel = model.get_layer("fc1").kernel
    with tf.GradientTape() as tape:
        p1, p2 = model(x, training=False)
        total = (tf.reduce_mean(keras.losses.get(CE)(y1, p1)) + tf.reduce_mean(keras.losses.get("mse")(y2, p2)))
    expected = np.abs(tape.gradient(total, kernel).numpy() * kernel.numpy())
    np.testing.assert_allclose(both["fc1"], expected, rtol=1e-4, atol=1e-8)


def test_one_loss_for_every_output_and_the_compiled_losses_are_used():
    x, (y1, _) = two_head_data()
    model = two_heads()
    one = tfprune.compute_scores(model, "snip", data=(x, [np.eye(3)[y1], y1[:, None] / 3.0]), loss="mse")
    assert set(one) == {"fc1", "cls", "reg"}
    model.compile("sgd", loss=[CE, "mse"])
    compiled = tfprune.compute_scores(model, "snip", data=two_head_data())
    explicit = tfprune.compute_scores(model, "snip", data=two_head_data(), loss=[CE, "mse"])
    for name in compiled:
        np.testing.assert_array_equal(compiled[name], explicit[name])


def test_synflow_on_two_outputs_sums_both_outputs():
    # Linear heads without biases: R = 1ᵀ|K1|(|A|1 + |B|1), so ∂R/∂A[j,k] = Σ_i |K1[i,j]|.
    keras.utils.set_random_seed(0)
    i = keras.Input((5,))
    h = keras.layers.Dense(4, use_bias=False, name="k1")(i)
    model = keras.Model(i, [keras.layers.Dense(3, use_bias=False, name="a")(h),
                            keras.layers.Dense(2, use_bias=False, name="b")(h)])
    k1, a, b = (np.abs(model.get_layer(n).kernel.numpy().astype(np.float64)) for n in ("k1", "a", "b"))
    scores = tfprune.compute_scores(model, "synflow")
    np.testing.assert_allclose(scores["k1"], k1 * (a.sum(axis=1) + b.sum(axis=1))[None, :], rtol=1e-12)
    np.testing.assert_allclose(scores["a"], a * k1.sum(axis=0)[:, None], rtol=1e-12)


@pytest.mark.parametrize("loss, message", [
    (["mse"], r"loss: got a list of 1 loss\(es\) for model '.*' with 2 output\(s\) \['cls', 'reg'\]"),
    ({"cls": CE, "other": "mse"}, r"loss: no output named \['other'\]; outputs: \['cls', 'reg'\]"),
])
def test_multi_output_loss_mismatch_is_a_clear_error(loss, message):
    with pytest.raises(ValueError, match=message):
        tfprune.compute_masks(two_heads(), "snip", 0.5, data=two_head_data(), loss=loss)


def test_multi_output_labels_mismatch_is_a_clear_error():
    x, (y1, _) = two_head_data()
    with pytest.raises(ValueError, match=r"data: model '.*' has 2 outputs \['cls', 'reg'\]; y must be a list of 2 "
                                         r"arrays or a dict keyed by output name, got ndarray"):
        tfprune.compute_masks(two_heads(), "snip", 0.5, data=(x, y1), loss=[CE, "mse"])


def test_labels_are_checked_per_output():
    x, (y1, y2) = two_head_data()
    y1 = y1.copy()
    y1[3] = 5
    with pytest.raises(ValueError, match=r"data: labels must be class indices in \[0, 3\) for output 'cls'"):
        tfprune.compute_masks(two_heads(), "grasp", 0.5, data=(x, {"cls": y1, "reg": y2}), loss=[CE, "mse"])


@pytest.mark.parametrize("temperature", ["abc", 0, float("nan")])
def test_bad_grasp_temperature_is_one_line_error(temperature):
    with pytest.raises(ValueError, match=r"^temperature: got .*; allowed: a finite number > 0\.$"):
        tfprune.compute_masks(mlp(), "grasp", 0.5, data=xy(), loss=CE, temperature=temperature)
