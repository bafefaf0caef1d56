"""Tests of tfprune.experiment.models: shapes, parameter counts, seeding, names, errors."""
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from tfprune.experiment import models  # noqa: E402

SHAPES = [(28, 28, 1), (32, 32, 3)]


def weights_of(model):
    return [w.copy() for w in model.get_weights()]


def test_registry():
    assert models.names() == ("conv2", "conv4", "conv6", "lenet_300_100", "resnet20",
                              "vgg16_bn", "vgg_small")
    assert set(models.MODELS) == set(models.names())


@pytest.mark.parametrize("shape", SHAPES, ids=["28x28x1", "32x32x3"])
@pytest.mark.parametrize("name", models.names())
def test_builds_and_forward(name, shape):
    model = models.build(name, shape, 10, seed=0)
    assert isinstance(model, keras.Model) and not isinstance(model, keras.Sequential)
    assert model.name == name
    assert model.layers[0].name == "input"
    out = model.layers[-1]
    assert isinstance(out, keras.layers.Dense) and out.name == models.OUTPUT_LAYER
    assert out.activation is keras.activations.linear  # logits by default
    x = np.random.default_rng(0).random((3,) + shape, dtype=np.float32)
    y = model(x, training=False)
    assert tuple(y.shape) == (3, 10)
    assert np.isfinite(y.numpy()).all()
    # unique, stable layer names
    layer_names = [l.name for l in model.layers]
    assert len(set(layer_names)) == len(layer_names)


def test_parameter_counts():
    assert models.lenet_300_100((28, 28, 1), 10).count_params() == 266_610
    assert models.lenet_300_100((784,), 10).count_params() == 266_610
    assert models.conv2((32, 32, 3), 10).count_params() == 4_301_642
    assert models.conv4((32, 32, 3), 10).count_params() == 2_425_930
    assert models.conv6((32, 32, 3), 10).count_params() == 2_262_602
    assert models.resnet20((32, 32, 3), 10).count_params() == 274_042


def test_vgg16_bn_is_the_synflow_papers_network():
    """13 convolutions (64x2, 128x2, 256x3, 512x3, 512x3), 14,715,584 kernel weights on CIFAR-10
    shapes, and untruncated N(0, 2/fan_in) kernels: some exceed the 2-sigma cut of HeNormal."""
    model = models.vgg16_bn((32, 32, 3), 10, seed=0)
    kernels = [l.kernel.numpy() for l in model.layers if hasattr(l, "kernel")]
    assert [k.shape[-1] for k in kernels] == [64, 64, 128, 128, 256, 256, 256] + [512] * 6 + [10]
    assert sum(k.size for k in kernels) == 14_715_584
    big = kernels[-2]                                   # 3x3x512x512, fan_in 4,608
    sigma = np.sqrt(2.0 / (3 * 3 * 512))
    assert abs(big.std() / sigma - 1) < 0.01
    assert np.abs(big).max() > 3 * sigma                # a truncated normal stops at 2 sigma
    with pytest.raises(ValueError, match=r"vgg16_bn: input_shape=\(8, 8, 1\) is too small for 4 2x2 max-pools"):
        models.vgg16_bn((8, 8, 1), 10)


def test_layer_names():
    m = models.lenet_300_100((28, 28, 1), 10)
    assert [l.name for l in m.layers] == ["input", "flatten", "fc1", "fc2", "output"]
    assert m.get_layer("fc1").units == 300 and m.get_layer("fc2").units == 100
    m = models.conv6((32, 32, 3), 10)
    assert [l.name for l in m.layers if isinstance(l, keras.layers.Conv2D)] == [
        f"conv{i}" for i in range(1, 7)]
    assert [m.get_layer(f"conv{i}").filters for i in range(1, 7)] == [64, 64, 128, 128, 256, 256]
    assert m.get_layer("fc1").units == 256 and m.get_layer("fc2").units == 256
    assert m.get_layer("conv1").kernel_size == (3, 3)
    r = models.resnet20((32, 32, 3), 10)
    convs = [l for l in r.layers if isinstance(l, keras.layers.Conv2D)]
    assert len([c for c in convs if "shortcut" not in c.name]) == 19  # + fc = 20 layers
    shortcuts = sorted(c.name for c in convs if "shortcut" in c.name)
    assert shortcuts == ["stage2_block1_shortcut_conv", "stage3_block1_shortcut_conv"]
    assert r.get_layer("stage3_block3_conv2").filters == 64
    assert tuple(r.get_layer("gap").input_shape[1:3]) == (8, 8)
    assert sum(isinstance(l, keras.layers.BatchNormalization) for l in r.layers) == 21


@pytest.mark.parametrize("name", ["lenet_300_100", "conv2", "vgg_small", "resnet20"])
def test_same_seed_same_weights(name):
    a = weights_of(models.build(name, (28, 28, 1), 10, seed=5))
    b = weights_of(models.build(name, (28, 28, 1), 10, seed=5))
    c = weights_of(models.build(name, (28, 28, 1), 10, seed=6))
    assert len(a) == len(b) == len(c)
    for wa, wb in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    random_kernels = [i for i, w in enumerate(a) if w.ndim >= 2]
    assert random_kernels
    assert all(not np.array_equal(a[i], c[i]) for i in random_kernels)


def test_layers_have_distinct_initial_values():
    # two layers of identical shape must not share initial values
    r = models.resnet20((28, 28, 1), 10, seed=0)
    k1 = r.get_layer("stage1_block1_conv1").kernel.numpy()
    k2 = r.get_layer("stage1_block1_conv2").kernel.numpy()
    assert k1.shape == k2.shape and not np.allclose(k1, k2)
    m = models.conv4((28, 28, 1), 10, seed=0)
    f = m.get_layer("fc2").kernel.numpy()
    assert 0.5 < f.std() * np.sqrt((256 + 256) / 2) < 1.5  # Glorot normal scale


def test_building_does_not_touch_global_seed():
    tf.random.set_seed(123)
    before = tf.random.uniform([4]).numpy()
    tf.random.set_seed(123)
    models.resnet20((32, 32, 3), 10, seed=0)
    after = tf.random.uniform([4]).numpy()
    np.testing.assert_array_equal(before, after)


def test_softmax_and_width_options():
    m = models.build("conv2", (28, 28, 1), 5, seed=0, softmax=True, width=0.25)
    assert m.get_layer("output").activation is keras.activations.softmax
    assert m.get_layer("conv1").filters == 16 and m.get_layer("fc1").units == 64
    p = m(np.zeros((2, 28, 28, 1), np.float32)).numpy()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
    r = models.build("resnet20", (32, 32, 3), 10, width=2)
    assert r.get_layer("stage3_block1_conv1").filters == 128


def test_small_inputs():
    assert models.conv6((8, 8, 1), 10).output_shape == (None, 10)
    assert models.resnet20((8, 8, 1), 10).output_shape == (None, 10)
    assert models.vgg_small((8, 8, 1), 10).output_shape == (None, 10)
    with pytest.raises(ValueError, match=r"conv6: input_shape=\(4, 4, 1\) is too small"):
        models.conv6((4, 4, 1), 10)


def test_trains_one_step():
    m = models.build("lenet_300_100", (8, 8, 1), 4, seed=0, width=0.1)
    m.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).random((16, 8, 8, 1), dtype=np.float32)
    y = np.arange(16) % 4
    loss = m.train_on_batch(x, y)
    assert np.isfinite(loss)


@pytest.mark.parametrize("call, exc, pattern", [
    (lambda: models.build("alexnet", (28, 28, 1), 10), ValueError,
     r"unknown model name='alexnet'; allowed values: conv2, conv4, conv6, lenet_300_100"),
    (lambda: models.build("conv2", (28, 28, 1), 10, dropout=0.5), TypeError,
     r"unknown option\(s\) dropout; allowed options: width, softmax"),
    (lambda: models.build("conv2", (28, 28), 10), ValueError,
     r"conv2: input_shape must have 3 dims"),
    (lambda: models.build("conv4", (28, 28, 1), 1), ValueError,
     r"conv4: num_classes must be >= 2, got num_classes=1"),
    (lambda: models.build("resnet20", (28, 28, 1), 10, seed=-1), ValueError,
     r"resnet20: seed must be >= 0"),
    (lambda: models.build("vgg_small", (28, 28, 1), 10, width=0), ValueError,
     r"vgg_small: width must be a positive number, got width=0"),
    (lambda: models.build("lenet_300_100", (28, 0, 1), 10), ValueError,
     r"input_shape must be a non-empty tuple of positive ints"),
    (lambda: models.build("lenet_300_100", (28, 28, 1), 10.0), TypeError,
     r"num_classes must be an int"),
])
def test_errors(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


@pytest.mark.parametrize("name", ["lenet_300_100", "resnet20"])
def test_tfmot_can_wrap(name):
    tfmot = pytest.importorskip("tensorflow_model_optimization")
    model = models.build(name, (28, 28, 1), 10, seed=0)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model)
    assert pruned(np.zeros((2, 28, 28, 1), np.float32)).shape == (2, 10)
    assert any(type(l).__name__ == "PruneLowMagnitude" for l in pruned.layers)
