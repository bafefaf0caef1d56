"""The training knobs every training loop shares, in one value passed whole.

:class:`TrainingSpec` is what :class:`tfprune.lottery.LotteryTicket`,
:func:`tfprune.lottery.prune_early`, :func:`tfprune.lottery.sanity_checks` and the experiment
harness (:mod:`tfprune.experiment`) take instead of a dozen keyword arguments each: the
optimizer and learning rate, loss, metrics, callbacks, batch sizes, the training length
(``epochs`` or ``steps``), the seed, determinism and verbosity. It is checked once, when it is
made, and is immutable (``spec.replace(epochs=2)`` gives a changed copy).

Example:
    >>> spec = TrainingSpec(loss="sparse_categorical_crossentropy", epochs=2, batch_size=64, seed=0)
    >>> spec.replace(epochs=3).epochs
    3
    >>> TrainingSpec(batch_size=0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size: got 0; allowed: an integer >= 1.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Sequence

from tfprune import checks

__all__ = ["TrainingSpec"]


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    """How to train: everything a training loop needs besides the model, the data and the masks.

    Attributes:
        optimizer: a name (``"adam"``), a serialized config dict, an optimizer (its config is
            reused) or a zero-argument factory; a *new* optimizer is made for every phase.
        learning_rate: with an optimizer *name*, its learning rate (None: the optimizer's default).
        loss, metrics: compile settings (``loss`` is required unless ``compile_fn`` is given).
        compile_fn: ``compile_fn(model)`` compiling the model with a new optimizer (instead of
            ``optimizer``/``learning_rate``/``loss``/``metrics``).
        callbacks: extra Keras callbacks for every ``fit`` call (their state is not checkpointed).
        batch_size: training batch size; ``validation_batch_size`` defaults to it.
        steps_per_epoch: required for datasets of unknown length.
        epochs / steps: the training length, at most one of them (a procedure that needs a length
            refuses a spec with neither). For lottery runs this is the length of every level.
        seed: seeds θ0 (model factories), the data order and every training segment; None draws
            one (and the run directory remembers it).
        deterministic: turn on TF op determinism while training (bit-identical resumes).
        verbose: 0 silent, 1 one line per phase/epoch, 2 also Keras' per-epoch line.
        continue_lr_schedule: after a rewind, give the new optimizer ``iterations = rewind step``
            so a step-based learning-rate schedule continues (leave False with Adam).
    """

    optimizer: Any = "adam"
    learning_rate: "float | None" = None
    loss: Any = None
    metrics: Sequence = ("accuracy",)
    compile_fn: "Callable | None" = None
    callbacks: Sequence = ()
    batch_size: int = 32
    validation_batch_size: "int | None" = None
    steps_per_epoch: "int | None" = None
    epochs: "int | None" = None
    steps: "int | None" = None
    seed: "int | None" = None
    deterministic: bool = False
    verbose: int = 0
    continue_lr_schedule: bool = False

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731 (frozen)
        set_("batch_size", checks.integer(self.batch_size, "batch_size", 1))
        for name in ("validation_batch_size", "steps_per_epoch", "epochs", "steps"):
            value = getattr(self, name)
            if value is not None:
                set_(name, checks.integer(value, name, 1))
        if self.epochs is not None and self.steps is not None:
            raise ValueError(f"epochs/steps: got both ({self.epochs!r}, {self.steps!r}); allowed: at most one.")
        if self.seed is not None:
            set_("seed", checks.integer(self.seed, "seed", 0))
        if self.learning_rate is not None:
            set_("learning_rate", checks.positive_number(self.learning_rate, "learning_rate"))
        checks.choice(self.verbose, "verbose", (0, 1, 2))
        if self.compile_fn is not None and not callable(self.compile_fn):
            raise TypeError(f"compile_fn: expected a callable(model) that compiles it, got "
                            f"{type(self.compile_fn).__name__}.")
        set_("metrics", tuple(self.metrics or ()))
        set_("callbacks", tuple(self.callbacks or ()))
        set_("deterministic", bool(self.deterministic))
        set_("continue_lr_schedule", bool(self.continue_lr_schedule))

    def replace(self, **changes) -> "TrainingSpec":
        """A checked copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def total_steps(self, steps_per_epoch: int, *, epochs_name: str = "epochs", steps_name: str = "steps") -> int:
        """The training length in steps (``epochs × steps_per_epoch`` or ``steps``); a clear error
        when the spec gives neither."""
        if self.epochs is not None:
            return self.epochs * steps_per_epoch
        if self.steps is not None:
            return self.steps
        raise ValueError(f"{epochs_name}/{steps_name}: got neither; give the TrainingSpec epochs=... or steps=....")
