"""``lottery`` (iterative magnitude pruning with rewinding: lottery tickets), ``finetune``
(Train–(Prune–Finetune)ⁿ, the classic baseline) and ``magnitude_after_training`` (train, prune
once to the target by global magnitude, fine-tune as long), on :class:`tfprune.lottery.LotteryTicket`.

Level 0 trains the dense model for ``epochs``; each level prunes by global magnitude the
fraction :func:`lottery_levels` gives and then rewinds the survivors to step ``rewind_step``
and retrains (``lottery``) or fine-tunes them ``epochs`` (``finetune``). The test split is the
validation data. The sweep takes every lottery cell from one such trajectory per seed.
"""
from __future__ import annotations

import dataclasses
import os

from tfprune.experiment.procedures.scorers import SCOPES
from tfprune.experiment.registry import Procedure, register_procedure, setting


@dataclasses.dataclass(frozen=True)
class FinetuneSettings:
    prune_fraction: float = setting(0.2, "lottery/finetune: fraction of the remaining weights pruned per level "
                                         "(adjusted so that the last level lands exactly on --sparsity), in (0, 1).",
                                    minimum=0.0, maximum=1.0, open_minimum=True, open_maximum=True)
    scope: str = setting("global", "ranking of the pruning methods: one global ranking or per layer.",
                         choices=SCOPES)


@dataclasses.dataclass(frozen=True)
class OneShotSettings:
    scope: str = setting("global", "ranking of the pruning methods: one global ranking or per layer.",
                         choices=SCOPES)


@dataclasses.dataclass(frozen=True)
class LotterySettings(FinetuneSettings):
    rewind_step: int = setting(0, "lottery: rewind surviving weights to their value after this many steps "
                                  "(0: LTH reset to the initial weights).", minimum=0)

    def problems(self, config):
        steps = config.total_steps()
        return [] if self.rewind_step < steps else [
            f"rewind_step={self.rewind_step} must be smaller than the steps per level ({config.epochs} epochs x "
            f"{steps // config.epochs} steps = {steps})."]


def lottery_levels(sparsity: float, prune_fraction: float) -> "tuple[int, float]":
    """``(levels, prune_fraction)``: the fewest levels of ``prune_fraction`` that reach ``sparsity``,
    with the fraction then lowered a little so that the last level lands exactly on ``sparsity``:
    ``1 - (1 - sparsity)^(1/levels)``.

    Example:
        >>> levels, fraction = lottery_levels(0.98, 0.2)
        >>> levels, round(fraction, 4)
        (18, 0.1953)
    """
    from tfprune import lottery

    levels = lottery.levels_for_sparsity(sparsity, prune_fraction)
    return levels, 1.0 - (1.0 - sparsity) ** (1.0 / levels)


def ticket(ctx, criterion=None):
    """The run's :class:`~tfprune.lottery.LotteryTicket`, trained (an interrupted run resumes);
    ``criterion`` (a :class:`~tfprune.lottery.Criterion`): what each level ranks by (magnitude)."""
    from tfprune import lottery

    s, d = ctx.settings, ctx.datasets
    if isinstance(s, OneShotSettings):  # one level straight to the target
        levels, fraction = 1, ctx.config.sparsity
    else:
        levels, fraction = lottery_levels(ctx.config.sparsity, s.prune_fraction)
    strategy = dict(rewind_step=s.rewind_step) if isinstance(s, LotterySettings) else dict(strategy="finetune")
    lt = lottery.LotteryTicket(ctx.build_model, (d.x_train, d.y_train), (d.x_test, d.y_test), run_dir=ctx.run_dir,
                               training=ctx.spec(), prune_fraction=fraction, levels=levels, scope=s.scope,
                               criterion=criterion, **strategy)
    lt.run()
    return lt


def level_results(ctx, lt, ranking: "str | None" = None) -> "list[dict]":
    """One result dict per completed level (level 0: the dense model); ``ranking`` describes the
    criterion (default: the magnitude procedures')."""
    from tfprune.experiment.procedures.engine import engine_result

    rows = list(lt.results())
    sparsities = {r.level: r.sparsity for r in rows}
    out, elapsed = [], 0.0
    for row in rows:
        elapsed += row.wall_time_s
        info = {"level": row.level, "levels": max(sparsities), "prune_fraction": lt.plan.prune_fraction,
                "scope": lt.plan.scope, "run_dir": lt.run_dir, "cumulative_train_time_s": elapsed,
                "level_sparsities": sparsities}
        if isinstance(ctx.settings, LotterySettings):
            info.update(rewind_step=lt.plan.rewind_step,
                        ranking="global magnitude of trained weights, rewind to step rewind_step")
        else:
            info.update(ranking=ranking or "global magnitude of trained weights, fine-tune the survivors")
        out.append(engine_result(ctx, row, method_info=info))
    return out


def run(ctx):
    lt = ticket(ctx)
    return finish(ctx, lt, level_results(ctx, lt))


def finish(ctx, lt, results):
    """The last level's model and result; logs the table and, with a log_dir, the trajectory."""
    from tfprune.experiment import summaries

    from tfprune.experiment.procedures.engine import set_start_weights

    set_start_weights(ctx, os.path.dirname(lt.ticket_path(len(results) - 1)))
    ctx.log(str(lt.results()))
    if ctx.log_dir:  # the trajectory: one step per level
        writer = summaries.ResultSummaries(ctx.log_dir)
        for level, result in enumerate(results):
            writer.write(result, step=level)
    return lt.model(len(results) - 1), results[-1]


def trajectory(ctx) -> "list[dict]":
    """Every level's result of the run (the sweep's cells come from these)."""
    return level_results(ctx, ticket(ctx))


register_procedure(Procedure(name="lottery", settings=LotterySettings, run=run, needs_out_dir=True,
                             distributes=True,
                             grid="trajectory", trajectory=trajectory,
                             description="lottery tickets: iterative magnitude pruning with rewinding"))
register_procedure(Procedure(name="magnitude_after_training", settings=OneShotSettings, run=run, needs_out_dir=True,
                             distributes=True,
                             grid=None, description="train, prune once to the target by global magnitude of the "
                             "trained weights, fine-tune as long (a baseline of Frankle et al. 2021)"))
register_procedure(Procedure(name="finetune", settings=FinetuneSettings, run=run, needs_out_dir=True,
                             distributes=True,
                             grid=None, trajectory=trajectory,
                             description="Train-(Prune-Finetune)^n by global magnitude (the LTH papers' baseline)"))
