"""``dense``: the unpruned model, trained like every other method (the reference)."""
from __future__ import annotations

import dataclasses

from tfprune.experiment.registry import Procedure, register_procedure


@dataclasses.dataclass(frozen=True)
class DenseSettings:
    """``dense`` has no settings."""


def run(ctx):
    from tfprune.experiment.procedures.fit import fit_run  # (procedures import TensorFlow when they run)

    return fit_run(ctx, None)


register_procedure(Procedure(
    name="dense", settings=DenseSettings, run=run, distributes=True,
    description="no pruning: the dense reference (sparsity must be 0)", needs_sparsity=False, grid="reference"))
