"""Structured pruning: dependency-aware channel removal, output equality with the masked
original, errors, training and TFLite export. Models are tiny (a few hundred weights)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras

import tfprune
import tfprune.structured as ts

L = keras.layers
RTOL, ATOL = 1e-5, 1e-5


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)   # deterministic initial kernels: every test sees the same model


def _randomize(model, seed=0):
    """Nonzero biases and non-trivial BatchNorm statistics, so that a removed channel's
    constant (bias → BN → activation) matters."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, w.shape) if "variance" in v.name else rng.normal(0, 0.5, w.shape)
                               for w, v in zip(layer.get_weights(), layer.weights)])
        elif getattr(layer, "use_bias", False) and layer.weights:
            w = layer.get_weights()
            w[1] = rng.normal(0, 0.5, w[1].shape)
            layer.set_weights(w)
    return model


def _x(model, n=4, seed=1):
    return np.random.default_rng(seed).normal(size=(n,) + tuple(model.input_shape[1:])).astype("float32")


def _assert_equal_to_reference(result, removed="zero", x=None):
    ref = ts.reference_model(result.plan, removed)
    x = _x(ref) if x is None else x
    np.testing.assert_allclose(result.model(x).numpy(), ref(x).numpy(), rtol=RTOL, atol=ATOL)
    assert result.report.exact
    return ref


def _units(model, name):
    layer = model.get_layer(name)
    return layer.units if isinstance(layer, L.Dense) else layer.filters


# ------------------------------------------------------------------------- architectures
def conv_bn_relu_conv():
    return _randomize(keras.Sequential([
        keras.Input((8, 8, 3)),
        L.Conv2D(8, 3, padding="same", name="c1"), L.BatchNormalization(name="bn1"), L.ReLU(),
        L.Conv2D(6, 3, padding="same", name="c2", use_bias=False), L.BatchNormalization(name="bn2"),
        L.Activation("relu"), L.GlobalAveragePooling2D(), L.Dense(4, name="out"),
    ]))


def dense_dense():
    return _randomize(keras.Sequential([
        keras.Input((7,)), L.Dense(10, activation="relu", name="d1"), L.Dropout(0.3),
        L.Dense(9, activation="tanh", name="d2"), L.Dense(3, name="out"),
    ]))


def conv_flatten_dense(padding="valid"):
    return _randomize(keras.Sequential([
        keras.Input((7, 7, 2)), L.Conv2D(6, 3, padding=padding, activation="relu", name="c1"),
        L.MaxPooling2D(), L.Flatten(), L.Dense(5, activation="relu", name="d1"), L.Dense(3, name="out"),
    ]))


def residual():
    x = keras.Input((8, 8, 3))
    stem = L.ReLU()(L.BatchNormalization(name="bn0")(L.Conv2D(8, 3, padding="same", name="stem")(x)))
    h = L.ReLU()(L.BatchNormalization(name="bn1")(L.Conv2D(6, 3, padding="same", name="b_c1")(stem)))
    h = L.BatchNormalization(name="bn2")(L.Conv2D(8, 3, padding="same", name="b_c2")(h))
    h = L.ReLU()(L.Add(name="add")([stem, h]))
    proj = L.Conv2D(12, 1, strides=2, name="proj")(h)
    g = L.ReLU()(L.Conv2D(12, 3, strides=2, padding="same", name="c_c1")(h))
    g = L.Add(name="add2")([proj, L.Conv2D(12, 3, padding="same", name="c_c2")(g)])
    out = L.Dense(4, name="out")(L.GlobalAveragePooling2D()(L.ReLU()(g)))
    return _randomize(keras.Model(x, out))


def concat():
    x = keras.Input((6, 6, 3))
    a = L.Conv2D(4, 1, activation="relu", name="a")(x)
    b = L.BatchNormalization(name="bn_b")(L.Conv2D(6, 3, padding="same", name="b")(x))
    b = L.ReLU()(b)
    h = L.Concatenate(name="cat")([a, b])
    h = L.Conv2D(5, 3, padding="same", activation="relu", name="after")(h)
    out = L.Dense(3, name="out")(L.Flatten()(L.AveragePooling2D()(h)))
    return _randomize(keras.Model(x, out))


def squeeze_excite():
    x = keras.Input((6, 6, 3))
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="c")(x)
    s = L.GlobalAveragePooling2D(keepdims=True)(h)
    s = L.Conv2D(8, 1, activation="sigmoid", name="se2")(L.Conv2D(4, 1, activation="relu", name="se1")(s))
    h = L.Multiply(name="scale")([h, s])
    return _randomize(keras.Model(x, L.Dense(2, name="out")(L.GlobalAveragePooling2D()(h))))


def depthwise_1d():
    return _randomize(keras.Sequential([
        keras.Input((12, 3)), L.Conv1D(8, 1, name="pw1"), L.DepthwiseConv1D(3, padding="same", name="dw"),
        L.BatchNormalization(name="bn"), L.ReLU(), L.Conv1D(6, 3, name="pw2"), L.ZeroPadding1D(1),
        L.AveragePooling1D(), L.Flatten(), L.Dense(3, name="out"),
    ]))


def sequential_without_input():
    model = keras.Sequential([L.Conv2D(4, 3, name="c1"), L.BatchNormalization(name="bn"), L.ReLU(),
                              L.Flatten(), L.Dense(3, name="out")])
    model.build((None, 6, 6, 2))
    return _randomize(model)


# -------------------------------------------------------------------- output equality
@pytest.mark.parametrize("build", [conv_bn_relu_conv, dense_dense, conv_flatten_dense, residual, concat],
                         ids=["conv-bn-relu-conv", "dense-dense", "conv-flatten-dense", "residual-add", "concat"])
def test_smaller_model_equals_masked_original(build):
    model = build()
    result = ts.prune(model, 0.5, "l1")
    ref = _assert_equal_to_reference(result)
    assert result.model.count_params() < model.count_params()
    assert ref.count_params() == model.count_params()
    out = model.layers[-1].name
    assert _units(result.model, out) == _units(model, out)  # the output layer is never shrunk
    assert result.report.params_after == sum(l.count_params() for l in result.model.layers)
    # The masked original really differs from the unpruned model (the test is not vacuous).
    x = _x(model)
    assert np.abs(model(x).numpy() - ref(x).numpy()).max() > 1e-3


@pytest.mark.parametrize("build", [squeeze_excite, depthwise_1d, sequential_without_input],
                         ids=["squeeze-excite-multiply", "depthwise-1d-zeropadding", "sequential-built-later"])
def test_more_architectures(build):
    model = build()
    result = ts.prune(model, 0.5, "l2")
    _assert_equal_to_reference(result)
    assert result.model.count_params() < model.count_params()


def test_add_with_the_model_input_pins_the_channels():
    x = keras.Input((6, 6, 4))
    h = L.Add()([x, L.Conv2D(4, 3, padding="same", name="c")(x)])
    h = L.Conv2D(6, 3, name="c2")(h)
    model = keras.Model(x, L.Dense(2, name="out")(L.Flatten()(h)))
    result = ts.prune(model, 0.5)
    assert [g.name for g in result.plan.groups] == ["c2"]
    assert _units(result.model, "c") == 4 and _units(result.model, "c2") == 3
    _assert_equal_to_reference(result)


def test_conv_bn_relu_conv_slices_bn_and_consumer():
    model = conv_bn_relu_conv()
    result = ts.prune(model, 0.5, "l2")
    keep = np.flatnonzero(result.plan.channel_masks()["c1"])
    assert len(keep) == 4 and _units(result.model, "c1") == 4
    norms = ts.channel_norms(model, ord=2)["c1"]
    assert set(keep) == set(np.argsort(-norms)[:4])
    for new, old in zip(result.model.get_layer("bn1").get_weights(), model.get_layer("bn1").get_weights()):
        np.testing.assert_array_equal(new, old[keep])
    keep2 = np.flatnonzero(result.plan.channel_masks()["c2"])
    np.testing.assert_array_equal(result.model.get_layer("c2").kernel.numpy(),
                                  model.get_layer("c2").kernel.numpy()[:, :, keep][..., keep2])


def test_flatten_removes_nhwc_rows_of_the_next_dense():
    model = conv_flatten_dense()
    result = ts.prune(model, 0.5, "l1")
    masks = result.plan.channel_masks()
    keep, keep_d1 = np.flatnonzero(masks["c1"]), np.flatnonzero(masks["d1"])
    spatial = 2 * 2  # 7x7 --valid 3x3--> 5x5 --pool--> 2x2; flat index = position * C + channel
    rows = np.array([p * 6 + c for p in range(spatial) for c in keep])
    np.testing.assert_array_equal(result.model.get_layer("d1").kernel.numpy(),
                                  model.get_layer("d1").kernel.numpy()[rows][:, keep_d1])


def test_residual_add_couples_channels():
    model = residual()
    plan = ts.channel_plan(model, 0.5)
    assert {g.name: g.channels for g in plan.groups} == {"stem+b_c2": 8, "b_c1": 6, "proj+c_c2": 12, "c_c1": 12}
    masks = plan.channel_masks()
    np.testing.assert_array_equal(masks["stem"], masks["b_c2"])
    np.testing.assert_array_equal(masks["proj"], masks["c_c2"])
    small = ts.shrink(plan).model
    assert _units(small, "stem") == _units(small, "b_c2") == 4 and _units(small, "proj") == 6
    # The coupled score is the sum of both layers' channel scores.
    norms = ts.channel_norms(model)
    np.testing.assert_allclose(plan.scores["stem+b_c2"], norms["stem"] + norms["b_c2"])


def test_concatenate_offsets_channel_indices():
    model = concat()
    result = ts.prune(model, 0.5, "l1")
    masks = result.plan.channel_masks()
    positions = np.concatenate([np.flatnonzero(masks["a"]), 4 + np.flatnonzero(masks["b"])])
    keep_after = np.flatnonzero(masks["after"])
    np.testing.assert_array_equal(result.model.get_layer("after").kernel.numpy(),
                                  model.get_layer("after").kernel.numpy()[:, :, positions][..., keep_after])


# ------------------------------------------------------------------ the fold definition
def test_fold_equals_core_kernel_masks_where_exact():
    """removed='fold': the masked original is tfprune.apply_masks(model, plan.kernel_masks())
    (only the kernel slices zeroed); the constant a removed channel carries is folded into
    consumer biases, exactly for Dense and 'valid' convolutions."""
    x = keras.Input((9, 9, 2))
    h = L.Conv2D(6, 3, name="c1")(x)
    h = L.ReLU()(L.BatchNormalization(name="bn")(h))
    h = L.Conv2D(5, 3, activation="sigmoid", name="c2", use_bias=False)(h)
    h = L.Conv2D(4, 1, padding="same", activation="relu", name="c3")(h)
    h = L.Dense(6, activation="elu", name="d1")(L.Flatten()(L.MaxPooling2D()(h)))
    model = _randomize(keras.Model(x, L.Dense(3, name="out")(h)))
    result = ts.prune(model, 0.5, "l1", removed="fold")
    assert result.report.exact and not result.report.notes
    assert result.model.get_layer("c2").use_bias is False
    xs = _x(model)
    masked = _masked_copy(model, result.plan.kernel_masks())  # the core's fixed-mask wrapper
    np.testing.assert_allclose(result.model(xs).numpy(), masked(xs).numpy(), rtol=RTOL, atol=ATOL)
    _assert_equal_to_reference(result, "fold", xs)


def _masked_copy(model, masks):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return tfprune.apply_masks(copy, masks)


def test_fold_adds_a_bias_where_the_consumer_had_none():
    model = _randomize(keras.Sequential([keras.Input((5,)), L.Dense(8, activation="sigmoid", name="d1"),
                                         L.Dense(6, use_bias=False, name="d2"), L.Dense(2, name="out")]))
    result = ts.prune(model, 0.5, removed="fold")
    assert result.model.get_layer("d2").use_bias
    _assert_equal_to_reference(result, "fold")


def test_fold_through_same_padding_is_flagged():
    model = conv_bn_relu_conv()
    bn1 = model.get_layer("bn1")
    gamma, beta, mean, var = bn1.get_weights()
    bn1.set_weights([gamma, beta + 2.0, mean, var])   # removed c1 channels carry a positive constant after ReLU
    with pytest.warns(ts.InexactFoldWarning, match="c2"):
        result = ts.prune(model, 0.5, removed="fold")
    assert not result.report.exact
    assert any(note.startswith("c2:") and "padding='same'" in note for note in result.report.notes)
    # Away from the borders the fold is still exact: compare the centre of c2's output.
    ref = ts.reference_model(result.plan, "fold")
    x = _x(model)
    probe = lambda m: keras.Model(m.input, m.get_layer("c2").output)(x).numpy()[:, 1:-1, 1:-1]
    keep = np.flatnonzero(result.plan.channel_masks()["c2"])
    np.testing.assert_allclose(probe(result.model), probe(ref)[..., keep], rtol=RTOL, atol=ATOL)


def test_zero_mode_folds_the_constant_of_an_activation_with_nonzero_f0():
    model = _randomize(keras.Sequential([keras.Input((6,)), L.Dense(8, activation="sigmoid", name="d1"),
                                         L.Dense(2, name="out")]))
    result = ts.prune(model, 0.5)   # sigmoid(0) = 0.5 reaches 'out' and is folded into its bias
    _assert_equal_to_reference(result)


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("bad, cls", [(lambda: L.Reshape((8, 8, 4, 2)), "Reshape"),
                                      (lambda: L.LayerNormalization(), "LayerNormalization"),
                                      (lambda: L.Conv2DTranspose(4, 3), "Conv2DTranspose")])
def test_unsupported_layer_is_named(bad, cls):
    x = keras.Input((8, 8, 3))
    h = L.Conv2D(8, 3, padding="same", name="c1")(x)
    h = bad()(h)
    model = keras.Model(x, L.Dense(2, name="out")(L.Flatten()(h)))
    with pytest.raises(ts.StructuredPruningError, match=rf"{cls}.*'c1'|'c1'.*{cls}") as err:
        ts.prune(model, 0.5)
    assert "exclude=['c1']" in str(err.value)
    small, report = ts.prune(model, 0.5, exclude=["c1"])  # keeping c1's channels works
    assert _units(small, "c1") == 8


def test_shared_layer_is_rejected():
    x = keras.Input((4,))
    shared = L.Dense(4, name="shared")
    model = keras.Model(x, L.Dense(2)(shared(shared(x))))
    with pytest.raises(ts.StructuredPruningError, match="'shared'.*more than once"):
        ts.prune(model, 0.5)


def test_ratio_errors():
    model = residual()
    with pytest.raises(ts.StructuredPruningError, match="same ratio|different ratios"):
        ts.prune(model, {"stem": 0.5, "b_c2": 0.25})
    with pytest.raises(ts.StructuredPruningError, match="'out'.*output layer"):
        ts.prune(model, {"out": 0.5})
    with pytest.raises(ValueError, match="no layer named"):
        ts.prune(model, {"nope": 0.5})
    with pytest.raises(ValueError, match="ratio"):
        ts.prune(model, 1.0)
    with pytest.raises(ValueError, match="criterion.*l1"):
        ts.prune(model, 0.5, "nope")
    with pytest.raises(ValueError, match="removed"):
        ts.prune(model, 0.5, removed="drop")


def test_last_layer_before_a_softmax_layer_is_not_shrunk():
    model = keras.Sequential([keras.Input((5,)), L.Dense(8, name="d1"), L.Dense(4, name="logits"), L.Softmax()])
    small, _ = ts.prune(model, 0.5)
    assert _units(small, "logits") == 4 and _units(small, "d1") == 4


# ------------------------------------------------------------------- ratios and scope
def test_per_layer_ratios_and_global_scope():
    model = residual()
    small, report = ts.prune(model, {"stem": 0.75, "b_c2": 0.75, "c_c1": 0.5})
    assert _units(small, "stem") == 2 and _units(small, "b_c1") == 6 and _units(small, "c_c1") == 6
    assert _units(small, "proj") == 12
    result = ts.prune(model, 0.5, scope="global")
    kept = sum(int(k.sum()) for k in result.plan.keep.values())
    assert kept == round(sum(g.channels for g in result.plan.groups) * 0.5)
    _assert_equal_to_reference(result)


@pytest.mark.parametrize("criterion", ["l2", "magnitude", "random", "snip", "grasp", "synflow"])
def test_core_scorers_pooled_per_channel(criterion):
    model = conv_flatten_dense()
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(6, 7, 7, 2)).astype("float32"), np.arange(6) % 3)
    kwargs = {"data": data, "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)} \
        if criterion in ("snip", "grasp") else {}
    result = ts.prune(model, 0.5, criterion, **kwargs)
    _assert_equal_to_reference(result)
    if criterion in ("magnitude", "grasp"):
        scores = tfprune.compute_scores(model, criterion, **kwargs)["c1"]
        pooled = scores.astype(np.float64).reshape(-1, scores.shape[-1]).sum(0)
        np.testing.assert_allclose(result.plan.scores["c1"], pooled)
        order = np.argsort(pooled if criterion == "grasp" else -pooled, kind="stable")[:3]
        assert set(np.flatnonzero(result.plan.channel_masks()["c1"])) == set(order)


# ------------------------------------------------------------- training and export
def test_smaller_model_trains_with_fit():
    small, _ = ts.prune(residual(), 0.5)
    small.compile(keras.optimizers.SGD(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 8, 8, 3)).astype("float32"), rng.integers(0, 4, 16)
    before = small.get_layer("stem").kernel.numpy().copy()
    history = small.fit(x, y, batch_size=8, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.allclose(before, small.get_layer("stem").kernel.numpy())


def test_smaller_model_exports_to_tflite(tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    small, _ = ts.prune(concat(), 0.5)
    blob = tf.lite.TFLiteConverter.from_keras_model(small).convert()
    interpreter = Interpreter(model_content=blob, num_threads=1)
    interpreter.allocate_tensors()
    x = _x(small, n=1)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, small(x).numpy(), rtol=1e-4, atol=1e-5)


def test_report_is_printable_and_serialisable():
    import json

    model = residual()
    small, report = ts.prune(model, 0.75)
    text = str(report)
    assert "stem" in text and "params x" in text and "FLOPs x" in text
    data = json.loads(json.dumps(report.to_dict()))
    assert data["params_before"] == model.count_params()
    assert data["params_after"] == small.count_params()
    assert data["flops_after"] == sum(ts.layer_flops(layer) for layer in small.layers)
    assert 0 < data["flops_ratio"] < 0.25   # 75% of the channels removed: ~1/16 of most convolutions
    row = next(r for r in data["layers"] if r["name"] == "b_c1")
    assert row["channels_before"] == 6 and row["channels_after"] == 2   # round(6 * 0.25) = 2 (banker's: 1.5 -> 2)
    assert row["flops_before"] == 2 * 8 * 8 * 9 * 8 * 6


def test_wrapped_model_is_stripped_first():
    model = keras.Sequential([keras.Input((7,)), L.Dense(10, activation="relu", name="d1"), L.Dense(3, name="out")])
    pruned = tfprune.prune_at_init(model, "magnitude", 0.3)
    small, _ = ts.prune(pruned, 0.5)
    assert _units(small, "d1") == 5 and not any("tfprune_" in l.name for l in small.layers)
