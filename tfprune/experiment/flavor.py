"""Which Keras a run uses: the one module of the harness that knows.

``Config.keras`` is ``2`` (tf_keras, the default: TF-MOT's Keras, on TensorFlow) or ``3`` (Keras 3,
``import keras``) on ``Config.backend``: ``tensorflow``, ``jax`` or ``torch``. Everything else
in the harness asks the run's :class:`Flavor` (the Keras module to build models, optimizers and
losses with, how to seed it, what ``fit`` needs, how to save the trained model) and the library
core dispatches on the model itself.

**The backend is per process.** Keras 3 reads ``KERAS_BACKEND`` once, when ``keras`` is first
imported, and importing TensorFlow imports it too. So :func:`select` must run before either:
``examples/train.py`` calls :func:`tfprune.experiment.flags.select_keras` on its command line
first thing, and a run (:func:`tfprune.experiment.run`) calls :func:`select` again, which refuses,
with one line, a process whose Keras 3 already runs on another backend.

Example:
    >>> problems(3, "mxnet")
    ["backend='mxnet' is not one of tensorflow, jax, torch."]
    >>> problems(2, "jax")
    ['backend=jax needs keras=3 (tf_keras runs on TensorFlow only).']
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.machinery
import importlib.metadata
import os
import sys

KERAS = (2, 3)
BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT_BACKEND = "tensorflow"
#: What to install for a backend whose package is missing.
INSTALL = {
    "tensorflow": "pip install tensorflow",
    "jax": "pip install jax (CPU only: pip install 'jax[cpu]')",
    "torch": "pip install torch (CPU only: pip install torch --index-url https://download.pytorch.org/whl/cpu)",
}


def _installed(package: str) -> bool:
    """Whether ``package`` can be imported, without importing it and without asking the import
    hooks on ``sys.meta_path`` (tfprune's one-shot TensorFlow and Keras hooks would be used up)."""
    if package in sys.modules:
        return True
    try:
        return importlib.machinery.PathFinder.find_spec(package) is not None
    except (ImportError, ValueError):
        return False


def _keras3_version() -> "str | None":
    try:
        return importlib.metadata.version("keras")
    except importlib.metadata.PackageNotFoundError:
        return None


def problems(keras, backend) -> "list[str]":
    """Every problem with the ``keras``/``backend`` pair, as sentences naming the field."""
    if keras not in KERAS or isinstance(keras, bool):
        return [f"keras={keras!r} is not one of 2 (tf_keras), 3 (Keras 3)."]
    if backend not in BACKENDS:
        return [f"backend={backend!r} is not one of {', '.join(BACKENDS)}."]
    if keras == 2:
        return [] if backend == "tensorflow" else [f"backend={backend} needs keras=3 (tf_keras runs on TensorFlow only)."]
    out = []
    version = _keras3_version()
    if version is None or not version.startswith("3."):
        out.append(f"keras=3: Keras 3 is not installed (keras {version or 'missing'}); pip install 'keras>=3'.")
    if not _installed(backend):
        out.append(f"backend={backend}: the {backend} package is not installed; {INSTALL[backend]}.")
    return out


def process_backend() -> "str | None":
    """The backend this process's Keras 3 runs on, or None if ``keras`` is not imported yet."""
    keras = sys.modules.get("keras")
    if keras is None or not hasattr(keras, "backend"):
        return None
    return keras.backend.backend()


def select(keras: int, backend: str) -> None:
    """Makes this process run Keras 3 on ``backend`` for a ``keras=3`` run: sets ``KERAS_BACKEND``
    if ``keras`` is not imported yet; a ``ValueError`` (one line) if it already runs on another
    backend. Nothing for ``keras=2``."""
    if keras != 3:
        return
    current = process_backend()
    if current is None:
        os.environ["KERAS_BACKEND"] = backend
    elif current != backend:
        raise ValueError(f"backend={backend}: this process's Keras 3 already runs on {current} (Keras reads "
                         "KERAS_BACKEND once, when keras or TensorFlow is first imported); run examples/train.py "
                         f"--keras=3 --backend={backend}, or set KERAS_BACKEND={backend} before importing them.")


@dataclasses.dataclass(frozen=True)
class Flavor:
    """One Keras of a run.

    Attributes:
        keras: the Keras module models, optimizers, losses and callbacks come from (tf_keras or Keras 3).
        version: 2 or 3 (``Config.keras``).
        backend: ``tensorflow``, ``jax`` or ``torch``.
        model_file: the trained model's file in ``out_dir``: ``model.h5`` (tf_keras, with TF-MOT-based
            wrappers: ``tfprune.load_model``) or ``model.keras`` (Keras 3: ``keras.saving.load_model``).
    """

    keras: object
    version: int
    backend: str
    model_file: str

    @property
    def name(self) -> str:
        return "tf_keras" if self.version == 2 else f"Keras 3 ({self.backend})"

    def seed(self, seed: int) -> None:
        """Python, NumPy, TensorFlow's (and for Keras 3 the backend's and Keras') random seeds."""
        self.keras.utils.set_random_seed(int(seed))

    def clear_session(self) -> None:
        self.keras.backend.clear_session()

    def fit_callbacks(self, pruned: bool) -> list:
        """The callbacks ``fit`` needs: TF-MOT's step counter for a tf_keras model with pruning
        wrappers, and the not-learning warning; none on Keras 3 (masks are constraints)."""
        if self.version == 3:
            return []
        from tfprune.api import callbacks
        from tfprune.diagnostics import NotLearningWarning

        return (callbacks() if pruned else []) + [NotLearningWarning()]

    def save(self, model, path: str) -> None:
        """Writes ``model`` (with its masks) to ``path``, a temporary file of the caller's atomic write."""
        if self.version == 3:
            model.save(path)
            return
        import warnings

        with warnings.catch_warnings():
            # HDF5 on purpose: the format TF-MOT documents for its pruning wrappers (Keras calls it legacy).
            warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
            model.save(path, include_optimizer=False)

    def versions(self) -> dict:
        """For ``result.json``: Keras 3's version, backend and the backend package's version (none
        for tf_keras, whose version the runner always records)."""
        if self.version == 2:
            return {}
        return {"keras": self.keras.__version__, "backend": self.backend,
                self.backend: importlib.metadata.version(self.backend)}


@functools.lru_cache(maxsize=None)
def _flavor(version: int, backend: str) -> Flavor:
    if version == 2:
        from tfprune._keras import keras

        return Flavor(keras, 2, "tensorflow", "model.h5")
    from tfprune import _keras3

    return Flavor(_keras3.keras_module(), 3, backend, "model.keras")


def get(config) -> Flavor:
    """The :class:`Flavor` of ``config`` (``config.keras``, ``config.backend``), after :func:`select`."""
    select(config.keras, config.backend)
    return _flavor(int(config.keras), config.backend)
