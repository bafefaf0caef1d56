"""``dense``: the unpruned model, trained like every other method (the reference)."""
from __future__ import annotations

import dataclasses

from tfprune.experiment.procedures.fit import fit_run
from tfprune.experiment.registry import Procedure, register_procedure


@dataclasses.dataclass(frozen=True)
class DenseSettings:
    """``dense`` has no settings."""


register_procedure(Procedure(
    name="dense", settings=DenseSettings, run=lambda ctx: fit_run(ctx, None),
    description="no pruning: the dense reference (sparsity must be 0)", needs_sparsity=False, grid="reference"))
