"""The Keras 3 seam: everything tfprune knows about Keras 3 (``import keras``) models and layers.

tfprune's tf_keras (Keras 2) path goes through TF-MOT and lives in :mod:`tfprune._keras`; Keras 3
models, on the TensorFlow, JAX and PyTorch backends, are handled here:

* this module (no TensorFlow, no Keras import): :func:`is_keras3`, :func:`backend`,
  :func:`keras_module` (imports Keras 3 when called) and :func:`register_keras_classes` (run by
  ``import tfprune``);
* :mod:`tfprune._keras3.layers`: which kernels are prunable, under which key, and which weight
  matrices are left dense (and why);
* :mod:`tfprune._keras3.masked`: fixed 0/1 masks held by the model (``apply_masks``,
  ``get_masks``, ``strip``), enforced after every optimizer step and saved in ``.keras`` files;
* :mod:`tfprune._keras3.counts`: layer families and symbolic shapes, for :mod:`tfprune.energy`;
* :mod:`tfprune._keras3.training`: what training loops need (top-level layers, clones, fresh
  re-seeded initial weights, the random seed), for :mod:`tfprune.lottery` and the harness.

**Keys.** A kernel's key is the path of layer names from the model to the layer that owns it,
joined by ``/``: ``fc1`` for a top-level layer, ``mha/query`` for the ``query`` EinsumDense of a
MultiHeadAttention named ``mha``, ``backbone/transformer_layer_0/self_attention/query`` for a
keras-hub backbone inside a model. Names are the ones the layers hold (``layer.name``; Keras
forbids ``/`` in them), never ``layer.path`` (which depends on the name scopes the layers were
created in) nor a position, so the keys of a model do not depend on what else the process built.
tfprune's mask wrapper is transparent: a masked model has the keys of the plain model.
"""
from __future__ import annotations

import importlib
import json
import os
import sys

from tfprune._import_hook import ImportHook, install

_TF_KERAS_PREFIXES = ("tf_keras.", "tensorflow.python.keras.")


def _modules(obj) -> "list[str]":
    return [getattr(cls, "__module__", "") or "" for cls in type(obj).__mro__]


def is_keras3(obj) -> bool:
    """Whether ``obj`` is a Keras 3 object (model, layer, ...): a class in its MRO comes from the
    ``keras`` package, and that package is Keras 3. Never imports keras: if it is not imported,
    no Keras 3 object can exist."""
    keras = sys.modules.get("keras")
    if keras is None or not str(getattr(keras, "__version__", "")).startswith("3."):
        return False
    return any(m == "keras" or m.startswith("keras.src.") for m in _modules(obj))


def is_tf_keras(obj) -> bool:
    """Whether ``obj`` is a tf_keras (Keras 2) object, from its class MRO (imports nothing)."""
    return any(m.startswith(_TF_KERAS_PREFIXES) for m in _modules(obj))


def backend() -> str:
    """The Keras 3 backend of this process: ``"tensorflow"``, ``"jax"``, ``"torch"``, ...

    Asks Keras if it is imported; otherwise resolves it as Keras will (``KERAS_BACKEND``, else
    ``keras.json`` in ``KERAS_HOME`` or ``~/.keras``, else ``"tensorflow"``) without importing it.
    """
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return keras.backend.backend()
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME")
    if home is None:
        base = os.path.expanduser("~")
        home = os.path.join(base if os.access(base, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.join(home, "keras.json"), encoding="utf-8") as f:
            return str(json.load(f).get("backend") or "tensorflow")
    except (OSError, ValueError):
        return "tensorflow"


def keras_module():
    """The ``keras`` package, Keras 3, imported now if it is not yet (with this process's backend:
    Keras reads ``KERAS_BACKEND`` on that first import, see :func:`backend`). An ``ImportError``
    saying what to install if the installed ``keras`` is not Keras 3."""
    keras = importlib.import_module("keras")
    if not _is_keras3_module(keras):
        raise ImportError(f"keras: the installed keras is {getattr(keras, '__version__', '?')}, not Keras 3; "
                          "pip install 'keras>=3'.")
    return keras


def _is_keras3_module(module) -> bool:
    return str(getattr(module, "__version__", "")).startswith("3.")


def _register_now() -> None:
    importlib.import_module("tfprune._keras3.masked")  # its classes register themselves with Keras
    importlib.import_module("tfprune._keras3.wann_layers")  # so do the weight-agnostic network's layers


class _RegisterOnKerasImport(ImportHook):
    """Runs the real ``import keras``, then registers tfprune's classes if it is Keras 3 (see
    :mod:`tfprune._import_hook`). Changes nothing else about the import."""

    name = "keras"

    def load(self, module):
        self._loader.exec_module(module)
        if _is_keras3_module(module):
            _register_now()


def register_keras_classes() -> None:
    """Makes tfprune's serializable Keras 3 classes (``tfprune>MaskedLayer``,
    ``tfprune>MaskConstraint``, the ``tfprune>Wann...`` layers) known to Keras, so that ``keras.saving.load_model`` loads a masked
    model's ``.keras`` file with no custom objects or scope, in any process that imported tfprune.

    Keras imports the module of a custom class only for its own packages, so the classes must be
    registered before a file is loaded: now if Keras 3 is imported, otherwise right after the
    process first imports ``keras`` (a one-shot import hook, as :mod:`tfprune.logs` does for
    TensorFlow). Importing tfprune never imports Keras itself.
    """
    keras = sys.modules.get("keras")
    if keras is not None:
        if _is_keras3_module(keras):
            _register_now()
        return
    install(_RegisterOnKerasImport)


def require_prunable(model, argument: str = "model"):
    """The model's prunable kernels (``{key: variable}``); a clear error when it has none."""
    from tfprune._keras3.layers import check_model, prunable_kernels

    check_model(model, argument)
    kernels = prunable_kernels(model, argument=argument)
    if not kernels:
        raise ValueError(f"{argument}: Keras 3 model {model.name!r} has no prunable layer (Dense, EinsumDense, "
                         "Conv1D/2D/3D or their transposes).")
    return kernels
