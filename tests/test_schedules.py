"""Schedules: config round trips, and use with TF-MOT's own magnitude wrapper."""
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_model_optimization as tfmot

import tfprune
from tfprune._keras import keras


@pytest.mark.parametrize("schedule", [tfprune.FixedMask(0.9), tfprune.OneShot(0.8, step=5),
                                      tfprune.Iterative(steps=[2, 4, 6], sparsities=[0.5, 0.7, 0.9])])
def test_get_config_from_config_round_trip(schedule):
    config = schedule.get_config()
    assert config["class_name"] == type(schedule).__name__
    again = type(schedule).from_config(config["config"])
    assert again == schedule
    for step in range(1, 8):
        a, b = schedule(tf.constant(step, tf.int64)), again(tf.constant(step, tf.int64))
        assert bool(a[0]) == bool(b[0]) and float(a[1]) == float(b[1])


def test_iterative_says_when_and_how_much():
    schedule = tfprune.Iterative(steps=[2, 4], sparsities=[0.5, 0.75])
    calls = [(bool(p), round(float(s), 4)) for p, s in (schedule(tf.constant(i, tf.int64)) for i in range(1, 6))]
    assert [p for p, _ in calls] == [False, True, False, True, False]
    assert calls[1][1] == 0.5 and calls[3][1] == 0.75
    assert not bool(tfprune.FixedMask()(tf.constant(1, tf.int64))[0])


@pytest.mark.parametrize("kwargs, match", [
    (dict(steps=[], sparsities=[]), "steps/sparsities"),
    (dict(steps=[3, 2], sparsities=[0.1, 0.2]), "strictly increasing"),
    (dict(steps=[0], sparsities=[0.1]), "steps"),
    (dict(steps=[1, 2], sparsities=[0.5, 0.4]), "non-decreasing"),
])
def test_iterative_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tfprune.Iterative(**kwargs)


def test_fixed_mask_rejects_bad_sparsity():
    with pytest.raises(ValueError, match="sparsity: got 1.5"):
        tfprune.FixedMask(1.5)


def test_one_shot_with_tfmot_prune_low_magnitude_prunes_once_and_holds():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(20, name="a"), keras.layers.Dense(2, name="b")])
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=tfprune.OneShot(0.75, step=3))
    pruned.compile("sgd", "mse")
    x, y = np.random.rand(32, 10).astype("float32"), np.random.rand(32, 2).astype("float32")
    pruned.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=tfprune.callbacks())  # steps 1, 2
    assert tfprune.get_masks(pruned)["a"].mean() == 1.0
    pruned.fit(x, y, batch_size=16, epochs=1, verbose=0, callbacks=tfprune.callbacks())  # steps 3, 4
    first = tfprune.get_masks(pruned)
    assert abs(first["a"].mean() - 0.25) < 0.01
    pruned.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=tfprune.callbacks())
    for name, mask in tfprune.get_masks(pruned).items():
        np.testing.assert_array_equal(first[name], mask)


def test_model_with_tfmot_wrapper_and_our_schedule_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(4, name="a")])
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=tfprune.Iterative([1, 2], [0.5, 0.6]))
    path = str(tmp_path / "m.h5")
    pruned.save(path)
    loaded = tfprune.load_model(path)
    assert loaded.layers[0].pruning_schedule == tfprune.Iterative([1, 2], [0.5, 0.6])


@pytest.mark.parametrize("make, match", [
    (lambda: tfprune.FixedMask("abc"), r"^sparsity: expected a number in \[0, 1\), got 'abc'\.$"),
    (lambda: tfprune.OneShot(0.5, step=1.5), r"^steps: got 1\.5; allowed: an integer >= 1\.$"),
    (lambda: tfprune.OneShot(0.5, step="x"), r"^steps: got 'x'; allowed: an integer >= 1\.$"),
    (lambda: tfprune.Iterative(steps=[1, 2], sparsities=[0.5, "high"]),
     r"^sparsities: expected a number in \[0, 1\), got 'high'\.$"),
])
def test_schedule_arguments_of_the_wrong_type_are_one_line_errors(make, match):
    with pytest.raises((TypeError, ValueError), match=match):
        make()
