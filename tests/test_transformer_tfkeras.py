"""Transformer layers on the tf_keras path: MultiHeadAttention and EinsumDense kernels are pruned.

Key convention (tfprune._keras.prunable_kernels): a top-level Dense/Conv/EinsumDense kernel is
keyed by its layer name; a MultiHeadAttention "mha" contributes "mha/query", "mha/key",
"mha/value" and "mha/attention_output". Scores are checked against values computed here by hand
(a direct GradientTape on the user's model, finite differences), masks through fit, save/load,
strip, tickets, the report and the TFLite export.
"""
import os
import warnings

import numpy as np
import pytest
import tensorflow as tf

import tfprune
from tfprune import _keras, keras_utils
from tfprune._keras import keras
from tflite_helpers import rel_err, run_tflite

MHA_KEYS = ["mha/query", "mha/key", "mha/value", "mha/attention_output"]
KEYS = MHA_KEYS + ["ein", "out"]
SEQ, DIM, HEADS, KEY_DIM = 6, 8, 2, 4


def build(seed=0):
    """A tiny transformer-ish classifier: self-attention, a top-level EinsumDense, a Dense head."""
    keras.utils.set_random_seed(seed)
    i = keras.Input((SEQ, DIM))
    a = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, name="mha")(i, i)
    a = keras.layers.LayerNormalization(name="norm")(keras.layers.Add(name="residual")([i, a]))
    e = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 12), bias_axes="d", activation="relu", name="ein")(a)
    h = keras.layers.GlobalAveragePooling1D(name="pool")(e)
    return keras.Model(i, keras.layers.Dense(3, name="out")(h))


def data(n=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SEQ, DIM)).astype(np.float32)
    return x, (np.arange(n) % 3).astype(np.int32)


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def pruned_model(sparsity=0.6):
    return quiet(tfprune.prune_at_init, build(), "random", sparsity, seed=0)


# --- keys -------------------------------------------------------------------------------------

def test_kernels_are_keyed_by_a_path_of_layer_names_in_model_order():
    model = build()
    kernels = _keras.prunable_kernels(model)
    assert list(kernels) == KEYS
    mha = model.get_layer("mha")
    # the sublayers' own names, as tf_keras creates them
    assert [mha._query_dense.name, mha._key_dense.name, mha._value_dense.name, mha._output_dense.name] == \
        ["query", "key", "value", "attention_output"]
    assert kernels["mha/query"] is mha._query_dense.kernel and kernels["mha/attention_output"] is mha._output_dense.kernel
    assert {k: tuple(v.shape) for k, v in kernels.items()} == {
        "mha/query": (DIM, HEADS, KEY_DIM), "mha/key": (DIM, HEADS, KEY_DIM), "mha/value": (DIM, HEADS, KEY_DIM),
        "mha/attention_output": (HEADS, KEY_DIM, DIM), "ein": (DIM, 12), "out": (12, 3)}
    assert list(keras_utils.kernel_owners(mha)) == MHA_KEYS
    assert keras_utils.kernel_owners(model.get_layer("norm")) == {}
    # the wrapped model, a clone and the scoring clone use the same keys
    assert list(_keras.prunable_kernels(pruned_model())) == KEYS
    assert list(_keras.prunable_kernels(keras.models.clone_model(model))) == KEYS


# --- masks: wrapper, fit, files, strip ------------------------------------------------------------

def test_one_mask_per_kernel_and_get_masks_returns_what_apply_masks_set():
    model = build()
    rng = np.random.default_rng(1)
    masks = {k: (rng.random(v.shape) < 0.4).astype(np.float32) for k, v in _keras.prunable_kernels(model).items()}
    pruned = tfprune.apply_masks(model, masks)
    wrapper = pruned.get_layer("fixed_mask_wrapper_mha")
    assert isinstance(wrapper, tfprune.FixedMaskWrapper) and len(wrapper.pruning_vars) == 4
    assert isinstance(pruned.get_layer("fixed_mask_wrapper_ein"), tfprune.FixedMaskWrapper)
    # unique variable names (an .h5 file needs them): the first keeps TF-MOT's name
    names = [v.name.split("/")[-1] for v in wrapper.non_trainable_weights]
    assert names[:2] == ["mask:0", "threshold:0"] and len(set(names)) == len(names)
    got = tfprune.get_masks(pruned)
    assert list(got) == KEYS and all(np.array_equal(got[k], masks[k]) for k in KEYS)
    for key, kernel in _keras.prunable_kernels(pruned).items():
        value = kernel.numpy()
        zeros = value[masks[key] == 0]
        assert np.all(zeros == 0) and not np.signbit(zeros).any(), key  # exactly +0.0
    # a partial update touches only the given kernel
    again = tfprune.apply_masks(pruned, {"mha/value": np.ones((DIM, HEADS, KEY_DIM), np.float32)})
    assert again is pruned and tfprune.get_masks(pruned)["mha/value"].all()
    assert np.array_equal(tfprune.get_masks(pruned)["mha/key"], masks["mha/key"])
    with pytest.raises(ValueError, match="mha/nope"):
        tfprune.apply_masks(pruned, {"mha/nope": np.ones((2, 2))})


def test_masks_stay_bit_identical_through_fit_and_pruned_weights_stay_zero():
    pruned = pruned_model()
    before = tfprune.get_masks(pruned)
    kernels_before = {k: v.numpy().copy() for k, v in _keras.prunable_kernels(pruned).items()}
    pruned.compile(keras.optimizers.Adam(0.05), LOSS)
    x, y = data()
    pruned.fit(x, y, epochs=2, batch_size=8, callbacks=tfprune.callbacks(), verbose=0)
    after = tfprune.get_masks(pruned)
    for key in KEYS:
        assert after[key].tobytes() == before[key].tobytes(), key
        value = _keras.prunable_kernels(pruned)[key].numpy()
        assert np.all(value[before[key] == 0] == 0) and not np.signbit(value[before[key] == 0]).any(), key
        assert not np.array_equal(value[before[key] == 1], kernels_before[key][before[key] == 1]), key  # trained


@pytest.mark.parametrize("suffix", [".h5", "_savedmodel", ".keras"])
def test_files_round_trip_through_tfprune_load_model(tmp_path, suffix):
    pruned = pruned_model()
    x, _ = data(4)
    expected, masks = pruned(x).numpy(), tfprune.get_masks(pruned)
    path = str(tmp_path / f"model{suffix}")
    quiet(pruned.save, path)
    again = tfprune.load_model(path)
    got = tfprune.get_masks(again)
    assert list(got) == KEYS and all(np.array_equal(got[k], masks[k]) for k in KEYS)
    np.testing.assert_array_equal(again(x).numpy(), expected)


def test_strip_and_tfmot_strip_pruning_give_the_masked_plain_model():
    pruned = pruned_model()
    x, _ = data(4)
    expected, masks = pruned(x).numpy(), tfprune.get_masks(pruned)
    plain = tfprune.strip(pruned)
    assert not any(_keras.is_pruning_wrapper(l) for l in plain.layers)
    np.testing.assert_allclose(plain(x).numpy(), expected, rtol=1e-6, atol=1e-6)
    got = tfprune.get_masks(plain)  # read back from the zeros of the plain kernels
    assert all(np.array_equal(got[k], masks[k]) for k in KEYS)
    for kernel in _keras.prunable_kernels(plain).values():
        assert not np.signbit(kernel.numpy()[kernel.numpy() == 0]).any()
    stripped = _keras.tfmot().strip_pruning(pruned)
    np.testing.assert_allclose(stripped(x).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_tfmot_wrapper_on_attention_is_read_too():
    """TF-MOT's own PruneLowMagnitude knows MultiHeadAttention: get_masks reads its four masks."""
    model = build()
    tfmot = _keras.tfmot()
    wrapped = keras.models.clone_model(model, clone_function=lambda l: tfmot.prune_low_magnitude(l) if l.name == "mha" else l)
    assert list(tfprune.get_masks(wrapped))[:4] == MHA_KEYS


# --- scores ---------------------------------------------------------------------------------------

def test_magnitude_and_random_scores():
    model = build()
    scores = tfprune.compute_scores(model, "magnitude")
    assert list(scores) == KEYS
    for key, kernel in _keras.prunable_kernels(model).items():
        assert np.array_equal(scores[key], np.abs(kernel.numpy()))
    a, b = (tfprune.compute_scores(model, "random", seed=3) for _ in range(2))
    assert all(a[k].shape == tuple(_keras.prunable_kernels(model)[k].shape) and np.array_equal(a[k], b[k]) for k in KEYS)


def _kernel_gradients(model, x, y, loss):
    kernels = list(_keras.prunable_kernels(model).values())
    with tf.GradientTape() as tape:
        value = tf.reduce_mean(loss(y, model(x, training=False)))
    return dict(zip(KEYS, tape.gradient(value, kernels)))


def test_snip_is_gradient_times_weight_from_a_direct_tape_on_the_model():
    model = build()
    x, y = data()
    scores = tfprune.compute_scores(model, "snip", data=(x, y), loss=LOSS)
    grads = _kernel_gradients(model, x, y, LOSS)
    for key, kernel in _keras.prunable_kernels(model).items():
        expected = np.abs(grads[key].numpy() * kernel.numpy())
        assert expected.any(), key
        np.testing.assert_allclose(scores[key], expected, rtol=1e-4, atol=1e-7 * expected.max(), err_msg=key)


def test_grasp_is_minus_weight_times_hessian_gradient_from_direct_tapes():
    model = build()
    x, y = data()
    temperature = 200.0
    scores = tfprune.compute_scores(model, "grasp", data=(x, y), loss=LOSS, temperature=temperature)
    kernels = list(_keras.prunable_kernels(model).values())

    def objective():  # cross-entropy of softmax(logits / T), written out (TF's fused op has no 2nd derivative)
        z = model(x, training=False) / temperature
        return -tf.reduce_mean(tf.reduce_sum(tf.one_hot(y, 3) * tf.nn.log_softmax(z), axis=-1))

    with tf.GradientTape() as tape:
        value = objective()
    g = [tf.constant(t) for t in tape.gradient(value, kernels)]
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            value = objective()
        grads = inner.gradient(value, kernels)
        z = tf.add_n([tf.reduce_sum(a * b) for a, b in zip(grads, g)])
    hg = outer.gradient(z, kernels)
    for key, kernel, h in zip(KEYS, kernels, hg):
        expected = -kernel.numpy() * h.numpy()
        scale = np.abs(expected).max()
        assert scale > 0, key
        np.testing.assert_allclose(scores[key], expected, rtol=2e-3, atol=2e-4 * scale, err_msg=key)


def _synflow_objective(model):
    """R(θ) = sum(f(1)) on a float64 copy with |θ| (what SynFlow scores), as a function of the kernels."""
    clone = keras.models.clone_model(model, clone_function=lambda l: l.__class__.from_config(
        {**l.get_config(), "dtype": "float64"}))
    for source, target in zip(model.layers, clone.layers):
        target.set_weights([np.abs(w).astype(np.float64) for w in source.get_weights()])
    ones = tf.ones((1, SEQ, DIM), tf.float64)
    kernels = _keras.prunable_kernels(clone)

    def r(key=None, index=None, delta=0.0):
        if key is not None:
            value = kernels[key].numpy()
            value[index] += delta
            kernels[key].assign(value)
        out = float(tf.reduce_sum(clone(ones, training=False)))
        if key is not None:
            value[index] -= delta
            kernels[key].assign(value)
        return out

    return r, kernels


def test_synflow_matches_finite_differences_and_gives_query_key_no_score():
    model = build()
    score = tfprune.compute_scores(model, "synflow")
    r, kernels = _synflow_objective(model)
    rng = np.random.default_rng(0)
    for key in ["mha/value", "mha/attention_output", "ein", "out"]:
        for _ in range(3):
            index = tuple(int(rng.integers(0, s)) for s in kernels[key].shape)
            w = float(kernels[key].numpy()[index])
            h = 1e-6 * max(abs(w), 1.0)
            derivative = (r(key, index, h) - r(key, index, -h)) / (2 * h)
            assert score[key][index] == pytest.approx(abs(w * derivative), rel=1e-5, abs=1e-9), (key, index)
    # the all-ones input makes every token equal, so the attention is uniform whatever Q and K are:
    # their SynFlow scores are exactly 0 (and compute_masks says so)
    assert not score["mha/query"].any() and not score["mha/key"].any()
    assert all(score[k].any() for k in KEYS[2:])
    with pytest.warns(tfprune.ZeroScoreWarning, match=r"mha/query.*mha/key.*all-ones input"):
        tfprune.compute_masks(model, "synflow", 0.5, rounds=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", tfprune.ZeroScoreWarning)
        tfprune.compute_masks(model, "synflow", 0.5, rounds=2, exclude=["mha/query", "mha/key"])
        tfprune.compute_masks(model, "snip", 0.5, data=data(), loss=LOSS)


@pytest.mark.parametrize("method", ["random", "magnitude", "snip", "grasp", "synflow"])
def test_global_allocation_keeps_exactly_round_n_density_over_all_kernels(method):
    model = build()
    sizes = {k: int(np.prod(v.shape)) for k, v in _keras.prunable_kernels(model).items()}
    total = sum(sizes.values())
    kwargs = {"data": data(), "loss": LOSS} if method in ("snip", "grasp") else {}
    masks = quiet(tfprune.compute_masks, model, method, 0.7, seed=0, **kwargs)
    assert list(masks) == KEYS
    assert sum(int(m.sum()) for m in masks.values()) == round(total * 0.3)
    exclude = quiet(tfprune.compute_masks, model, method, 0.7, seed=0, exclude=["mha/value"], **kwargs)
    assert exclude["mha/value"].all()
    assert sum(int(m.sum()) for k, m in exclude.items() if k != "mha/value") == round((total - sizes["mha/value"]) * 0.3)


def test_prune_at_init_continues_within_the_masks_of_a_wrapped_model():
    pruned = pruned_model(0.5)
    before = tfprune.get_masks(pruned)
    again = quiet(tfprune.prune_at_init, pruned, "magnitude", 0.8)
    after = tfprune.get_masks(again)
    assert all(np.all(after[k] <= before[k]) for k in KEYS)
    total = sum(m.size for m in after.values())
    assert sum(int(m.sum()) for m in after.values()) == round(total * 0.2)


def test_n_m_refuses_einsum_kernels_unless_excluded():
    model = build()
    with pytest.raises(ValueError, match=r"n_m.*mha/query.*exclude="):
        tfprune.compute_masks(model, "magnitude", n_m=(2, 4))
    masks = tfprune.compute_masks(model, "magnitude", n_m=(2, 4), exclude=KEYS[:5])
    assert all(masks[k].all() for k in KEYS[:5]) and masks["out"].mean() == 0.5


# --- report, warnings ---------------------------------------------------------------------------

def test_report_has_a_row_per_kernel_and_no_false_collapse():
    report = tfprune.sparsity_report(build())
    assert [r.name for r in report.rows] == KEYS
    assert report.not_prunable == () and report.collapsed == []  # Q/K have no path count, not "all paths cut"
    pruned = pruned_model(0.6)
    report = tfprune.sparsity_report(pruned)
    assert report.sparsity == pytest.approx(0.6, abs=1 / report.params)
    masks = {k: np.ones(v.shape, np.float32) for k, v in _keras.prunable_kernels(pruned).items()}
    masks["mha/value"][:] = 0
    report = tfprune.sparsity_report(pruned, masks)
    assert "mha/value" in report.collapsed and "mha/attention_output" in report.collapsed  # its paths are cut


def mixed_model():
    keras.utils.set_random_seed(0)
    i = keras.Input((SEQ,), dtype="int32")
    e = keras.layers.Embedding(20, DIM, name="emb")(i)
    a = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, name="mha")(e, e)
    r = keras.layers.LSTM(5, name="lstm")(a)
    return keras.Model(i, keras.layers.Dense(2, name="out")(r))


def test_not_pruned_warning_and_report_name_what_is_left_dense_with_the_reason():
    with pytest.warns(tfprune.NotPrunedWarning) as caught:
        pruned = tfprune.prune_at_init(mixed_model(), "magnitude", 0.5)
    message = str(caught[0].message)
    assert "'emb'" in message and "'lstm'" in message
    assert "mha" not in message and "MultiHeadAttention" not in message and "EinsumDense" not in message
    report = tfprune.sparsity_report(pruned)
    assert [r.name for r in report.rows] == MHA_KEYS + ["out"]
    reasons = {r.name: r.why_not_pruned for r in report.not_prunable}
    assert list(reasons) == ["emb", "lstm"]
    assert "embedding" in reasons["emb"] and "recurrent" in reasons["lstm"]
    assert f"not prunable: {reasons['emb']}" in str(report)
    assert report.to_dict()["not_prunable"][0]["why_not_pruned"] == reasons["emb"]


def test_depthwise_reason():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.DepthwiseConv2D(3, name="dw"),
                              keras.layers.SeparableConv2D(4, 1, name="sep"), keras.layers.Flatten(),
                              keras.layers.Dense(2, name="fc")])
    reasons = {r.name: r.why_not_pruned for r in tfprune.sparsity_report(model).not_prunable}
    assert "depthwise" in reasons["dw"] and "separable" in reasons["sep"]


# --- tickets, lottery, structured helpers ----------------------------------------------------------

def test_ticket_round_trip_with_path_keys(tmp_path):
    from tfprune import lottery

    pruned = pruned_model()
    masks = tfprune.get_masks(pruned)
    path = lottery.save_ticket(str(tmp_path / "ticket.npz"), masks, pruned)
    rows = lottery.ticket_layers(build())
    assert [r["name"] for r in rows] == KEYS and rows[0]["class"] == "MultiHeadAttention"
    fresh = lottery.apply_ticket(build(seed=1), path)
    got = tfprune.get_masks(fresh)
    assert list(got) == KEYS and all(np.array_equal(got[k], masks[k]) for k in KEYS)


def test_a_lottery_level_prunes_attention_kernels(tmp_path):
    from tfprune import lottery
    from tfprune.spec import TrainingSpec

    spec = TrainingSpec(epochs=1, batch_size=8, seed=7, loss=LOSS,
                        optimizer={"class_name": "Adam", "config": {"learning_rate": 0.01}})
    lt = lottery.LotteryTicket(build, data(), None, run_dir=str(tmp_path / "run"), levels=1, rewind_step=0,
                               training=spec)
    quiet(lt.run)
    level0, level1 = lt.masks(0), lt.masks(1)
    assert list(level1) == KEYS
    total = sum(m.size for m in level1.values())
    assert sum(int(m.sum()) for m in level0.values()) == total
    assert sum(int(m.sum()) for m in level1.values()) == round(total * 0.8)


def test_channel_helpers_accept_attention_kernels():
    from tfprune.structured import channel_norms, channel_sizes

    model = build()
    sizes = channel_sizes(model)
    assert sizes["mha/query"] == DIM * HEADS and sizes["mha/attention_output"] == HEADS * KEY_DIM
    norms = channel_norms(model)
    np.testing.assert_allclose(norms["mha/value"], np.abs(model.get_layer("mha")._value_dense.kernel.numpy())
                               .reshape(-1, KEY_DIM).sum(axis=0))


# --- TFLite export ------------------------------------------------------------------------------

def test_tflite_export_of_a_pruned_attention_model_matches_keras_and_names_the_kernels(tmp_path):
    import tflite_export

    keras.utils.set_random_seed(0)
    i = keras.Input((SEQ, 16))
    a = keras.layers.MultiHeadAttention(2, 8, name="mha")(i, i)
    e = keras.layers.EinsumDense("abc,cd->abd", output_shape=(None, 32), bias_axes="d", name="ein")(a)
    model = keras.Model(i, keras.layers.Dense(3, name="out")(keras.layers.GlobalAveragePooling1D()(e)))
    masks = quiet(tfprune.compute_masks, model, "random", 0.7, seed=0)
    masks["mha/key"][:] = 0  # a fully pruned kernel: encoded with no stored value at all
    pruned = tfprune.apply_masks(model, masks)
    path = str(tmp_path / "m.tflite")
    report = quiet(tflite_export.export, pruned, path, block="auto")
    assert report.written and os.path.exists(path)
    assert [info.layer for info in report.layers] == MHA_KEYS + ["ein", "out"]
    assert {info.layer: info.kind for info in report.layers}["mha/query"] == "EinsumDense"
    named = {t.layer for t in report.tensors if t.layer}
    assert {"mha/attention_output", "ein"} <= named, report.tensors
    x = np.random.default_rng(0).normal(size=(8, SEQ, 16)).astype(np.float32)
    expected = tfprune.strip(pruned)(x).numpy()
    for resolver in ("default", "builtin"):  # checked here again, independently of the exporter's own check
        assert rel_err(run_tflite(path, x, resolver), expected) < 1e-4, resolver


def test_einsum_kernels_as_the_matrices_the_converter_makes():
    from tflite_export.keras_side import matrix_view

    mha = build().get_layer("mha")
    query, output = mha._query_dense, mha._output_dense
    k = query.kernel.numpy()
    np.testing.assert_array_equal(matrix_view(query, k), k.reshape(DIM, HEADS * KEY_DIM))
    k = output.kernel.numpy()
    np.testing.assert_array_equal(matrix_view(output, k), k.reshape(HEADS * KEY_DIM, DIM))
    transposed = keras.layers.EinsumDense("ab,cb->ac", output_shape=5)
    transposed.build((None, 4))
    assert matrix_view(transposed, transposed.kernel.numpy()) is None  # kernel [out, in]: no [in, out] view
    dense = keras.layers.Dense(3)
    dense.build((None, 4))
    assert matrix_view(dense, dense.kernel.numpy()).shape == (4, 3)


def test_mixed_precision_attention_masks_hold_through_fit():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build()
        assert model.get_layer("mha").compute_dtype == "float16"
        pruned = quiet(tfprune.prune_at_init, model, "snip", 0.7, data=data(), loss=LOSS)
        before = tfprune.get_masks(pruned)
        pruned.compile(keras.optimizers.Adam(0.05), LOSS)
        x, y = data()
        quiet(pruned.fit, x, y, epochs=1, batch_size=8, callbacks=tfprune.callbacks(), verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    after = tfprune.get_masks(pruned)
    for key, kernel in _keras.prunable_kernels(pruned).items():
        assert kernel.dtype == tf.float32 and after[key].tobytes() == before[key].tobytes(), key
        assert np.all(kernel.numpy()[before[key] == 0] == 0), key


def test_tflite_export_of_a_fully_pruned_dense_kernel(tmp_path):
    import tflite_export

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu", name="fc1"),
                              keras.layers.Dense(16, name="fc2"), keras.layers.Dense(4, name="out")])
    masks = {k: np.ones(v.shape, np.float32) for k, v in _keras.prunable_kernels(model).items()}
    masks["fc2"][:] = 0
    masks["fc1"][:, ::2] = 0
    report = quiet(tflite_export.export, tfprune.apply_masks(model, masks), str(tmp_path / "d.tflite"))
    assert report.written
    assert any(t.layer == "fc2" and t.zero_fraction == 1.0 for t in report.tensors)
