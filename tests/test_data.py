"""Tests of tfprune.experiment.data: shapes, dtypes, determinism, balanced batches, errors."""
import os  # noqa: F401

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from tfprune.experiment import data  # noqa: E402

needs_fashion = pytest.mark.skipif(
    not data.fashion_mnist_available(),
    reason=f"Fashion-MNIST files missing; install with `{data.FASHION_MNIST_INSTALL_HINT}`")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    """Any attempt by tf_keras to download data fails the test."""
    from tf_keras.src.utils import data_utils

    def forbidden(*args, **kwargs):
        raise AssertionError(f"tried to download {args[:1]}")

    monkeypatch.setattr(data_utils, "urlretrieve", forbidden)


def first_batches(dataset, n=2):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(n)]


def check_arrays(ds, input_shape, num_classes):
    assert ds.input_shape == input_shape
    assert ds.num_classes == num_classes
    for x, y, n in ((ds.x_train, ds.y_train, ds.num_train), (ds.x_test, ds.y_test, ds.num_test)):
        assert x.shape == (n,) + input_shape and x.dtype == np.float32
        assert y.shape == (n,) and y.dtype == np.int32
        assert 0.0 <= x.min() and x.max() <= 1.0
        assert y.min() >= 0 and y.max() < num_classes
    xb, yb = next(iter(ds.train))
    assert xb.dtype == tf.float32 and yb.dtype == tf.int32
    assert tuple(xb.shape) == (min(ds.batch_size, ds.num_train),) + input_shape
    (a, b), (c, d) = ds.arrays()
    assert a is ds.x_train and b is ds.y_train and c is ds.x_test and d is ds.y_test


# ---------------------------------------------------------------- registry
def test_names_and_registry():
    assert data.names() == ("digits", "fashion_mnist", "mnist5k", "synthetic")
    assert set(data.DATASETS) == set(data.names())


# ---------------------------------------------------------------- small datasets
def test_mnist5k_shapes_and_split():
    ds = data.load("mnist5k", batch_size=100)
    check_arrays(ds, (28, 28, 1), 10)
    assert (ds.num_train, ds.num_test) == (4000, 1000)
    assert (np.bincount(ds.y_train) == 400).all() and (np.bincount(ds.y_test) == 100).all()
    assert ds.steps_per_epoch == 40
    # the split is fixed: it does not depend on the shuffle seed
    other = data.load("mnist5k", batch_size=100, seed=7)
    np.testing.assert_array_equal(ds.y_test, other.y_test)
    np.testing.assert_array_equal(ds.x_train, other.x_train)


def test_digits_shapes():
    ds = data.load("digits", batch_size=64)
    check_arrays(ds, (8, 8, 1), 10)
    assert ds.num_train + ds.num_test == 1797
    assert ds.num_test == 359
    assert len(np.unique(ds.y_test)) == 10


def test_max_train_keeps_classes_mixed():
    ds = data.load("mnist5k", max_train=100, max_test=50)
    assert (ds.num_train, ds.num_test) == (100, 50)
    assert len(np.unique(ds.y_train)) == 10  # the source is sorted by label; ours is not


def test_synthetic_any_shape():
    ds = data.load("synthetic", batch_size=16, input_shape=(32, 32, 3), num_classes=7,
                   num_train=40, num_test=20)
    check_arrays(ds, (32, 32, 3), 7)
    assert (ds.num_train, ds.num_test) == (40, 20)
    again = data.load("synthetic", batch_size=16, input_shape=(32, 32, 3), num_classes=7,
                      num_train=40, num_test=20)
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    other = data.load("synthetic", input_shape=(32, 32, 3), num_classes=7,
                      num_train=40, num_test=20, data_seed=1)
    assert not np.array_equal(ds.x_train, other.x_train)


def test_synthetic_is_learnable():
    ds = data.load("synthetic", batch_size=32, seed=0, input_shape=(8, 8, 1),
                   num_classes=4, num_train=512, num_test=256)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input(ds.input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(ds.num_classes)])
    model.compile(keras.optimizers.Adam(0.05),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(ds.train, epochs=8, verbose=0)
    _, acc = model.evaluate(ds.test, verbose=0)
    chance = np.bincount(ds.y_test).max() / ds.num_test
    assert acc > chance + 0.25, (acc, chance)


# ---------------------------------------------------------------- determinism
def test_same_seed_same_order_every_epoch():
    a = data.load("digits", batch_size=50, seed=3)
    b = data.load("digits", batch_size=50, seed=3)
    for _epoch in range(2):  # reshuffled each epoch, identically for both
        for (xa, ya), (xb, yb) in zip(first_batches(a.train), first_batches(b.train)):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    e1 = first_batches(a.train, 1)[0][1]
    e2 = first_batches(a.train, 1)[0][1]
    assert not np.array_equal(e1, e2)


def test_different_seed_different_order():
    a = first_batches(data.load("digits", batch_size=50, seed=0).train, 1)[0][1]
    b = first_batches(data.load("digits", batch_size=50, seed=1).train, 1)[0][1]
    assert not np.array_equal(a, b)


def test_train_is_a_permutation_and_test_is_ordered():
    ds = data.load("digits", batch_size=128, seed=5, prefetch=False)
    ys = np.concatenate([y.numpy() for _, y in ds.train])
    assert len(ys) == ds.num_train
    assert (np.bincount(ys, minlength=10) == np.bincount(ds.y_train, minlength=10)).all()
    assert not np.array_equal(ys, ds.y_train)
    yt = np.concatenate([y.numpy() for _, y in ds.test])
    np.testing.assert_array_equal(yt, ds.y_test)


def test_drop_remainder():
    ds = data.load("digits", batch_size=100, drop_remainder=True)
    sizes = [int(x.shape[0]) for x, _ in ds.train]
    assert sizes == [100] * (ds.num_train // 100)


# ---------------------------------------------------------------- balanced batch
def test_balanced_batch_counts_and_seed():
    ds = data.load("mnist5k")
    x, y = data.balanced_batch(ds.x_train, ds.y_train, per_class=10, seed=0)
    assert x.shape == (100, 28, 28, 1) and y.shape == (100,)
    assert (np.bincount(y) == 10).all()
    assert (np.diff(y) >= 0).all()  # grouped by class
    x2, y2 = ds.balanced_batch(per_class=10, seed=0)
    np.testing.assert_array_equal(x, x2)
    x3, _ = data.balanced_batch(ds.x_train, ds.y_train, per_class=10, seed=1)
    assert not np.array_equal(x, x3)
    xt, yt = ds.balanced_batch(per_class=3, split="test")
    assert xt.shape[0] == 30 and (np.bincount(yt) == 3).all()


def test_balanced_batch_errors():
    x = np.zeros((6, 2), np.float32)
    y = np.array([0, 0, 0, 1, 1, 2])
    with pytest.raises(ValueError, match=r"class 2 has only 1 examples.*per_class=2"):
        data.balanced_batch(x, y, per_class=2)
    with pytest.raises(ValueError, match=r"class 3 has only 0"):
        data.balanced_batch(x, y, per_class=1, num_classes=4)
    with pytest.raises(ValueError, match="per_class"):
        data.balanced_batch(x, y, per_class=0)
    with pytest.raises(ValueError, match="same length"):
        data.balanced_batch(x[:5], y, per_class=1)
    xb, yb = data.balanced_batch(x, y.reshape(-1, 1), per_class=1)
    assert yb.tolist() == [0, 1, 2]


# ---------------------------------------------------------------- errors
def test_unknown_name_lists_allowed_values():
    with pytest.raises(ValueError, match=r"name='cifar10'.*digits, fashion_mnist, mnist5k, synthetic"):
        data.load("cifar10")


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(batch_size=0), ValueError, r"batch_size must be >= 1, got batch_size=0"),
    (dict(batch_size=-5), ValueError, r"batch_size=-5"),
    (dict(batch_size=2.5), TypeError, r"batch_size must be an int"),
    (dict(seed=-1), ValueError, r"seed must be >= 0"),
    (dict(max_train=0), ValueError, r"max_train"),
    (dict(colour=True), TypeError, r"unknown option\(s\) colour; allowed options: none"),
])
def test_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        data.load("digits", **kwargs)


def test_bad_synthetic_options():
    with pytest.raises(ValueError, match=r"num_classes must be >= 2"):
        data.load("synthetic", num_classes=1)
    with pytest.raises(ValueError, match=r"input_shape"):
        data.load("synthetic", input_shape=(0, 4))
    with pytest.raises(TypeError, match=r"unknown option\(s\) classes; allowed options: input_shape"):
        data.load("synthetic", classes=3)


def test_fashion_mnist_missing_files_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TFPRUNE_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    assert not data.fashion_mnist_available()
    with pytest.raises(FileNotFoundError, match="sudo apt-get install dataset-fashion-mnist"):
        data.load("fashion_mnist")


# ---------------------------------------------------------------- Fashion-MNIST
@pytest.mark.data
@needs_fashion
def test_fashion_mnist_full():
    ds = data.load("fashion_mnist", batch_size=256)
    check_arrays(ds, (28, 28, 1), 10)
    assert (ds.num_train, ds.num_test) == (60000, 10000)
    assert (np.bincount(ds.y_train) == 6000).all() and (np.bincount(ds.y_test) == 1000).all()
    assert ds.class_names[9] == "Ankle boot"
    assert 0.2 < float(ds.x_test.mean()) < 0.4


@pytest.mark.data
@needs_fashion
def test_fashion_mnist_linked_into_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert data.keras_cache_dir() == str(tmp_path)
    ds = data.load("fashion_mnist", batch_size=32, seed=0, max_train=500, max_test=100)
    assert (ds.num_train, ds.num_test) == (500, 100)
    folder = tmp_path / "datasets" / "fashion-mnist"
    assert sorted(os.listdir(folder)) == sorted(data.FASHION_MNIST_FILES)
    for f in data.FASHION_MNIST_FILES:
        assert os.path.getsize(folder / f) == os.path.getsize(
            os.path.join(data.fashion_mnist_source_dir(), f))
    # same seed -> same batches; different seed -> different
    a = first_batches(ds.train, 1)[0][1]
    b = first_batches(data.load("fashion_mnist", batch_size=32, seed=0,
                                max_train=500, max_test=100).train, 1)[0][1]
    c = first_batches(data.load("fashion_mnist", batch_size=32, seed=1,
                                max_train=500, max_test=100).train, 1)[0][1]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    xb, yb = ds.balanced_batch(per_class=10)
    assert xb.shape == (100, 28, 28, 1) and (np.bincount(yb) == 10).all()


@pytest.mark.parametrize("name, kwargs", [("digits", {}), ("mnist5k", {"max_train": 1000}), ("synthetic", {}),
                                          ("synthetic", {"num_train": 100, "max_train": 64})])
def test_steps_per_epoch_is_known_before_loading(name, kwargs):
    assert data.steps_per_epoch(name, 32, **kwargs) == data.load(name, batch_size=32, **kwargs).steps_per_epoch
