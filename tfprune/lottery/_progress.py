"""What a run tells its user while it trains.

* Progress (``TrainingSpec.verbose``): 0 silent; 1 (the default) one line per finished phase, and
  one per epoch once a phase has been training for :data:`EPOCH_LINES_AFTER_S` seconds (long
  levels); 2 one line per epoch always (and Keras' own epoch line). The lines go where Keras'
  ``fit`` progress goes: stdout, or absl logging after ``tf_keras.utils.disable_interactive_logging()``.
* A model that is not learning (:func:`tfprune.diagnostics.chance_problem`) gives one
  ``UserWarning`` per run naming ``from_logits``: after any epoch when the loss does not fit the
  output (logits into a loss expecting probabilities — the usual cause — or the reverse), else
  after the last epoch of a phase (a phase that ended at chance).
"""
from __future__ import annotations

import warnings
from typing import Mapping

from absl import logging as absl_logging

from tfprune._keras import keras
from tfprune.diagnostics import chance_problem

#: At ``verbose=1``, a phase that has trained this long (seconds) also reports every epoch.
EPOCH_LINES_AFTER_S = 20.0


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
