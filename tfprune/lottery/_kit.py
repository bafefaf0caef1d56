"""The engine's view of the model's Keras: one *kit* per Keras, chosen from the model.

The engine (:mod:`tfprune.lottery._engine`, :mod:`._phase`, :mod:`._state`) and every procedure
on it (lottery tickets, the fine-tuning baselines, pruning early, the sanity checks) are written
once. What differs between Keras versions is here:

* **tf_keras** (Keras 2): masks are held by tfprune's TF-MOT-based wrappers, whose step counter
  needs TF-MOT's ``UpdatePruningStep`` callback in every ``fit``; layers and kernels as
  :mod:`tfprune._keras` sees them.
* **Keras 3** (TensorFlow, JAX or PyTorch backend): masks are kernel constraints applied after
  every optimizer step (:mod:`tfprune._keras3.masked`), so ``fit`` needs no callback; layers and
  kernels as :mod:`tfprune._keras3` sees them.

Both write the same files (weights as ``"<layer>::<i>"`` arrays, tickets, metrics), and
:func:`tfprune.apply_masks` / :func:`tfprune.get_masks` / :func:`tfprune.sparsity_report`
already dispatch on the model. Optimizer state is read through ``optimizer.variables``, which
both have.
"""
from __future__ import annotations

import functools
import sys
import types

from tfprune import _keras, _keras3


def _tf_keras_clone(model):
    copied = _keras.keras.models.clone_model(model)
    copied.set_weights(model.get_weights())
    return copied


@functools.lru_cache(maxsize=None)
def tf_keras_kit() -> types.SimpleNamespace:
    from tfprune.api import callbacks

    return types.SimpleNamespace(
        name="tf_keras", keras=_keras.keras,
        check_model=_keras.check_model, require_prunable=_keras.require_prunable,
        prunable_kernels=_keras.prunable_kernels,
        top_layers=lambda model: [(_keras.inner_layer(layer).name, _keras.inner_layer(layer)) for layer in model.layers],
        layer_kernels=lambda layer, name=None: _keras.layer_kernels(layer),
        clone=_tf_keras_clone, reseeded_clone=_keras.reseeded_clone, fit_callbacks=callbacks)


@functools.lru_cache(maxsize=None)
def keras3_kit() -> types.SimpleNamespace:
    from tfprune._keras3 import layers, training

    return types.SimpleNamespace(
        name="keras3", keras=_keras3.keras_module(),
        check_model=layers.check_model, require_prunable=_keras3.require_prunable,
        prunable_kernels=layers.prunable_kernels, top_layers=training.top_layers,
        layer_kernels=training.layer_kernels, clone=training.clone, reseeded_clone=training.reseeded_clone,
        fit_callbacks=lambda: [])


def kit_for(model) -> types.SimpleNamespace:
    """The kit of ``model``'s Keras (Keras 3 for a Keras 3 object, else tf_keras)."""
    return keras3_kit() if _keras3.is_keras3(model) else tf_keras_kit()


def is_model(obj) -> bool:
    """Whether ``obj`` is a model (of either Keras) rather than a function that builds one."""
    if _keras3.is_keras3(obj):
        return isinstance(obj, keras3_kit().keras.Model)
    return isinstance(obj, _keras.keras.Model)


def set_random_seed(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow (``tf_keras.utils.set_random_seed``) and, when Keras 3 is
    imported, its backend and global seed generator too (``keras.utils.set_random_seed``: the
    same Python, NumPy and TensorFlow seeds, so a tf_keras run draws exactly what it drew before)."""
    _keras.keras.utils.set_random_seed(int(seed))
    keras = sys.modules.get("keras")
    if keras is not None and str(getattr(keras, "__version__", "")).startswith("3.") and hasattr(keras, "utils"):
        keras.utils.set_random_seed(int(seed))
