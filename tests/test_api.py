"""Public API: bad input, determinism, reports and layer collapse."""
import json
import warnings

import numpy as np
import pytest
import tensorflow as tf

import tfprune
from tfprune._keras import keras


def mlp(seed=0, softmax=True):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((12,)),
        keras.layers.Dense(16, activation="relu", name="fc1"),
        keras.layers.Dense(8, activation="relu", name="fc2"),
        keras.layers.Dense(3, activation="softmax" if softmax else None, name="out"),
    ])


def xy(n=30, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 12)).astype("float32"), rng.integers(0, 3, n)


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("sparsity", [-0.01, 1.0, 2])
def test_sparsity_outside_range(sparsity):
    with pytest.raises(ValueError, match=rf"sparsity: got {sparsity!r}; allowed: .*\[0, 1\)"):
        tfprune.compute_masks(mlp(), "random", sparsity)


def test_unknown_method_lists_known_ones():
    with pytest.raises(ValueError, match="method: unknown pruning method 'snap'; known methods: edge_popup, gem_miner, grasp, magnitude, obd, random, snip, synflow"):
        tfprune.compute_masks(mlp(), "snap", 0.5)


@pytest.mark.parametrize("method", ["snip", "grasp"])
def test_data_dependent_method_without_data(method):
    with pytest.raises(ValueError, match=f"data: method '{method}' needs data, got None"):
        tfprune.prune_at_init(mlp(), method, 0.5)


def test_data_with_wrong_shape():
    x, y = xy()
    with pytest.raises(ValueError, match=r"data: x has shape \(30, 11\) but model .* expects inputs of shape \(None, 12\)"):
        tfprune.compute_masks(mlp(), "snip", 0.5, data=(x[:, :11], y), loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="data: x has 30 examples but y has 29"):
        tfprune.compute_masks(mlp(), "snip", 0.5, data=(x, y[:29]), loss="sparse_categorical_crossentropy")


def test_missing_loss():
    with pytest.raises(ValueError, match="loss: this method needs a loss; got None and model .* is not compiled"):
        tfprune.compute_masks(mlp(), "snip", 0.5, data=xy())


def test_keras3_model_is_pruned_by_the_same_api():
    import keras as keras3  # Keras 3, as installed with TensorFlow 2.21 (this process: TensorFlow backend)
    assert keras3.__version__.startswith("3.")
    model = keras3.Sequential([keras3.Input((4,)), keras3.layers.Dense(2, name="fc")])
    pruned = tfprune.prune_at_init(model, "random", 0.5, seed=0)
    assert int(tfprune.get_masks(pruned)["fc"].sum()) == 4
    assert tfprune.sparsity_report(pruned).sparsity == 0.5


def test_subclassed_model_is_rejected():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.d = keras.layers.Dense(2)

        def call(self, x):
            return self.d(x)

    net = Net()
    net(np.zeros((1, 4), "float32"))
    with pytest.raises(TypeError, match="model: subclassed models \\(Net\\) are not supported.*Functional"):
        tfprune.compute_masks(net, "random", 0.5)


def test_model_without_prunable_layer():
    model = keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten(), keras.layers.BatchNormalization()])
    with pytest.raises(ValueError, match="model: model .* has no prunable layer .*'BatchNormalization', 'Flatten'"):
        tfprune.compute_masks(model, "random", 0.5)


def test_nan_scores_are_reported_with_the_layer():
    model = mlp()
    kernel = model.get_layer("fc2").kernel
    value = kernel.numpy()
    value[0, 0] = np.nan
    kernel.assign(value)
    with pytest.raises(FloatingPointError, match="method 'magnitude' produced 1 NaN/inf score\\(s\\) in layer 'fc2'"):
        tfprune.compute_masks(model, "magnitude", 0.5)


def test_unknown_method_option():
    with pytest.raises(TypeError, match="temperature: not an option of method 'snip'"):
        tfprune.compute_scores(mlp(), "snip", data=xy(), loss="sparse_categorical_crossentropy", temperature=2)


# ---------------------------------------------------------------- determinism

@pytest.mark.parametrize("method", ["random", "magnitude", "snip", "grasp", "synflow"])
def test_same_config_and_seed_give_bit_identical_masks(method):
    x, y = xy()
    runs = []
    for _ in range(2):
        model = mlp(seed=11)
        runs.append(tfprune.compute_masks(model, method, 0.9, data=(x, y), loss="sparse_categorical_crossentropy",
                                          seed=5, rounds=3))
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def test_global_sparsity_is_exact_for_every_method():
    x, y = xy()
    model = mlp()
    total = sum(int(np.prod(k.shape)) for k in (model.get_layer(n).kernel for n in ("fc1", "fc2", "out")))
    for method in ["random", "magnitude", "snip", "grasp", "synflow"]:
        masks = tfprune.compute_masks(model, method, 0.8, data=(x, y), loss="sparse_categorical_crossentropy", seed=0)
        assert sum(int(m.sum()) for m in masks.values()) == round(total * 0.2), method


def test_prune_at_init_with_dataset_data_and_layerwise_scope():
    x, y = xy()
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(10)
    model = mlp()
    model.compile("sgd", "sparse_categorical_crossentropy")
    pruned = tfprune.prune_at_init(model, "snip", 0.5, data=ds, scope="layerwise")
    for name, mask in tfprune.get_masks(pruned).items():
        assert int(mask.sum()) == round(mask.size * 0.5)


# ---------------------------------------------------------------- report and collapse

def test_sparsity_report_rows_and_dict():
    pruned = tfprune.prune_at_init(mlp(), "random", 0.75, seed=0)
    report = tfprune.sparsity_report(pruned)
    d = report.to_dict()
    json.dumps(d)
    assert [r["name"] for r in d["layers"]] == ["fc1", "fc2", "out"]
    assert d["params"] == 12 * 16 + 16 * 8 + 8 * 3
    assert d["kept"] == round(d["params"] * 0.25)
    assert abs(report.sparsity - 0.75) < 1e-3
    assert not report.collapsed
    text = str(report)
    assert "fc1" in text and "sparsity 0.75" in text


def test_layer_with_no_weight_left_is_flagged_and_prune_at_init_warns():
    from tfprune.scoring import kernel_values

    def make_starve_fc2(model, data=None, loss=None):
        def score(masks=None):
            values = kernel_values(model, masks)
            return {n: np.abs(v) * (1e-9 if n == "fc2" else 1.0) for n, v in values.items()}
        return score

    tfprune.register_scorer("starve_fc2", make_starve_fc2, needs_data=False)
    try:
        with pytest.warns(tfprune.LayerCollapseWarning, match="fc2"):
            pruned = tfprune.prune_at_init(mlp(), "starve_fc2", 0.6)
    finally:
        tfprune.scoring.unregister_scorer("starve_fc2")
    report = tfprune.sparsity_report(pruned)
    reasons = {r.name: r.reason for r in report.rows}
    # fc2 is empty, so every path through fc1 and out is cut as well
    assert reasons == {"fc1": "all paths cut", "fc2": "no weight left", "out": "all paths cut"}
    assert "COLLAPSED: no weight left" in str(report)


def test_layer_with_weights_but_every_path_cut_is_flagged():
    model = mlp()
    masks = {n: np.ones(model.get_layer(n).kernel.shape, np.float32) for n in ("fc1", "fc2", "out")}
    masks["fc1"][:, :8] = 0      # hidden units 0..7 of fc1 get no input
    masks["fc2"][8:, :] = 0      # fc2 reads only hidden units 0..7: all its paths are cut
    report = tfprune.sparsity_report(model, masks=masks)
    rows = {r.name: r for r in report.rows}
    assert rows["fc2"].kept > 0 and rows["fc2"].paths == 0 and rows["fc2"].reason == "all paths cut"
    assert "fc2" in report.collapsed
    masks["fc2"][8, 0] = 1       # one path restored
    assert tfprune.sparsity_report(model, masks=masks).collapsed == []


def test_no_collapse_warning_for_healthy_pruning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", tfprune.LayerCollapseWarning)
        tfprune.prune_at_init(mlp(), "synflow", 0.9)


def test_compute_scores_on_wrapped_model_is_keyed_by_original_names_and_uses_its_masks():
    pruned = tfprune.prune_at_init(mlp(), "random", 0.5, seed=1)
    scores = tfprune.compute_scores(pruned, "synflow")
    masks = tfprune.get_masks(pruned)
    assert set(scores) == {"fc1", "fc2", "out"}
    for name in scores:
        assert np.all(scores[name][masks[name] == 0] == 0)


def test_saturating_activation_does_not_fake_a_cut_path():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(6, activation="relu", name="a"),
                              keras.layers.Dense(6, activation="tanh", name="b"), keras.layers.Dense(2, name="c")])
    for w in model.weights:
        w.assign(w * 50.0)  # tanh saturates to exactly 1.0 on the all-ones input
    report = tfprune.sparsity_report(model)
    assert report.collapsed == [] and all(r.paths > 0 for r in report.rows)
