"""Training diagnostics shared by every training loop: a model that is not learning.

:func:`chance_problem` says when an epoch's training loss sits at chance level, ln(classes) for a
(sparse) categorical cross-entropy (within 1%), with an accuracy no better than halfway from
chance to perfect, and why: most often logits fed to a loss that expects probabilities (the
zoo's models output logits; the loss string ``"sparse_categorical_crossentropy"`` means
``from_logits=False``). :class:`NotLearningWarning` is the Keras callback that warns once per
``fit``. The lottery engine uses the same function (:mod:`tfprune.lottery`).

Example:
    >>> model.compile("adam", "sparse_categorical_crossentropy")   # logits into a probability loss
    >>> why, mismatch = chance_problem(model, {"loss": float(np.log(4))}, None)
    >>> mismatch, "from_logits=True" in why
    (True, True)
"""
from __future__ import annotations

import math
import warnings
from typing import Mapping

from tfprune import _keras, _keras3
from tfprune._keras import keras

__all__ = ["NotLearningWarning", "chance_problem"]

_LOSS_NAMES = {"sparsecategoricalcrossentropy", "categoricalcrossentropy"}
_ACCURACY_KEYS = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy")


def _cross_entropy(loss, keras=keras) -> "tuple[bool, bool] | None":
    """``(True, from_logits)`` for a (sparse) categorical cross-entropy loss of ``keras``, else None."""
    if isinstance(loss, (keras.losses.SparseCategoricalCrossentropy, keras.losses.CategoricalCrossentropy)):
        return True, bool(loss.get_config().get("from_logits", False))
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None) if callable(loss) else None
    if isinstance(name, str) and name.replace("_", "").lower() in _LOSS_NAMES:
        return True, False
    return None


def chance_problem(model, logs: Mapping, acc_key: "str | None") -> "tuple[str, bool] | None":
    """``(why, whether the loss does not fit the output)`` when the epoch behind ``logs`` looks like
    a model that is not learning (None if it does not); ``model`` is a tf_keras or Keras 3 model."""
    loss_kind = _cross_entropy(getattr(model, "loss", None), _keras.keras_of(model))
    loss = logs.get("loss")
    try:
        classes = int(model.output_shape[-1])
    except (AttributeError, TypeError, ValueError, IndexError):
        return None
    if loss_kind is None or loss is None or not math.isfinite(loss) or classes < 2:
        return None
    chance = math.log(classes)
    accuracy = logs.get(acc_key) if acc_key else None
    if abs(loss - chance) > 0.01 * chance or (accuracy is not None and accuracy > 0.5 + 0.5 / classes):
        return None
    from_logits = loss_kind[1]
    if _keras3.is_keras3(model):
        from tfprune._keras3 import training as keras3_training
        softmax = all(keras3_training.ends_in_softmax(layer) for layer in keras3_training.output_layers(model))
    else:
        softmax = all(_keras.ends_in_softmax(layer) for layer in _keras.output_layers(model))
    mismatch = from_logits == softmax
    if not from_logits and not softmax:
        fix = ("the model's output layer has no softmax (it outputs logits, as tfprune.experiment's zoo models do) "
               "but the loss expects probabilities (from_logits=False; the loss string "
               "'sparse_categorical_crossentropy' means that): use "
               "loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True)")
    elif from_logits and softmax:
        fix = ("the model ends in a softmax but the loss has from_logits=True: use from_logits=False, or remove "
               "the softmax")
    else:
        fix = (f"the loss's from_logits={from_logits} matches the model's output; check the learning rate, the labels "
               "and the data")
    seen = f", {acc_key} {accuracy:.4f} (chance {1 / classes:.4f})" if accuracy is not None else ""
    return (f"training loss {loss:.4f} is at chance level, ln({classes}) = {chance:.4f}{seen}: the model is not "
            f"learning; {fix}."), mismatch


class NotLearningWarning(keras.callbacks.Callback):
    """Warns once per ``fit`` (a ``UserWarning``) when :func:`chance_problem` finds the training at
    chance level: at the first such epoch when the loss does not fit the output, else at the end."""

    def on_train_begin(self, logs=None):
        self._warned, self._last = False, None

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        key = next((k for k in _ACCURACY_KEYS if k in logs), None)
        problem = chance_problem(self.model, logs, key)
        self._last = (epoch, problem)
        if problem is not None and problem[1] and not self._warned:
            self._warn(epoch, problem[0])

    def on_train_end(self, logs=None):
        if not self._warned and self._last is not None and self._last[1] is not None:
            epoch, (why, _) = self._last
            self._warn(epoch, why)

    def _warn(self, epoch, why):
        self._warned = True
        warnings.warn(f"epoch {epoch + 1}: {why}", UserWarning, stacklevel=2)
