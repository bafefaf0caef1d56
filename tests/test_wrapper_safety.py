"""Masks that must not go wrong silently (issue 11): non-binary masks from files, idempotent
masking, models loaded without tfprune's classes, mixed precision."""
import h5py
import numpy as np
import pytest

import tfprune
from tfprune._keras import keras


def mlp(seed=0, out_dtype=None):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((12,)),
        keras.layers.Dense(16, activation="relu", name="fc1"),
        keras.layers.Dense(3, name="out", **({"dtype": out_dtype} if out_dtype else {})),
    ])


def xy(n=32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 12)).astype("float32"), rng.integers(0, 3, n)


def wrapper(model, name):
    return next(l for l in model.layers if tfprune.keras_utils.is_pruning_wrapper(l) and l.layer.name == name)


def poison(model, name="fc1", value=0.5):
    """Writes a non-binary entry straight into a wrapper's mask variable (no check on this path)."""
    mask = wrapper(model, name).pruning_vars[0][1]
    values = mask.numpy()
    values.flat[np.flatnonzero(values == 1)[0]] = value  # on a kept weight
    mask.assign(values)


# ---------------------------------------------------------------- item 3: non-binary masks

def test_apply_masks_names_layer_value_and_what_is_allowed():
    masks = {"fc1": np.full((12, 16), 0.5, np.float32)}
    with pytest.raises(ValueError, match=r"^masks: fc1: mask values must be 0 or 1, got 0\.5 \(192 entries\); allowed: 0/1 arrays\.$"):
        tfprune.apply_masks(mlp(), masks)


def test_masking_is_idempotent_in_the_call_path_even_for_a_non_binary_mask():
    pruned = tfprune.prune_at_init(mlp(), "magnitude", 0.5)
    poison(pruned)
    x, _ = xy()
    kernel = wrapper(pruned, "fc1").layer.kernel
    first = pruned(x, training=False).numpy()
    after_first = kernel.numpy().copy()
    second = pruned(x, training=False).numpy()
    np.testing.assert_array_equal(kernel.numpy(), after_first)
    np.testing.assert_array_equal(first, second)


def test_update_pruning_step_remasking_is_idempotent():
    pruned = tfprune.prune_at_init(mlp(), "magnitude", 0.5)
    poison(pruned)
    kernel = wrapper(pruned, "fc1").layer.kernel
    callback = tfprune.callbacks()[0]
    callback.set_model(pruned)
    callback.on_train_begin()
    callback.on_epoch_end(0)
    once = kernel.numpy().copy()
    callback.on_epoch_end(1)
    np.testing.assert_array_equal(kernel.numpy(), once)


def test_get_masks_refuses_a_non_binary_mask_variable():
    pruned = tfprune.prune_at_init(mlp(), "magnitude", 0.5)
    poison(pruned, value=0.25)
    with pytest.raises(ValueError, match=r"mask: layer 'fc1' holds values other than 0 and 1 \(0\.25, 1 entry\)"):
        tfprune.get_masks(pruned)
    with pytest.raises(ValueError, match=r"mask: layer 'fc1' holds values other than 0 and 1"):
        tfprune.sparsity_report(pruned)


def _h5_with_half_mask(tmp_path):
    pruned = tfprune.prune_at_init(mlp(), "magnitude", 0.5)
    path = str(tmp_path / "m.h5")
    pruned.save(path)
    with h5py.File(path, "r+") as f:
        names = []
        f["model_weights"].visititems(lambda n, o: names.append(n) if n.endswith("mask:0") else None)
        dataset = f["model_weights"][sorted(names)[0]]
        values = dataset[()]
        values.flat[0] = 0.5
        dataset[...] = values
    return path


def test_h5_with_non_binary_mask_is_refused_by_load_model(tmp_path):
    path = _h5_with_half_mask(tmp_path)
    with pytest.raises(ValueError, match=rf"^path: {path!r}: mask of layer 'fc1' holds values other than 0 and 1 "
                                         r"\(0\.5, 1 entry\); masks are 0/1"):
        tfprune.load_model(path)


def test_h5_with_non_binary_mask_is_refused_in_the_custom_object_scope(tmp_path):
    path = _h5_with_half_mask(tmp_path)
    with pytest.raises(ValueError, match=r"mask of layer 'fc1' holds values other than 0 and 1 \(0\.5, 1 entry\)"):
        with tfprune.custom_object_scope():
            keras.models.load_model(path)


@pytest.mark.parametrize("name", ["saved", "m.keras"])
def test_savedmodel_or_keras_file_with_non_binary_mask_is_refused_by_load_model(tmp_path, name):
    pruned = tfprune.prune_at_init(mlp(), "magnitude", 0.5)
    poison(pruned, "out", 0.75)
    path = str(tmp_path / name)
    pruned.save(path)
    with pytest.raises(ValueError, match=r"mask of layer 'out' holds values other than 0 and 1 \(0\.75, 1 entry\)"):
        tfprune.load_model(path)


# ---------------------------------------------------------------- item 6: loaded without the scope

@pytest.fixture(scope="module")
def revived(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("sm") / "saved")
    tfprune.prune_at_init(mlp(), "magnitude", 0.5).save(path)
    return path, keras.models.load_model(path)  # no scope: Keras revives the wrappers as RevivedLayer


@pytest.mark.parametrize("call", ["get_masks", "sparsity_report", "strip", "prune_at_init", "apply_masks"])
def test_savedmodel_loaded_without_scope_is_refused_with_what_to_do(revived, call):
    _, model = revived
    args = {"prune_at_init": ("magnitude", 0.9), "apply_masks": ({},)}.get(call, ())
    with pytest.raises(TypeError, match=r"^model: layer 'fixed_mask_wrapper_fc1' is a pruning wrapper \(FixedMaskWrapper\) "
                                        r"loaded without tfprune's classes.*tfprune\.load_model\(path\).*"
                                        r"tfprune\.custom_object_scope\(\)"):
        getattr(tfprune, call)(model, *args)


def test_savedmodel_loaded_with_load_model_keeps_its_masks(revived):
    path, _ = revived
    assert set(tfprune.get_masks(tfprune.load_model(path))) == {"fc1", "out"}


@pytest.mark.parametrize("suffix", [".h5", ".keras"])
def test_load_model_reads_h5_and_keras_files(tmp_path, suffix):
    pruned = tfprune.prune_at_init(mlp(), "magnitude", 0.5)
    path = str(tmp_path / ("m" + suffix))
    pruned.save(path)
    loaded = tfprune.load_model(path)
    for name, mask in tfprune.get_masks(pruned).items():
        np.testing.assert_array_equal(tfprune.get_masks(loaded)[name], mask)


# ---------------------------------------------------------------- item 10: mixed precision

@pytest.fixture
def mixed_float16():
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(policy)


@pytest.mark.parametrize("method", ["synflow", "snip"])
def test_mixed_float16_with_float32_output_layer_prunes_and_trains(mixed_float16, method):
    x, y = xy()
    pruned = tfprune.prune_at_init(mlp(out_dtype="float32"), method, 0.6, data=(x, y),
                                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = tfprune.get_masks(pruned)
    pruned.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    pruned.fit(x, y, epochs=2, batch_size=8, verbose=0, callbacks=tfprune.callbacks())
    assert pruned(x).dtype == "float32"
    for name, mask in tfprune.get_masks(pruned).items():
        np.testing.assert_array_equal(mask, before[name])
        layer = wrapper(pruned, name)
        kernel = layer.layer.kernel
        assert layer.pruning_vars[0][1].dtype == getattr(kernel, "true_dtype", kernel.dtype) == "float32"
        assert np.all(layer.layer.kernel.numpy()[mask == 0] == 0)
    plain = tfprune.strip(pruned)
    np.testing.assert_allclose(plain.predict(x, verbose=0), pruned.predict(x, verbose=0), rtol=1e-3, atol=1e-3)


def test_masking_under_mixed_float16_keeps_float32_master_weights(mixed_float16):
    pruned = tfprune.prune_at_init(mlp(out_dtype="float32"), "magnitude", 0.5)
    kernel = wrapper(pruned, "fc1").layer.kernel
    precise = kernel.numpy() + np.float32(1e-5)  # not representable in float16
    kernel.assign(precise * tfprune.get_masks(pruned)["fc1"])
    pruned(xy()[0], training=True)
    np.testing.assert_array_equal(kernel.numpy(), precise * tfprune.get_masks(pruned)["fc1"])


@pytest.mark.parametrize("method", ["snip", "grasp"])
def test_scores_are_float32_whatever_the_policy(method):
    x, y = xy()
    loss = "sparse_categorical_crossentropy"
    reference = tfprune.compute_scores(mlp(), method, data=(x, y), loss=loss)
    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        mixed = tfprune.compute_scores(mlp(), method, data=(x, y), loss=loss)
    finally:
        keras.mixed_precision.set_global_policy(policy)
    for name in reference:
        assert mixed[name].dtype in (np.float32, np.float64)
        np.testing.assert_allclose(mixed[name], reference[name], rtol=1e-5, atol=1e-9)
