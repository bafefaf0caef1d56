"""What a pruning level of :class:`tfprune.lottery.LotteryTicket` ranks the surviving weights by.

A :class:`Criterion` is a registered scorer (:mod:`tfprune.scoring`) with its scoring data, loss
and options. The default, ``Criterion()``, is the global magnitude of the trained weights
(OpenLTH); ``Criterion("obd", data=(x, y))`` prunes by Optimal Brain Damage's saliency. The run's
``config.json`` records the method, its options and a digest of the scoring data, so a run
directory resumes only under the criterion it was started with (a magnitude run's record is
``"criterion": "magnitude"`` alone, as before criteria existed).

Example:

    >>> obd = Criterion("obd", data=(x[:40], y[:40]), options={"estimator": "fisher"})
    >>> sorted(obd.config())
    ['criterion', 'criterion_data', 'criterion_options']
    >>> Criterion().config()
    {'criterion': 'magnitude'}
"""
from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Mapping

import numpy as np

from tfprune.scoring import compute_scores, get_scorer


def _digest(data) -> dict:
    x, y = (np.ascontiguousarray(np.asarray(a)) for a in data)
    h = hashlib.blake2b(digest_size=16)
    for a in (x, y):
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(memoryview(a).cast("B"))
    return {"examples": int(len(x)), "blake2b": h.hexdigest()}


@dataclasses.dataclass(frozen=True)
class Criterion:
    """A registered scorer ``method`` applied to the trained weights of each level.

    Args:
        method: a registered scorer name (not a mask search: those learn a mask at init).
        data: ``(x, y)`` arrays, the scoring data of a scorer with ``needs_data``.
        loss: the scorer's loss (default: the run's training loss).
        options: the scorer's options (``{"estimator": "exact"}`` for OBD).
    """

    method: str = "magnitude"
    data: Any = None
    loss: Any = None
    options: Mapping = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        scorer = get_scorer(self.method)
        unknown = sorted(set(self.options) - set(scorer.options))
        if unknown:
            raise TypeError(f"criterion.options: {unknown[0]!r} is not an option of method {self.method!r}; its "
                            f"options: {list(scorer.options) or 'none'}.")
        if scorer.learns_mask:
            raise ValueError(f"criterion.method: got {self.method!r}, a mask search at initialization; allowed: a "
                             "scorer of the trained weights (magnitude, snip, obd, ...).")
        if scorer.needs_data and self.data is None:
            raise ValueError(f"criterion.data: method {self.method!r} needs scoring data; got None. Pass "
                             "data=(x, y) arrays.")
        if self.data is not None and not (isinstance(self.data, (tuple, list)) and len(self.data) == 2):
            raise TypeError(f"criterion.data: expected (x, y) arrays, got {type(self.data).__name__}.")

    @property
    def keep(self) -> str:
        return get_scorer(self.method).keep

    def config(self) -> dict:
        """What ``config.json`` records (and a resumed run must match)."""
        if self.method == "magnitude" and not self.options and self.data is None:
            return {"criterion": "magnitude"}
        out = {"criterion": self.method, "criterion_options": dict(sorted(self.options.items()))}
        if self.data is not None:
            out["criterion_data"] = _digest(self.data)
        return out

    def scores(self, model, masks, training_loss) -> "dict[str, np.ndarray]":
        """The scores of ``model``'s weights (pruned ones: ``masks``)."""
        data, loss = None, None
        if get_scorer(self.method).needs_data:
            data, loss = self.data, self.loss if self.loss is not None else training_loss
        return compute_scores(model, self.method, data=data, loss=loss, masks=masks, **self.options)
