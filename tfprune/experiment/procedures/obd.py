"""``obd``: Optimal Brain Damage's procedure (LeCun et al. 1990), train → score → prune a fraction
→ retrain, repeated to the target sparsity, on :class:`tfprune.lottery.LotteryTicket` with
``strategy="finetune"`` and the ``obd`` scorer (:mod:`tfprune.scoring.obd`) as its criterion.

Level 0 trains the dense model for ``epochs``; each level scores the trained survivors by their
saliency ½·h_kk·w² on ``obd_per_class`` training examples per class (a balanced batch drawn from
the seed; 100 per class: OBD scores a trained network and wants more data than SNIP's 10),
prunes the lowest ``prune_fraction`` of them (lowered a little so that the last level lands on
``--sparsity``, as for ``lottery``) and fine-tunes the survivors ``epochs`` — the same levels
and training budget as ``lottery``. The sweep (``--methods=obd``; not in its default grid) takes every cell from one trajectory
per seed.
The method name shadows the scorer's: ``--method=prune_at_init --scorer=obd`` scores at init.
"""
from __future__ import annotations

import dataclasses

from tfprune.experiment.procedures.lottery import FinetuneSettings, finish, level_results, ticket
from tfprune.experiment.registry import Procedure, register_procedure, setting

ESTIMATORS = ("gauss_newton", "exact", "hutchinson", "fisher")


@dataclasses.dataclass(frozen=True)
class ObdSettings(FinetuneSettings):
    estimator: str = setting("gauss_newton", "obd: the Hessian diagonal (gauss_newton: OBD's own, the Fisher for "
                                             "cross-entropy; exact: small models only; hutchinson; fisher: the "
                                             "empirical Fisher).", choices=ESTIMATORS)
    obd_per_class: int = setting(100, "obd: scoring examples per class (a balanced batch of the training set).",
                                 minimum=1)
    samples: int = setting(100, "obd with estimator=hutchinson: Rademacher vectors per level.", minimum=1)

    def problems(self, config):
        return [] if self.estimator == "hutchinson" or self.samples == 100 else [
            f"samples={self.samples} applies to estimator=hutchinson only (estimator={self.estimator})."]


def criterion(ctx):
    from tfprune import lottery

    s = ctx.settings
    options = {"estimator": s.estimator, "seed": ctx.config.seed}
    if s.estimator == "hutchinson":
        options["samples"] = s.samples
    data = ctx.datasets.balanced_batch(per_class=s.obd_per_class, seed=ctx.config.seed)
    return lottery.Criterion("obd", data=data, loss=ctx.make_loss(), options=options)


def _ranking(ctx) -> str:
    s = ctx.settings
    return (f"{s.scope} OBD saliency 1/2 h w^2 ({s.estimator}, {s.obd_per_class} examples per class) of trained "
            "weights, fine-tune the survivors")


def _ticket(ctx):
    return ticket(ctx, criterion(ctx))


def run(ctx):
    lt = _ticket(ctx)
    return finish(ctx, lt, level_results(ctx, lt, _ranking(ctx)))


def trajectory(ctx) -> "list[dict]":
    """Every level's result of the run (the sweep's cells come from these)."""
    return level_results(ctx, _ticket(ctx), _ranking(ctx))


# ``replace``: the procedure takes the ``obd`` scorer's name as a --method (see the module docstring).
register_procedure(Procedure(name="obd", settings=ObdSettings, run=run, needs_out_dir=True,
                             distributes=True, grid="trajectory",
                             trajectory=trajectory, default_grid=False, description="Optimal Brain Damage: Train-(Prune-Finetune)^n by "
                             "the saliency 1/2 h w^2 of the trained weights"), replace=True)
