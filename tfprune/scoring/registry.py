"""The scorer registry: methods are looked up by name, and users can add their own.

A scorer is registered as a *factory* ``make(model, data, loss, **options)`` that returns a
pure function ``score(masks) -> {layer_name: np.ndarray}``. The factory does the one-off work
(cloning the model, tracing the gradient function); ``score`` can then be called once
(one-shot pruning) or many times with shrinking masks (iterative pruning such as SynFlow's
100 rounds) without retracing. Higher scores are kept, unless the scorer is registered with
``keep="lowest"`` (GraSP prunes its highest scores).

Example, a custom scorer that keeps the largest |w|^2 (so it ranks like ``magnitude``); the
registry is process-wide, so the example removes its scorer at the end:

    >>> import numpy as np, tfprune
    >>> from tfprune.scoring import register_scorer, unregister_scorer, kernel_values
    >>> def make_square(model, data=None, loss=None):
    ...     return lambda masks=None: {n: np.square(v) for n, v in kernel_values(model, masks).items()}
    >>> register_scorer("square", make_square, needs_data=False)  # doctest: +ELLIPSIS
    Scorer(name='square', make=<function make_square at 0x...>, needs_data=False, keep='highest', rounds=1, options=())
    >>> square = tfprune.compute_masks(model, "square", sparsity=0.8)
    >>> magnitude = tfprune.compute_masks(model, "magnitude", sparsity=0.8)
    >>> all((square[name] == magnitude[name]).all() for name in magnitude)
    True
    >>> unregister_scorer("square")
"""
from __future__ import annotations

import dataclasses
from typing import Callable


@dataclasses.dataclass(frozen=True)
class Scorer:
    """A registered pruning criterion.

    Attributes:
        name: the method name users pass (``method="snip"``).
        make: factory ``(model, data, loss, **options) -> score(masks) -> {name: array}``;
            ``data`` is a list of checked ``(x, y)`` batches (or None; class labels already
            checked against the outputs; ``y`` is a tuple, one tensor per output, for a
            multi-output model), ``loss`` a resolved callable ``loss(y, model_outputs)`` (or
            None; for a multi-output model the sum of the outputs' mean losses).
        needs_data: whether ``data`` (and so a loss) is required.
        keep: ``"highest"`` or ``"lowest"``: which scores survive allocation.
        rounds: default number of score → prune rounds used by ``compute_masks``
            (densities follow d^(r/rounds)); 1 is one-shot.
        options: the keyword options ``make`` accepts (for error messages).
    """

    name: str
    make: Callable
    needs_data: bool
    keep: str = "highest"
    rounds: int = 1
    options: tuple = ()

    @property
    def learns_mask(self) -> bool:
        """A mask search (``edge_popup``, ``gem_miner``): it takes the target ``sparsity`` (and
        ``scope``) and learns its mask on the training set, in one round."""
        return "sparsity" in self.options


_REGISTRY: "dict[str, Scorer]" = {}


class lazy:  # noqa: N801 (used like a function: lazy("module", "factory"))
    """A factory imported on first call, so that the registry (and every ``--method`` list) needs no
    TensorFlow: ``register_scorer("snip", lazy("tfprune.scoring.snip", "make_snip"), ...)``."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args, **kwargs):
        import importlib

        return getattr(importlib.import_module(self.module), self.name)(*args, **kwargs)

    def __repr__(self):
        return f"lazy({self.module!r}, {self.name!r})"


def register_scorer(name: str, make: Callable, *, needs_data: bool, keep: str = "highest",
                    rounds: int = 1, options: tuple = (), overwrite: bool = False) -> Scorer:
    """Adds a scorer under ``name``; see the module docstring for the contract."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name: expected a non-empty string, got {name!r}.")
    if keep not in ("highest", "lowest"):
        raise ValueError(f"keep: got {keep!r}; allowed: 'highest', 'lowest'.")
    if not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds: expected an integer >= 1, got {rounds!r}.")
    if name in _REGISTRY and not overwrite:
        raise ValueError(f"name: a scorer named {name!r} is already registered; pass overwrite=True to replace it.")
    scorer = Scorer(name, make, needs_data, keep, rounds, tuple(options))
    _REGISTRY[name] = scorer
    return scorer


def unregister_scorer(name: str) -> None:
    """Removes a scorer added with :func:`register_scorer` (built-in ones included)."""
    if _REGISTRY.pop(name, None) is None:
        raise ValueError(f"name: no scorer named {name!r} is registered; known: {', '.join(sorted(_REGISTRY))}.")


def get_scorer(name: str) -> Scorer:
    """The registered scorer called ``name``; a clear error lists the known ones."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"method: unknown pruning method {name!r}; known methods: {', '.join(sorted(_REGISTRY))}.") from None


def scorer_names() -> "list[str]":
    """Names of all registered scorers, sorted."""
    return sorted(_REGISTRY)
