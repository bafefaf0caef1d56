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

import copy
import contextlib
import dataclasses
from typing import Any, Callable, Sequence

from tfprune import checks

__all__ = ["TrainingSpec", "determinism_enabled", "disable_determinism", "op_determinism"]


@dataclasses.dataclass(frozen=True)
class TrainingSpec:
    """How to train: everything a training loop needs besides the model, the data and the masks.

    Attributes:
        optimizer: a name (``"adam"``), a serialized config dict, an optimizer (its config is
            reused) or a zero-argument factory; a *new* optimizer is made for every phase, of
            the model's Keras (tf_keras, or Keras 3 for a Keras 3 model).
        learning_rate: replaces the learning rate of an optimizer name, config or optimizer (None:
            keep theirs; not allowed with a factory or ``compile_fn``).
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
        verbose: 1 (default) one line per trained phase (a lottery level), and one per epoch in
            long phases; 0 silent; 2 one line per epoch and Keras' own epoch line. The lines go
            where Keras' ``fit`` progress goes (stdout, or absl logging after
            ``tf_keras.utils.disable_interactive_logging()``).
        continue_lr_schedule: after a rewind, give the new optimizer ``iterations = rewind step``
            so a step-based learning-rate schedule continues (leave False with Adam).
        distribute: a ``tf.distribute.Strategy`` to train tf_keras models under (None: TensorFlow's
            default); :mod:`tfprune.lottery.distribute` makes one from a name and says who writes.
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
    verbose: int = 1
    continue_lr_schedule: bool = False
    distribute: Any = None

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
        if not isinstance(self.optimizer, (str, dict)) and not callable(self.optimizer) \
                and not hasattr(self.optimizer, "get_config"):
            raise TypeError(f"optimizer: expected a name ('adam'), a serialized config dict, a tf_keras optimizer "
                            f"(its config is reused) or a function returning a new one; got "
                            f"{type(self.optimizer).__name__}.")
        if self.learning_rate is not None and (self.compile_fn is not None or _is_factory(self.optimizer)):
            raise ValueError(f"learning_rate: got {self.learning_rate!r}; allowed: None when the optimizer comes "
                             "from a factory or compile_fn (set the learning rate there).")
        set_("metrics", tuple(self.metrics or ()))
        set_("callbacks", tuple(self.callbacks or ()))
        set_("deterministic", bool(self.deterministic))
        set_("continue_lr_schedule", bool(self.continue_lr_schedule))
        if self.distribute is not None:
            import tensorflow as tf  # lazily: only a strategy needs it

            if not isinstance(self.distribute, tf.distribute.Strategy):
                raise TypeError(f"distribute: expected a tf.distribute.Strategy or None, got "
                                f"{type(self.distribute).__name__}.")

    def replace(self, **changes) -> "TrainingSpec":
        """A checked copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)

    def total_steps(self, steps_per_epoch: int, *, epochs_name: str = "epochs", steps_name: str = "steps") -> int:
        """The training length in steps (``epochs × steps_per_epoch`` or ``steps``); a clear error
        when the spec gives neither.

        Example:
            >>> TrainingSpec(epochs=3).total_steps(steps_per_epoch=10)
            30
            >>> TrainingSpec().total_steps(10, epochs_name="training.epochs", steps_name="training.steps")
            Traceback (most recent call last):
            ...
            ValueError: training.epochs/training.steps: got neither; allowed: one of them (the training length).
        """
        if self.epochs is not None:
            return self.epochs * steps_per_epoch
        if self.steps is not None:
            return self.steps
        raise ValueError(f"{epochs_name}/{steps_name}: got neither; allowed: one of them (the training length).")

    @classmethod
    def checked(cls, value, argument: str = "training") -> "TrainingSpec":
        """``value`` if it is a spec that can compile a model (a ``loss`` or a ``compile_fn``).

        Example:
            >>> TrainingSpec.checked(TrainingSpec(epochs=1))  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: training.loss: got None; allowed: a loss (e.g. 'sparse_categorical_crossentropy'), or ...
        """
        if not isinstance(value, cls):
            raise TypeError(f"{argument}: expected a tfprune.TrainingSpec(loss=..., epochs=..., ...), got "
                            f"{type(value).__name__}.")
        if value.loss is None and value.compile_fn is None:
            raise ValueError(f"{argument}.loss: got None; allowed: a loss (e.g. 'sparse_categorical_crossentropy'), "
                             "or a compile_fn that compiles the model.")
        return value

    def new_optimizer(self, model=None):
        """A brand-new optimizer as ``optimizer`` (and ``learning_rate``) describe it, of
        ``model``'s Keras: tf_keras (the default) or Keras 3 for a Keras 3 model.

        Example:
            >>> opt = TrainingSpec(optimizer="sgd", learning_rate=0.5).new_optimizer()
            >>> type(opt).__name__, float(opt.learning_rate)
            ('SGD', 0.5)
        """
        from tfprune import _keras  # lazily: the spec itself needs no Keras

        keras = _keras.keras_of(model) if model is not None else _keras.keras
        classes = tuple(c for c in (keras.optimizers.Optimizer, getattr(getattr(keras.optimizers, "legacy", None),
                                                                            "Optimizer", None)) if c is not None)
        which = "tf_keras" if keras is _keras.keras else "Keras 3"
        opt = self.optimizer
        if isinstance(opt, classes):
            return type(opt).from_config(self._with_rate(opt.get_config()))
        if isinstance(opt, str):
            return keras.optimizers.get(opt if self.learning_rate is None else
                                        {"class_name": opt, "config": self._with_rate({})})
        if isinstance(opt, dict):
            config = copy.deepcopy(opt)
            config["config"] = self._with_rate(dict(config.get("config") or {}))
            return keras.optimizers.deserialize(config)
        if not _is_factory(opt):  # an optimizer object of the other Keras
            raise TypeError(f"optimizer: got a {type(opt).__module__}.{type(opt).__name__} for a {which} model; pass a "
                            f"{which} optimizer, a name ('adam'), a config dict or a factory.")
        made = opt()
        if not isinstance(made, classes):
            raise TypeError(f"optimizer: the factory returned {type(made).__module__}.{type(made).__name__}, not a "
                            f"{which} optimizer (the model is a {which} model).")
        return made

    def _with_rate(self, config: dict) -> dict:
        if self.learning_rate is not None:
            config["learning_rate"] = self.learning_rate
        return config

    def compile(self, model):
        """Compiles ``model`` with a new optimizer (or calls ``compile_fn(model)``); returns the
        model's optimizer. Run :meth:`checked` first for a clear error when the loss is missing."""
        if self.compile_fn is not None:
            self.compile_fn(model)
            if getattr(model, "optimizer", None) is None:
                raise ValueError("compile_fn: the model has no optimizer after compile_fn(model); it must call "
                                 "model.compile(optimizer=..., loss=..., metrics=...).")
        else:
            model.compile(optimizer=self.new_optimizer(model), loss=self.loss, metrics=list(self.metrics))
        return model.optimizer


def _is_factory(optimizer) -> bool:
    """A zero-argument function making an optimizer (not a name, a config or an optimizer)."""
    return callable(optimizer) and (isinstance(optimizer, type) or not hasattr(optimizer, "get_config"))


def determinism_enabled() -> bool:
    """Whether TensorFlow op determinism is on."""
    from tensorflow.python.framework import config as tf_config  # the only place that can say and undo

    return bool(tf_config.is_op_determinism_enabled())


def disable_determinism() -> None:
    from tensorflow.python.framework import config as tf_config

    tf_config.disable_op_determinism()


@contextlib.contextmanager
def op_determinism():
    """Turns TensorFlow op determinism on for the block and back off afterwards if it was off
    (so a run does not change the process for whatever runs next).

    Example:
        >>> with op_determinism():
        ...     determinism_enabled()
        True
    """
    import tensorflow as tf

    was = determinism_enabled()
    tf.config.experimental.enable_op_determinism()
    try:
        yield
    finally:
        if not was:
            disable_determinism()
