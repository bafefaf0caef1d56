"""The loop that the mask searches (:mod:`.edge_popup`, :mod:`.gem_miner`) share: learn one real
score per weight with the weights frozen at their initial values θ0.

Each step takes a minibatch, makes the mask ``m = mask_of(s)`` (0/1) from the scores, and
differentiates the training loss of the network whose kernels are ``θ0 ⊙ m``. The mask is a step
function of the scores; the *straight-through* estimator treats ``∂m/∂s`` as the identity, so

    ∂L/∂s = ∂L/∂(θ0 ⊙ m) ⊙ θ0 = g ⊙ θ0          (g: the net's gradient for the masked kernels)

(times ``∂r/∂s`` when the mask ranks ``r(s)``, e.g. ``sign(s)`` for edge-popup's ``|s|``; plus
the method's own penalty gradient). The scores follow SGD with momentum ``μ`` and
learning rate ``η`` decayed by a cosine over the search (as both papers):
``v ← μ v + ∂L/∂s``, ``s ← s − η_t v``; then the method's projection (Gem-Miner clips to [0, 1]).

Minibatches: the training examples in a fresh order per epoch from ``(seed, epoch)``, so a
search is deterministic per seed and an interrupted one resumes bit-identically: with
``state_dir`` the scores, velocities and the method's state are saved (atomically) after
every epoch, with the options and kernel shapes they belong to; a directory holding another
search's state is refused. Models are scored in inference mode (BatchNorm uses its moving
statistics, Dropout is off), like every scorer.
"""
from __future__ import annotations

import dataclasses
import math
import os

import numpy as np

from tfprune import checks, io
from tfprune.scoring import nets
from tfprune.scoring.snip import mean_loss


@dataclasses.dataclass(frozen=True)
class SearchOptions:
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.1
    momentum: float = 0.9
    seed: int = 0
    state_dir: "str | None" = None

    def __post_init__(self):
        checks.integer(self.epochs, "epochs", 1)
        checks.integer(self.batch_size, "batch_size", 1)
        checks.positive_number(self.lr, "lr")
        checks.fraction(self.momentum, "momentum", allowed="a number in [0, 1)")


def _concat(batches):
    """The scorer's checked batches as one ``(x, y)`` (x: an array, or a tuple/dict of arrays)."""
    xs, ys = zip(*batches)
    join = lambda parts: np.concatenate([np.asarray(p) for p in parts])  # noqa: E731
    if isinstance(xs[0], dict):
        x = {k: join([b[k] for b in xs]) for k in xs[0]}
    elif isinstance(xs[0], (tuple, list)):
        x = tuple(join(parts) for parts in zip(*xs))
    else:
        x = join(xs)
    y = tuple(join(parts) for parts in zip(*ys)) if isinstance(ys[0], (tuple, list)) else join(ys)
    return x, y


def _take(x, index):
    if isinstance(x, dict):
        return {k: v[index] for k, v in x.items()}
    if isinstance(x, tuple):
        return tuple(v[index] for v in x)
    return x[index]


def minibatches(data, batch_size: int, seed: int, epoch: int):
    """The epoch's minibatches: every example once, in the order of ``(seed, epoch)``."""
    x, y = data
    n = len(y[0] if isinstance(y, tuple) else y)
    order = np.random.default_rng([seed, epoch]).permutation(n)
    for start in range(0, n, batch_size):
        index = order[start:start + batch_size]
        yield _take(x, index), _take(y, index)


def straight_through(net, base, masks, objective, batch) -> "dict[str, np.ndarray]":
    """``∂L/∂s = g ⊙ θ0``: the net's gradient for the kernels ``θ0 ⊙ m``, times ``θ0``."""
    g = net.gradient(nets.effective(base, masks), objective, batches=[batch])
    return {n: g[n] * base[n] for n in base}


def check_unpruned(masks, method: str) -> None:
    """A search learns the mask of the whole network: it starts from no mask (all ones)."""
    if masks and any((np.asarray(m) == 0).any() for m in masks.values()):
        raise ValueError(f"masks: {method} learns its own mask for the whole network; it runs in one round from an "
                         "unpruned model.")


class Search:
    """One search: :meth:`run` loops over the epochs and their minibatches and saves the state
    after every epoch (with ``state_dir``). The method supplies
    ``mask_of(scores) -> masks``, ``penalty(scores) -> {key: gradient}`` (or None), ``project(scores)``
    (in place, after each step; or None) and ``end_of_epoch(epoch, scores)`` (or None), and may
    keep arrays in ``extra`` (saved and restored with the scores)."""

    def __init__(self, model, batches, loss, options: SearchOptions, method: str, include=()):
        self.net = nets.loss_net(model, batches[:1], include=include)
        self.base = {n: v.astype(self.net.dtype) for n, v in nets.kernel_values(model, include=include).items()}
        self.shapes = {n: v.shape for n, v in self.base.items()}
        self.data = _concat(batches)
        self.objective = mean_loss(loss)
        self.options, self.method = options, method
        self.scores: "dict[str, np.ndarray]" = {}
        self.velocity: "dict[str, np.ndarray]" = {}
        self.extra: "dict[str, np.ndarray]" = {}
        examples = len(self.data[1][0] if isinstance(self.data[1], tuple) else self.data[1])
        self.steps_per_epoch = -(-examples // options.batch_size)
        self._digest = None

    def start(self, scores, **extra) -> "Search":
        """Sets the initial scores (float64) and the method's arrays; velocities start at zero."""
        self.scores = {n: np.asarray(scores[n], np.float64) for n in self.base}
        self.velocity = {n: np.zeros_like(s) for n, s in self.scores.items()}
        self.extra = dict(extra)
        return self

    def _identity(self) -> dict:
        """What a saved state belongs to: the method, its options, θ0 and the training data."""
        if self._digest is None:
            x, y = self.data
            data = {f"x{i}": np.asarray(a) for i, a in enumerate(x.values() if isinstance(x, dict) else
                                                              x if isinstance(x, tuple) else (x,))}
            data |= {f"y{i}": np.asarray(a) for i, a in enumerate(y if isinstance(y, tuple) else (y,))}
            self._digest = {"weights": io.npz_digest(self.base), "data": io.npz_digest(data)}
        return {"method": self.method, "options": dataclasses.asdict(self.options) | {"state_dir": None},
                "shapes": {n: list(v.shape) for n, v in self.base.items()}, **self._digest}

    def _path(self):
        return os.path.join(self.options.state_dir, "search.npz")

    def _load(self) -> int:
        """The first epoch still to run (0 without a saved state)."""
        if not self.options.state_dir or not os.path.exists(self._path()):
            return 0
        saved = io.load_npz(self._path())
        identity = io.to_jsonable(self._identity())
        if io.json_digest(identity) != str(saved.pop("identity")):
            raise ValueError(f"state_dir: {self.options.state_dir!r} holds the state of another search (other method, "
                             "options, initial weights or data); use a new directory or delete it.")
        epoch = int(saved.pop("epoch"))
        for key, value in saved.items():
            kind, _, name = key.partition(":")
            {"s": self.scores, "v": self.velocity, "x": self.extra}[kind][name] = value
        return epoch

    def _save(self, next_epoch: int) -> None:
        if not self.options.state_dir:
            return
        os.makedirs(self.options.state_dir, exist_ok=True)
        arrays = {f"s:{n}": v for n, v in self.scores.items()} | {f"v:{n}": v for n, v in self.velocity.items()}
        arrays |= {f"x:{n}": v for n, v in self.extra.items()}
        arrays |= {"epoch": np.asarray(next_epoch), "identity": np.asarray(io.json_digest(io.to_jsonable(self._identity())))}
        io.save_npz_atomic(self._path(), arrays)

    def run(self, mask_of, penalty=None, project=None, end_of_epoch=None, ranked=None) -> "dict[str, np.ndarray]":
        """``ranked(scores) -> {key: ∂r/∂s}``: when the mask ranks a function ``r(s)`` of the scores
        (edge-popup ranks ``|s|``), the straight-through gradient is multiplied by its derivative."""
        o = self.options
        total = o.epochs * self.steps_per_epoch
        for epoch in range(self._load(), o.epochs):
            for i, batch in enumerate(minibatches(self.data, o.batch_size, o.seed, epoch)):
                step = epoch * self.steps_per_epoch + i
                lr = 0.5 * o.lr * (1 + math.cos(math.pi * step / total))
                grads = straight_through(self.net, self.base, mask_of(self.scores), self.objective, batch)
                if ranked:
                    grads = {n: g * d for (n, g), d in zip(grads.items(), ranked(self.scores).values())}
                extra = penalty(self.scores) if penalty else {}
                for n, g in grads.items():
                    v = self.velocity[n]
                    v *= o.momentum
                    v += g + extra.get(n, 0.0)
                    self.scores[n] -= lr * v
                if project:
                    project(self.scores)
            if end_of_epoch:
                end_of_epoch(epoch, self.scores)
            self._save(epoch + 1)
        return self.scores
