"""Model zoo: seeded Functional models for pruning experiments, in tf_keras (Keras 2) or Keras 3.

All builders share one signature, ``builder(input_shape, num_classes, seed=0,
*, width=1.0, softmax=False, keras=None)``, and return an uncompiled Functional
model (never subclassed, so TF-MOT can wrap every layer) of the Keras module
``keras`` they are given: tf_keras when it is None (the default), or Keras 3
(``import keras``, on whatever backend the process runs). One zoo, both
Kerases: the same layers, names, shapes and initializer families; the
harness passes the run's module (:mod:`tfprune.experiment.flavor`).

=================  ===============================================================
name               architecture
=================  ===============================================================
``lenet_300_100``  Flatten -> fc1 300 relu -> fc2 100 relu -> output
``conv2``          [conv 64]x2, pool -> fc1 256 -> fc2 256 -> output
``conv4``          [conv 64]x2, pool, [conv 128]x2, pool -> fc 256-256 -> output
``conv6``          conv4 + [conv 256]x2, pool -> fc 256-256 -> output
``vgg_small``      VGG-style [conv-BN-relu]x2 per stage, widths 32/64/128, max-pool,
                   global average pool -> output
``vgg16_bn``       VGG-16 with BatchNorm as in OpenLTH / SynFlow's CIFAR code: 13 [conv-BN-relu]
                   (64x2, 128x2, 256x3, 512x3, 512x3), max-pool after the first four
                   stages, global average pool -> output; untruncated Kaiming normal
``resnet20``       CIFAR ResNet-20 (He et al. 2016): conv 16, 3 stages x 3 basic
                   blocks (16/32/64), BN, 1x1-conv shortcut (option B) when the
                   shape changes, global average pool -> output
=================  ===============================================================

Conventions:

* The last layer is always a ``Dense`` named ``"output"`` (:data:`OUTPUT_LAYER`)
  producing **logits** by default; ``softmax=True`` gives it a softmax
  activation instead.  Train logits with
  ``SparseCategoricalCrossentropy(from_logits=True)``.
* Layer names are stable and readable: ``conv1``, ``pool1``, ``fc1``, ...;
  ResNet blocks are ``stage{s}_block{b}_{conv1,bn1,conv2,bn2,shortcut_conv,
  shortcut_bn,add,out}``.  The input layer is named ``"input"`` and the model
  is named after its registry name.
* Seeding: every layer with random initial weights gets its **own seeded
  initializer instance** whose seed is derived from ``(seed, layer name)``.
  Builders never call ``tf.random.set_seed`` / ``tf_keras.utils.set_random_seed``,
  so building a model does not disturb the global random state (e.g. the
  shuffle order of :mod:`tfprune.experiment.data`).  Same ``seed`` -> identical initial
  weights, in any process of the same Keras and backend (each Keras 3 backend draws its
  own numbers from a seed); different ``seed`` -> different weights.  Biases,
  BatchNorm gammas/betas start at their usual constants (0 / 1).
* Initializers: Glorot normal for ``lenet_300_100`` and ``conv2/4/6`` (the
  "Gaussian Glorot" initialization of Frankle & Carbin 2019), He normal for
  ``vgg_small`` and ``resnet20``.  No weight decay or dropout is built in; add
  regularization in the training code.

Relation to the Lottery Ticket paper (Frankle & Carbin 2019, Fig. 2): Conv-2/4/6 use 3x3
``"same"`` convolutions, ReLU and 2x2 max-pool after each pair, then FC 256-256-classes. On
32x32x3 with 10 classes they have 4,301,642 / 2,425,930 / 2,262,602 parameters (Conv-2 and
Conv-4 match the paper's ~4.3M / ~2.4M; Conv-6 follows the described layers). On 28x28x1 the
pooled maps are 14 -> 7 -> 3 pixels wide, so FC1's fan-in differs from CIFAR's. ``width`` scales
every conv and hidden FC width (the paper's width experiments scale the convolutions only).

Example::

    from tfprune.experiment import models
    model = models.build("conv4", (32, 32, 3), 10, seed=0)
    model.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    import keras                                     # Keras 3, on this process's backend
    model = models.build("conv4", (32, 32, 3), 10, seed=0, keras=keras)
"""

from __future__ import annotations

import zlib
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np



def _keras_module(keras):
    """The Keras module to build with: ``keras`` (tf_keras or Keras 3), or tf_keras through the
    seam when it is None (imported on first use: the zoo's names, ``--model`` and ``--help``,
    need no TensorFlow)."""
    if keras is None:
        from tfprune._keras import keras as tf_keras

        return tf_keras
    if not all(hasattr(keras, attr) for attr in ("Model", "Input", "layers", "initializers")):
        raise TypeError(f"keras: expected a Keras module (tf_keras, or keras for Keras 3), got {keras!r}.")
    return keras

__all__ = [
    "MODELS",
    "OUTPUT_LAYER",
    "names",
    "build",
    "lenet_300_100",
    "conv2",
    "conv4",
    "conv6",
    "vgg_small",
    "vgg16_bn",
    "resnet20",
]

#: Name of the final Dense layer of every zoo model.
OUTPUT_LAYER = "output"


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------
def _layer_seed(seed: int, name: str) -> int:
    """A 31-bit seed derived from the model seed and a layer name."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(name.encode("utf-8"))])
    return int(state.generate_state(1, dtype=np.uint32)[0] & 0x7FFFFFFF)


class _Init:
    """Makes a fresh, seeded initializer instance per layer name."""

    _KINDS = {"glorot_normal": "GlorotNormal", "glorot_uniform": "GlorotUniform", "he_normal": "HeNormal"}

    def __init__(self, seed: int, kind: str, keras):
        self.seed = seed
        if kind == "kaiming_normal":  # PyTorch's kaiming_normal_: N(0, 2 / fan_in), not truncated
            scaling = keras.initializers.VarianceScaling
            self.cls = lambda seed: scaling(2.0, "fan_in", "untruncated_normal", seed=seed)
        else:
            self.cls = getattr(keras.initializers, self._KINDS[kind])

    def __call__(self, name: str):
        return self.cls(seed=_layer_seed(self.seed, name))


def _check_common(input_shape, num_classes, seed, *, rank: Optional[int] = None,
                  model: str = "model") -> Tuple[Tuple[int, ...], int, int]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"{model}: input_shape must be a tuple of positive ints, "
                        f"got input_shape={input_shape!r}") from None
    if not shape or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                        for d in shape):
        raise ValueError(f"{model}: input_shape must be a non-empty tuple of positive ints, "
                         f"got input_shape={input_shape!r}")
    if rank is not None and len(shape) != rank:
        raise ValueError(f"{model}: input_shape must have {rank} dims (height, width, "
                         f"channels), got input_shape={input_shape!r}")
    for arg, value, minimum in (("num_classes", num_classes, 2), ("seed", seed, 0)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{model}: {arg} must be an int, got {arg}={value!r}")
        if value < minimum:
            raise ValueError(f"{model}: {arg} must be >= {minimum}, got {arg}={value}")
    return tuple(int(d) for d in shape), int(num_classes), int(seed)


def _check_width(width, model: str) -> float:
    if isinstance(width, bool) or not isinstance(width, (int, float, np.integer, np.floating)) \
            or not float(width) > 0:
        raise ValueError(f"{model}: width must be a positive number, got width={width!r}")
    return float(width)


def _scaled(units: int, width: float) -> int:
    return max(1, int(round(units * width)))


def _output(x, num_classes: int, init: _Init, softmax: bool, keras):
    return keras.layers.Dense(num_classes, activation="softmax" if softmax else None,
                        kernel_initializer=init(OUTPUT_LAYER), name=OUTPUT_LAYER)(x)


# --------------------------------------------------------------------------
# Builders
# --------------------------------------------------------------------------
def lenet_300_100(input_shape=(28, 28, 1), num_classes: int = 10, seed: int = 0, *,
                  width: float = 1.0, softmax: bool = False, keras=None) -> "keras.Model":
    """LeNet-300-100: Flatten -> fc1 (300, relu) -> fc2 (100, relu) -> output.

    266,610 parameters for 784 inputs and 10 classes.  Glorot-normal init.

    Args:
      input_shape: shape of one example (any rank; it is flattened).
      num_classes: number of classes (>= 2).
      seed: initialization seed.
      width: multiplier of the hidden widths (300*width, 100*width).
      softmax: softmax output instead of logits.
      keras: the Keras module to build with (None: tf_keras; ``keras`` for Keras 3).

    Example:

        >>> lenet_300_100((28, 28, 1), 10, seed=0).count_params()
        266610
    """
    name = "lenet_300_100"
    keras = _keras_module(keras)
    layers = keras.layers
    shape, num_classes, seed = _check_common(input_shape, num_classes, seed, model=name)
    width = _check_width(width, name)
    init = _Init(seed, "glorot_normal", keras)
    inputs = keras.Input(shape=shape, name="input")
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(_scaled(300, width), activation="relu", kernel_initializer=init("fc1"),
                     name="fc1")(x)
    x = layers.Dense(_scaled(100, width), activation="relu", kernel_initializer=init("fc2"),
                     name="fc2")(x)
    outputs = _output(x, num_classes, init, softmax, keras)
    return keras.Model(inputs, outputs, name=name)


def _conv_n(name: str, stages: Sequence[int], input_shape, num_classes, seed,
            width: float, softmax: bool, keras) -> "keras.Model":
    keras = _keras_module(keras)
    layers = keras.layers
    shape, num_classes, seed = _check_common(input_shape, num_classes, seed, rank=3, model=name)
    width = _check_width(width, name)
    if min(shape[0], shape[1]) < 2 ** len(stages):
        raise ValueError(f"{name}: input_shape={input_shape!r} is too small for "
                         f"{len(stages)} 2x2 max-pools (need height and width >= "
                         f"{2 ** len(stages)})")
    init = _Init(seed, "glorot_normal", keras)
    inputs = keras.Input(shape=shape, name="input")
    x = inputs
    conv = 0
    for stage, filters in enumerate(stages, start=1):
        for _ in range(2):
            conv += 1
            x = layers.Conv2D(_scaled(filters, width), 3, padding="same", activation="relu",
                              kernel_initializer=init(f"conv{conv}"), name=f"conv{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in (1, 2):
        x = layers.Dense(_scaled(256, width), activation="relu",
                         kernel_initializer=init(f"fc{i}"), name=f"fc{i}")(x)
    outputs = _output(x, num_classes, init, softmax, keras)
    return keras.Model(inputs, outputs, name=name)


def conv2(input_shape=(32, 32, 3), num_classes: int = 10, seed: int = 0, *,
          width: float = 1.0, softmax: bool = False, keras=None) -> "keras.Model":
    """Conv-2 of the Lottery Ticket paper: conv1-2 (64, 3x3), pool1, fc1-2 (256), output.

    Args:
      input_shape: ``(height, width, channels)``, at least 2x2.
      num_classes: number of classes (>= 2).
      seed: initialization seed (Glorot normal).
      width: multiplier of every conv / hidden FC width.
      softmax: softmax output instead of logits.
      keras: the Keras module to build with (None: tf_keras; ``keras`` for Keras 3).

    Example:

        >>> conv2((32, 32, 3), 10).count_params()
        4301642
    """
    return _conv_n("conv2", (64,), input_shape, num_classes, seed, width, softmax, keras)


def conv4(input_shape=(32, 32, 3), num_classes: int = 10, seed: int = 0, *,
          width: float = 1.0, softmax: bool = False, keras=None) -> "keras.Model":
    """Conv-4: conv1-2 (64), pool1, conv3-4 (128), pool2, fc1-2 (256), output.

    Arguments as for :func:`conv2`; the input must be at least 4x4.

    Example:

        >>> model = conv4((28, 28, 1), 10, seed=3)
        >>> print(model.get_layer("conv3").kernel.shape)
        (3, 3, 64, 128)
    """
    return _conv_n("conv4", (64, 128), input_shape, num_classes, seed, width, softmax, keras)


def conv6(input_shape=(32, 32, 3), num_classes: int = 10, seed: int = 0, *,
          width: float = 1.0, softmax: bool = False, keras=None) -> "keras.Model":
    """Conv-6: conv4's layers + conv5-6 (256), pool3, then fc1-2 (256), output.

    Arguments as for :func:`conv2`; the input must be at least 8x8.

    Example:

        >>> conv6((32, 32, 3), 10).count_params()
        2262602
    """
    return _conv_n("conv6", (64, 128, 256), input_shape, num_classes, seed, width, softmax, keras)


def vgg_small(input_shape=(32, 32, 3), num_classes: int = 10, seed: int = 0, *,
              width: float = 1.0, softmax: bool = False, keras=None) -> "keras.Model":
    """Small VGG with BatchNorm: 3 stages of [conv3x3-BN-relu]x2 + max-pool, GAP, output.

    Stage widths are 32, 64, 128 (times ``width``).  Layers: ``conv{i}``,
    ``bn{i}``, ``relu{i}`` for i = 1..6, ``pool1..3``, ``gap``, ``output``.
    Convs have no bias (BatchNorm follows).  He-normal init.  Works on any
    input of at least 8x8 (e.g. 28x28x1, 32x32x3).

    Example:

        >>> model = vgg_small((28, 28, 1), 10, width=0.5)
        >>> model(np.zeros((2, 28, 28, 1), "float32")).shape    # logits
        TensorShape([2, 10])
    """
    return _vgg("vgg_small", ((32, 32), (64, 64), (128, 128)), 3, "he_normal", input_shape, num_classes, seed,
                width, softmax, keras)


def vgg16_bn(input_shape=(32, 32, 3), num_classes: int = 10, seed: int = 0, *,
             width: float = 1.0, softmax: bool = False, keras=None) -> "keras.Model":
    """VGG-16 with BatchNorm, the CIFAR variant of OpenLTH and the SynFlow paper's code.

    13 [conv3x3-BN-relu] in stages of 64x2, 128x2, 256x3, 512x3, 512x3 (times ``width``), a 2x2
    max-pool after each of the first four stages, global average pool, ``output``. Convs have no
    bias (BatchNorm follows). Kernels (the output's too) start from PyTorch's ``kaiming_normal_``:
    N(0, 2 / fan_in), *not* truncated, as the SynFlow paper's layer-collapse experiments. 14,715,584
    prunable weights on 32x32x3 / 10 classes. Layer names as :func:`vgg_small` (``conv1..13``);
    needs height and width >= 16.

    Example:

        >>> vgg16_bn((32, 32, 3), 100, width=0.25).output_shape
        (None, 100)
    """
    return _vgg("vgg16_bn", ((64, 64), (128, 128), (256,) * 3, (512,) * 3, (512,) * 3), 4, "kaiming_normal",
                input_shape, num_classes, seed, width, softmax, keras)


def _vgg(name, stages, pools: int, init_kind: str, input_shape, num_classes, seed, width, softmax, keras):
    """[conv3x3-BN-relu] per stage width, a 2x2 max-pool after each of the first ``pools`` stages,
    global average pool, output."""
    keras = _keras_module(keras)
    layers = keras.layers
    shape, num_classes, seed = _check_common(input_shape, num_classes, seed, rank=3, model=name)
    width = _check_width(width, name)
    side = 2 ** pools
    if min(shape[0], shape[1]) < side:
        raise ValueError(f"{name}: input_shape={input_shape!r} is too small for {pools} "
                         f"2x2 max-pools (need height and width >= {side})")
    init = _Init(seed, init_kind, keras)
    inputs = keras.Input(shape=shape, name="input")
    x = inputs
    i = 0
    for stage, widths in enumerate(stages, start=1):
        for filters in widths:
            i += 1
            x = layers.Conv2D(_scaled(filters, width), 3, padding="same", use_bias=False,
                              kernel_initializer=init(f"conv{i}"), name=f"conv{i}")(x)
            x = layers.BatchNormalization(name=f"bn{i}")(x)
            x = layers.ReLU(name=f"relu{i}")(x)
        if stage <= pools:
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = _output(x, num_classes, init, softmax, keras)
    return keras.Model(inputs, outputs, name=name)


def _basic_block(x, filters: int, stride: int, prefix: str, init: _Init, keras):
    layers = keras.layers
    shortcut = x
    y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                      kernel_initializer=init(f"{prefix}_conv1"), name=f"{prefix}_conv1")(x)
    y = layers.BatchNormalization(name=f"{prefix}_bn1")(y)
    y = layers.ReLU(name=f"{prefix}_relu1")(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False,
                      kernel_initializer=init(f"{prefix}_conv2"), name=f"{prefix}_conv2")(y)
    y = layers.BatchNormalization(name=f"{prefix}_bn2")(y)
    if stride != 1 or int(x.shape[-1]) != filters:
        # Option B of He et al.: projection shortcut only where the shape changes.
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                 kernel_initializer=init(f"{prefix}_shortcut_conv"),
                                 name=f"{prefix}_shortcut_conv")(x)
        shortcut = layers.BatchNormalization(name=f"{prefix}_shortcut_bn")(shortcut)
    y = layers.Add(name=f"{prefix}_add")([y, shortcut])
    return layers.ReLU(name=f"{prefix}_out")(y)


def resnet20(input_shape=(32, 32, 3), num_classes: int = 10, seed: int = 0, *,
             width: float = 1.0, softmax: bool = False, keras=None) -> "keras.Model":
    """CIFAR ResNet-20 (He et al. 2016, sec. 4.2) with option-B shortcuts.

    ``conv1`` (3x3, 16) - ``bn1`` - ``relu1``, then 3 stages of 3 basic blocks
    with 16, 32, 64 filters (times ``width``); the first block of stages 2
    and 3 has stride 2 and a 1x1-conv + BN projection shortcut, every other
    shortcut is the identity.  Global average pool (``gap``) -> ``output``.
    Convs have no bias.  He-normal init.  About 0.27M parameters on
    32x32x3 / 10 classes.  Works on 28x28x1 (maps 28 -> 14 -> 7) and 32x32x3.

    Example:

        >>> model = resnet20((32, 32, 3), 10, seed=0)
        >>> model.get_layer("stage2_block1_shortcut_conv").kernel_size   # the 1x1 projection
        (1, 1)
    """
    name = "resnet20"
    keras = _keras_module(keras)
    layers = keras.layers
    shape, num_classes, seed = _check_common(input_shape, num_classes, seed, rank=3, model=name)
    width = _check_width(width, name)
    init = _Init(seed, "he_normal", keras)
    inputs = keras.Input(shape=shape, name="input")
    x = layers.Conv2D(_scaled(16, width), 3, padding="same", use_bias=False,
                      kernel_initializer=init("conv1"), name="conv1")(inputs)
    x = layers.BatchNormalization(name="bn1")(x)
    x = layers.ReLU(name="relu1")(x)
    for stage, filters in enumerate((16, 32, 64), start=1):
        for block in range(1, 4):
            stride = 2 if (stage > 1 and block == 1) else 1
            x = _basic_block(x, _scaled(filters, width), stride,
                             f"stage{stage}_block{block}", init, keras)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = _output(x, num_classes, init, softmax, keras)
    return keras.Model(inputs, outputs, name=name)


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------
MODELS: Dict[str, Callable[..., "keras.Model"]] = {
    "lenet_300_100": lenet_300_100,
    "conv2": conv2,
    "conv4": conv4,
    "conv6": conv6,
    "vgg_small": vgg_small,
    "vgg16_bn": vgg16_bn,
    "resnet20": resnet20,
}

_OPTIONS = ("width", "softmax", "keras")


def names() -> Tuple[str, ...]:
    """Sorted names accepted by :func:`build`.

    Example:

        >>> names()
        ('conv2', 'conv4', 'conv6', 'lenet_300_100', 'resnet20', 'vgg16_bn', 'vgg_small')
    """
    return tuple(sorted(MODELS))


def build(name: str, input_shape, num_classes: int, seed: int = 0, **kw) -> "keras.Model":
    """Build a zoo model by name.

    Args:
      name: one of :func:`names`.
      input_shape: shape of one example, e.g. ``(28, 28, 1)``.
      num_classes: number of classes (>= 2).
      seed: initialization seed; same seed, same initial weights.
      **kw: ``width`` (float multiplier, default 1.0), ``softmax`` (bool,
        default False: the output is logits) and ``keras`` (the Keras module:
        None for tf_keras, ``keras`` for Keras 3 on this process's backend).

    Raises:
      ValueError / TypeError: unknown name or option, or a bad argument value.

    Example:

        >>> from tfprune.experiment import data
        >>> ds = data.load("digits")
        >>> model = build("lenet_300_100", ds.input_shape, ds.num_classes, seed=0)
        >>> model.output_shape             # logits: use SparseCategoricalCrossentropy(from_logits=True)
        (None, 10)
    """
    if not isinstance(name, str) or name not in MODELS:
        raise ValueError(f"unknown model name={name!r}; allowed values: {', '.join(names())}")
    unknown = sorted(set(kw) - set(_OPTIONS))
    if unknown:
        raise TypeError(f"build({name!r}) got unknown option(s) {', '.join(unknown)}; "
                        f"allowed options: {', '.join(_OPTIONS)}")
    return MODELS[name](input_shape, num_classes, seed, **kw)
