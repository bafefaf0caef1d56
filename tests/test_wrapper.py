"""Fixed-mask wrapper: masks stay fixed through fit, TF-MOT compatibility, save/load, strip."""
import glob

import numpy as np
import pytest
import tensorflow_model_optimization as tfmot

import tfprune
from tfprune._keras import keras
from tfprune.wrapper import PruneLowMagnitude


def small_cnn(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(6, 3, activation="relu", name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(16, activation="relu", name="fc"),
        keras.layers.Dense(4, name="out"),
    ])


def data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype("float32"), rng.integers(0, 4, n)


def pruned_model(sparsity=0.8, seed=0):
    model = tfprune.prune_at_init(small_cnn(seed), "random", sparsity, seed=seed)
    model.compile(keras.optimizers.Adam(1e-2),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def test_masks_are_bit_identical_after_two_epochs_of_fit_and_masked_weights_stay_zero():
    model = pruned_model()
    before = tfprune.get_masks(model)
    kernels_before = {n: l.layer.kernel.numpy().copy() for n, l in
                      ((l.layer.name, l) for l in model.layers if isinstance(l, tfprune.FixedMaskWrapper))}
    x, y = data()
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=tfprune.callbacks())
    after = tfprune.get_masks(model)
    assert set(before) == {"conv", "fc", "out"}
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])
    plain = tfprune.strip(model)
    for name, mask in after.items():
        kernel = plain.get_layer(name).kernel.numpy()
        assert np.all(kernel[mask == 0] == 0)
        assert np.any(kernel[mask == 1] != kernels_before[name][mask == 1])  # it did train


def test_wrapper_works_without_update_pruning_step_callback():
    model = pruned_model()
    before = tfprune.get_masks(model)
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)  # TF-MOT's own wrapper raises here
    for name, mask in tfprune.get_masks(model).items():
        np.testing.assert_array_equal(before[name], mask)


def test_tfmot_callbacks_and_strip_pruning_accept_our_wrapper(tmp_path):
    model = pruned_model()
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0,
              callbacks=[tfmot.sparsity.keras.UpdatePruningStep(),
                         tfmot.sparsity.keras.PruningSummaries(log_dir=str(tmp_path))])
    assert glob.glob(str(tmp_path / "**" / "events.out.tfevents*"), recursive=True)
    steps = {int(l.pruning_step.numpy()) for l in model.layers if isinstance(l, tfprune.FixedMaskWrapper)}
    assert steps == {0}  # UpdatePruningStep initialised it; a fixed mask never advances it
    stripped = tfmot.sparsity.keras.strip_pruning(model)
    assert not any(isinstance(l, PruneLowMagnitude) for l in stripped.layers)
    np.testing.assert_allclose(stripped.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)


def test_strip_returns_independent_plain_model_without_negative_zero():
    model = pruned_model(0.5)
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=tfprune.callbacks())
    plain = tfprune.strip(model)
    assert [l.name for l in plain.layers] == ["conv", "bn", "flat", "fc", "out"]
    assert not any(isinstance(l, PruneLowMagnitude) for l in plain.layers)
    np.testing.assert_allclose(plain.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    for name in ("conv", "fc", "out"):
        kernel = plain.get_layer(name).kernel.numpy()
        zeros = kernel[kernel == 0]
        assert zeros.size > 0 and not np.any(np.signbit(zeros))
    plain.get_layer("fc").kernel.assign(np.ones_like(plain.get_layer("fc").kernel.numpy()))
    assert not np.all(tfprune.get_masks(model)["fc"] == 1)  # model untouched


@pytest.mark.parametrize("fmt", ["h5", "savedmodel"])
def test_save_and_load_round_trip_keeps_masks(tmp_path, fmt):
    model = pruned_model()
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=tfprune.callbacks())
    path = str(tmp_path / ("m.h5" if fmt == "h5" else "saved"))
    model.save(path)
    with tfprune.custom_object_scope():
        loaded = keras.models.load_model(path)
    masks, loaded_masks = tfprune.get_masks(model), tfprune.get_masks(loaded)
    assert set(masks) == set(loaded_masks)
    for name in masks:
        np.testing.assert_array_equal(masks[name], loaded_masks[name])
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6, atol=1e-6)
    # masks keep holding while the loaded model trains on
    loaded.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=tfprune.callbacks())
    for name, mask in tfprune.get_masks(loaded).items():
        np.testing.assert_array_equal(masks[name], mask)


def test_load_model_helper_and_error_without_scope(tmp_path):
    model = pruned_model()
    path = str(tmp_path / "m.h5")
    model.save(path)
    with pytest.raises(ValueError, match="FixedMaskWrapper"):
        keras.models.load_model(path)
    loaded = tfprune.load_model(path)
    assert any(isinstance(l, tfprune.FixedMaskWrapper) for l in loaded.layers)


def test_apply_masks_on_wrapped_model_updates_in_place_and_zeroes_weights():
    model = pruned_model(0.5)
    new = {name: np.zeros_like(mask) for name, mask in tfprune.get_masks(model).items()}
    new["fc"][0, 0] = 1
    same = tfprune.apply_masks(model, new)
    assert same is model
    fc = model.get_layer("fixed_mask_wrapper_fc")
    assert np.count_nonzero(fc.layer.kernel.numpy()) <= 1
    np.testing.assert_array_equal(tfprune.get_masks(model)["fc"], new["fc"])


def test_apply_masks_rejects_wrong_masks():
    model = small_cnn()
    with pytest.raises(ValueError, match=r"no prunable layer named \['nope'\].*prunable layers: \['conv', 'fc', 'out'\]"):
        tfprune.apply_masks(model, {"nope": np.ones(3)})
    with pytest.raises(ValueError, match=r"fc: mask shape \(3,\) != kernel shape \(216, 16\)"):
        tfprune.apply_masks(model, {"fc": np.ones(3)})
    with pytest.raises(ValueError, match="fc: mask values must be 0 or 1"):
        tfprune.apply_masks(model, {"fc": np.full((216, 16), 0.5)})
    with pytest.raises(TypeError, match="masks: expected a dict"):
        tfprune.apply_masks(model, [np.ones(3)])


def test_get_masks_of_plain_model_is_nonzero_pattern():
    model = small_cnn()
    kernel = model.get_layer("fc").kernel
    value = kernel.numpy()
    value[:10] = 0
    kernel.assign(value)
    masks = tfprune.get_masks(model)
    assert masks["fc"][:10].sum() == 0 and masks["fc"][10:].all()


def test_functional_model_with_residual_add_is_wrapped_and_trains():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inputs)
    r = keras.layers.Conv2D(4, 3, padding="same", name="c2")(h)
    h = keras.layers.Add(name="add")([h, r])
    h = keras.layers.GlobalAveragePooling2D()(h)
    outputs = keras.layers.Dense(4, name="out")(h)
    model = keras.Model(inputs, outputs)
    pruned = tfprune.prune_at_init(model, "synflow", 0.5)
    assert set(tfprune.get_masks(pruned)) == {"c1", "c2", "out"}
    pruned.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = data()
    before = tfprune.get_masks(pruned)
    pruned.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=tfprune.callbacks())
    for name, mask in tfprune.get_masks(pruned).items():
        np.testing.assert_array_equal(before[name], mask)
    np.testing.assert_allclose(tfprune.strip(pruned).predict(x, verbose=0), pruned.predict(x, verbose=0), atol=1e-6)


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_masked_op_in_a_graph_gives_the_hand_computed_bits(dtype):
    # the wrapper's per-step op, traced as Keras traces it: kept entries bit-for-bit (incl. -0.0,
    # inf, NaN), masked ones +0.0 whatever they held; any other mask value (0.5, -0.0, inf, NaN) means
    # what its != 0 says (so applying it twice changes nothing); 37 entries: vector and tail paths
    import tensorflow as tf
    from tfprune.wrapper import masked
    rng = np.random.default_rng(0)
    w = rng.standard_normal(37).astype(dtype)
    w[:8] = [-0.0, np.inf, -np.inf, np.nan, -0.0, np.inf, -np.inf, np.nan]
    w[8:20] = -np.abs(w[8:20]) - 1  # negative weights: w * 0 would be -0.0
    m = (rng.random(37) < 0.5).astype(dtype)
    m[:4], m[4:8], m[8:20] = 0, 1, 0
    m[20:24] = 0.5, -0.0, np.inf, np.nan
    expected = np.where(m != 0, w, np.zeros((), dtype))
    assert np.signbit(expected[4]) and not np.signbit(expected[:4]).any() and not np.signbit(expected[8:20]).any()
    variable = tf.Variable(w)
    step = tf.function(lambda: variable.assign(masked(tf.convert_to_tensor(variable), tf.constant(m)),
                                               read_value=False) and None)
    bits = {"float16": np.int16, "float32": np.int32, "float64": np.int64}[dtype]
    for _ in range(2):
        step()
        np.testing.assert_array_equal(variable.numpy().view(bits), expected.view(bits))


def test_stored_kernels_are_positive_zero_where_masked_after_the_next_forward_pass():
    # masked weights get gradients, so the optimizer moves them; the next (compiled) forward pass
    # sets them back to exactly +0.0 before the layer runs and leaves the kept ones bit-identical
    model = pruned_model(0.5)
    masks = tfprune.get_masks(model)
    wrappers = {l.layer.name: l for l in model.layers if isinstance(l, tfprune.FixedMaskWrapper)}
    for name, layer in wrappers.items():  # masked weights negative (written past the mask)
        kernel = layer.layer.kernel.numpy()
        layer.layer.kernel.assign(np.where(masks[name] == 0, -np.abs(kernel) - 0.1, kernel))
    x, y = data()
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)  # no callback: nothing re-masks at the epoch end
    stored = {name: layer.layer.kernel.numpy() for name, layer in wrappers.items()}
    assert all(np.any(stored[name][masks[name] == 0] != 0) for name in stored)  # the optimizer moved them
    model.predict(x, verbose=0)
    for name, layer in wrappers.items():
        kernel, keep = layer.layer.kernel.numpy(), masks[name] == 1
        assert np.all(kernel[~keep] == 0) and not np.signbit(kernel[~keep]).any(), name
        np.testing.assert_array_equal(kernel[keep].view(np.int32), stored[name][keep].view(np.int32))
