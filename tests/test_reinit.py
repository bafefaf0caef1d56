"""``reinit`` draws genuinely new weights: also for models whose initializers have fixed seeds
(the zoo gives every layer its own seeded initializer), from the same distributions."""
import warnings

import numpy as np
import pytest
import tf_keras as keras

from tfprune import lottery
from tfprune.experiment import models
from tfprune.io import load_npz
from tfprune.lottery._data import data_for
from tfprune.lottery._engine import Engine
from tfprune.spec import TrainingSpec

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def zoo_lenet():
    return models.build("lenet_300_100", (28, 28, 1), 10, seed=0)


def hand_built():
    """A hand-built model with fixed-seed initializers (the kernel of "hidden": seed=3), one
    without a seed, and a constant (zeros) bias."""
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(48, activation="relu", name="hidden",
                           kernel_initializer=keras.initializers.GlorotNormal(seed=3),
                           bias_initializer=keras.initializers.RandomUniform(-0.1, 0.1, seed=3)),
        keras.layers.Dense(40, activation="relu", name="he", kernel_initializer=keras.initializers.HeNormal(seed=3)),
        keras.layers.Dense(4, name="free"),  # glorot_uniform, no seed
    ])


def engine_for(model, run_dir, n_inputs):
    training = TrainingSpec(epochs=1, batch_size=8, seed=1, loss=LOSS)
    x = np.zeros((16, *n_inputs), np.float32)
    y = np.zeros((16,), np.int32)
    train, val = data_for((x, y), None, training)
    return Engine(model, train, val, run_dir=run_dir, training=TrainingSpec.checked(training)).prepare("test", {})


CASES = {"zoo": (zoo_lenet, (28, 28, 1)), "hand_built": (hand_built, (64,))}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("as_factory", [True, False], ids=["factory", "model"])
def test_fresh_weights_are_new_draws_of_the_same_distributions(case, as_factory, tmp_path):
    build, shape = CASES[case]
    engine = engine_for(build if as_factory else build(), str(tmp_path / "run"), shape)
    theta0 = engine.init_weights
    fresh = engine.fresh_weights(123)
    assert sorted(fresh) == sorted(theta0)
    kernels = [k for k, v in theta0.items() if v.ndim >= 2]
    assert len(kernels) == 3
    for key in kernels:
        new, old = fresh[key], theta0[key]
        assert new.shape == old.shape and new.dtype == old.dtype
        assert not np.allclose(new, old), f"{key}: the same weights were drawn again"
        # same initializer class and parameters: same spread (Glorot / He normal, Glorot uniform)
        assert new.std() == pytest.approx(old.std(), rel=0.1), key
        assert abs(new.mean()) < 0.1 * old.std() + 3 * old.std() / np.sqrt(old.size), key
        assert np.abs(new).max() <= 2.5 * old.std(), key  # truncated at 2 stddevs / uniform: 1.73 stds
    for key in set(theta0) - set(kernels):  # biases: constants stay constants, seeded draws are redrawn
        if np.all(theta0[key] == 0):
            assert np.all(fresh[key] == 0), key
        else:
            assert not np.allclose(fresh[key], theta0[key]), key
            assert np.abs(fresh[key]).max() <= 0.1 and fresh[key].std() == pytest.approx(theta0[key].std(), rel=0.35)
    # deterministic for the same seed, different for another
    again = engine.fresh_weights(123)
    assert all(np.array_equal(again[k], fresh[k]) for k in fresh)
    other = engine.fresh_weights(124)
    assert all(not np.allclose(other[k], fresh[k]) for k in kernels)
    # the working model is untouched
    assert all(np.array_equal(v, theta0[k]) for k, v in engine.weights(masked=False).items())


def test_sanity_reinit_on_a_zoo_model_redraws_without_warning(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, 32).astype("int32")
    run_dir = tmp_path / "sanity"
    training = TrainingSpec(epochs=1, batch_size=16, seed=5, loss=LOSS)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = lottery.sanity_checks(zoo_lenet, (x, y), method="magnitude", sparsity=0.5, run_dir=str(run_dir),
                                        variants=["reinit"], train_dense=False, training=training)
    reinit_warnings = [str(w.message) for w in caught if "reinit" in str(w.message)]
    assert reinit_warnings == []
    assert [r.name for r in results] == ["reinit"]
    theta0 = load_npz(run_dir / "init_weights.npz")
    start = load_npz(run_dir / "reinit" / "rewind_weights.npz")
    masks = lottery.load_ticket(run_dir / "reinit" / "mask.npz").masks
    assert sorted(masks) == ["fc1", "fc2", "output"]
    for name, mask in masks.items():
        kept = mask == 1
        new, old = start[f"{name}::0"], theta0[f"{name}::0"]
        assert np.all(new[~kept] == 0)
        assert not np.allclose(new[kept], old[kept]), name
        assert new[kept].std() == pytest.approx(old.std(), rel=0.1), name  # magnitude kept θ0's largest


# ----------------------------------------------------------------------------------------------
# the Keras seam: every seeded initializer, at any depth, re-seeded; nothing else changed
# ----------------------------------------------------------------------------------------------

def seeded(cls, seed, **kw):
    return cls(seed=seed, **kw)


def many_layers():
    """Seeded initializers in all the usual places (also nested in Bidirectional), unseeded and
    constant ones, and a layer seed that is not an initializer's (Dropout)."""
    i = keras.initializers
    inputs = keras.Input((6, 6, 2), name="input")
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv", kernel_initializer=seeded(i.HeNormal, 1),
                            bias_initializer=seeded(i.RandomNormal, 1, stddev=0.05))(inputs)
    x = keras.layers.BatchNormalization(name="bn", gamma_initializer=seeded(i.RandomNormal, 1, mean=1.0, stddev=0.02),
                                        beta_initializer=seeded(i.RandomUniform, 1, minval=-0.01, maxval=0.01))(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise",
                                     depthwise_initializer=seeded(i.GlorotUniform, 1))(x)
    x = keras.layers.SeparableConv2D(4, 3, padding="same", name="separable",
                                     depthwise_initializer=seeded(i.GlorotNormal, 1),
                                     pointwise_initializer=seeded(i.GlorotNormal, 1))(x)
    x = keras.layers.PReLU(name="prelu", alpha_initializer=seeded(i.RandomUniform, 1, minval=0.1, maxval=0.3))(x)
    x = keras.layers.Dropout(0.1, seed=9, name="dropout")(x)
    x = keras.layers.Reshape((36, 4), name="reshape")(x)
    x = keras.layers.Bidirectional(keras.layers.LSTM(5, kernel_initializer=seeded(i.GlorotUniform, 1),
                                                     recurrent_initializer=seeded(i.Orthogonal, 1)), name="bilstm")(x)
    x = keras.layers.Dense(8, name="unseeded")(x)  # glorot_uniform without a seed, zeros bias
    tokens = keras.Input((5,), dtype="int32", name="tokens")
    e = keras.layers.Embedding(20, 8, name="embed", embeddings_initializer=seeded(i.RandomUniform, 1))(tokens)
    e = keras.layers.GlobalAveragePooling1D(name="pool")(e)
    out = keras.layers.Dense(3, name="output", kernel_initializer=seeded(i.GlorotNormal, 1))(
        keras.layers.Concatenate(name="concat")([x, e]))
    return keras.Model([inputs, tokens], out)


def initializer_seeds(config, path=""):
    """{path: seed} of every initializer-like dict in a layer config."""
    out = {}
    if isinstance(config, dict):
        if isinstance(config.get("config"), dict) and "seed" in config["config"] and "class_name" in config:
            out[path] = config["config"]["seed"]
        for key, value in config.items():
            out.update(initializer_seeds(value, f"{path}/{key}"))
    elif isinstance(config, (list, tuple)):
        for n, value in enumerate(config):
            out.update(initializer_seeds(value, f"{path}/{n}"))
    return out


def without_seeds(config):
    if isinstance(config, dict):
        return {k: (None if k == "seed" else without_seeds(v)) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [without_seeds(v) for v in config]
    return config


def test_reseeded_clone_reseeds_every_seeded_initializer_and_nothing_else():
    from tfprune import _keras

    model = many_layers()
    clone = _keras.reseeded_clone(model, 7)
    assert [l.name for l in clone.layers] == [l.name for l in model.layers]
    redrawn = set()
    for old, new in zip(model.layers, clone.layers):
        assert type(new) is type(old)
        old_config, new_config = old.get_config(), new.get_config()
        assert without_seeds(new_config) == without_seeds(old_config), old.name  # same classes and parameters
        old_seeds, new_seeds = initializer_seeds(old_config), initializer_seeds(new_config)
        assert old_seeds.keys() == new_seeds.keys()
        for where, seed in old_seeds.items():
            if seed is None:
                assert new_seeds[where] is None, (old.name, where)
            elif where.endswith("initializer"):
                assert new_seeds[where] not in (None, seed), (old.name, where)
        if old.name == "dropout":
            assert new_config["seed"] == 9  # not an initializer: untouched
        for w_old, w_new in zip(old.weights, new.weights):
            a, b = w_old.numpy(), w_new.numpy()
            assert a.shape == b.shape
            if np.unique(a).size <= 2:  # zeros/ones (LSTM: unit forget bias), moving statistics: constants
                assert np.array_equal(a, b), w_old.name
            else:
                assert not np.allclose(a, b), w_old.name
                redrawn.add(w_old.name.split("/")[0])
    assert redrawn >= {"conv", "bn", "depthwise", "separable", "prelu", "bilstm", "unseeded", "embed", "output"}
    # a function of the seed alone
    again = _keras.reseeded_clone(many_layers(), 7)
    assert all(np.array_equal(a, b) for a, b in zip(clone.get_weights(), again.get_weights()))


def test_reseeded_clone_of_a_wrapped_model():
    import tfprune
    from tfprune import _keras

    model = tfprune.apply_masks(hand_built(), {})
    clone = _keras.reseeded_clone(model, 1)
    kernels, new_kernels = _keras.prunable_kernels(model), _keras.prunable_kernels(clone)
    assert list(new_kernels) == ["hidden", "he", "free"]
    for name in kernels:  # the seeded initializers nested in the wrappers' configs too
        assert not np.allclose(kernels[name].numpy(), new_kernels[name].numpy()), name
