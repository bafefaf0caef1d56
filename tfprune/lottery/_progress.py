"""What a run tells its user while it trains.

* Progress (``TrainingSpec.verbose``): 0 silent; 1 (the default) one line per finished phase, and
  one per epoch once a phase has been training for :data:`EPOCH_LINES_AFTER_S` seconds (long
  levels); 2 one line per epoch always (and Keras' own epoch line). The lines go where Keras'
  ``fit`` progress goes: stdout, or absl logging after ``tf_keras.utils.disable_interactive_logging()``.
* A model that is not learning: a training loss within 1% of ln(classes) of a (sparse)
  categorical cross-entropy, with the accuracy no better than halfway from chance to perfect,
  gives one ``UserWarning`` per run naming ``from_logits``: after any epoch when the loss does not
  fit the output (logits into a loss expecting probabilities — the usual cause — or the reverse),
  else after the last epoch of a phase (a phase that ended at chance).
"""
from __future__ import annotations

import math
import warnings
from typing import Mapping

from absl import logging as absl_logging

from tfprune import _keras
from tfprune._keras import keras

#: At ``verbose=1``, a phase that has trained this long (seconds) also reports every epoch.
EPOCH_LINES_AFTER_S = 20.0
_LOSS_NAMES = {"sparsecategoricalcrossentropy", "categoricalcrossentropy"}


def say(message: str) -> None:
    """One progress line, as Keras prints ``fit`` progress (stdout, or absl logging)."""
    if keras.utils.is_interactive_logging_enabled():
        print(message, flush=True)
    else:
        absl_logging.info(message)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.4f}"


def epoch_line(phase: str, epoch: int, epochs: int, step: int, end_step: int, logs: Mapping, acc_key, elapsed) -> str:
    parts = [f"loss {_fmt(logs.get('loss'))}"]
    if acc_key:
        parts.append(f"{acc_key} {_fmt(logs.get(acc_key))}")
    if "val_loss" in logs:
        parts.append(f"val_loss {_fmt(logs.get('val_loss'))}")
    if acc_key and f"val_{acc_key}" in logs:
        parts.append(f"val_{acc_key} {_fmt(logs.get(f'val_{acc_key}'))}")
    return (f"[tfprune.lottery] {phase} epoch {epoch}/{epochs} (step {step}/{end_step}): {', '.join(parts)}, "
            f"{elapsed:.1f} s")


def _cross_entropy(loss) -> "tuple[bool, bool] | None":
    """``(True, from_logits)`` for a (sparse) categorical cross-entropy loss, else None."""
    if isinstance(loss, (keras.losses.SparseCategoricalCrossentropy, keras.losses.CategoricalCrossentropy)):
        return True, bool(loss.get_config().get("from_logits", False))
    name = loss if isinstance(loss, str) else getattr(loss, "__name__", None) if callable(loss) else None
    if isinstance(name, str) and name.replace("_", "").lower() in _LOSS_NAMES:
        return True, False
    return None


def chance_problem(model, logs: Mapping, acc_key: "str | None") -> "tuple[str, bool] | None":
    """``(why, whether the loss does not fit the output)`` when the epoch behind ``logs`` looks like
    a model that is not learning (None if it does not)."""
    loss_kind = _cross_entropy(getattr(model, "loss", None))
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
    softmax = _keras.output_activation_is_softmax(model)
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


class Watch:
    """Per run: progress lines and the one not-learning warning."""

    def __init__(self, verbose: int):
        self.verbose = int(verbose)
        self.warned = False

    def epoch_end(self, model, phase: str, epoch: int, epochs: int, step: int, end_step: int, logs: Mapping,
                  acc_key, elapsed: float) -> None:
        if self.verbose >= 2 or (self.verbose == 1 and elapsed >= EPOCH_LINES_AFTER_S):
            say(epoch_line(phase, epoch, epochs, step, end_step, logs, acc_key, elapsed))
        if not self.warned:
            problem = chance_problem(model, logs, acc_key)
            if problem is not None and (problem[1] or step == end_step):
                self.warned = True
                warnings.warn(f"tfprune.lottery: {phase}, epoch {epoch}: {problem[0]}", UserWarning, stacklevel=2)

    def phase_end(self, line: str) -> None:
        if self.verbose >= 1:
            say(line)
