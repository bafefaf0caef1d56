"""The scorer procedures: any registered scorer (``random``, ``magnitude``, ``snip``, ``grasp``,
``synflow``, or yours) used at initialization (``prune_at_init``), after ``early_step`` training
steps (``early``), or with a sanity check of its masks (``sanity``: shuffle / reinit / invert).

``--method=<scorer>`` is shorthand for these (see :func:`tfprune.experiment.registry.resolve`).
``prune_at_init`` calls :func:`tfprune.prune_at_init` and trains with one ``fit``; ``early`` and
``sanity`` run on :mod:`tfprune.lottery`'s resumable engine (:func:`tfprune.lottery.prune_early`,
:func:`tfprune.lottery.sanity_checks`) in ``out_dir/run``. SNIP and GraSP (every scorer whose
``needs_data`` is set) score a balanced batch of ``per_class`` training examples per class; the
mask searches (``edge_popup``, ``gem_miner``) learn on the whole training set for
``search_epochs`` (resumable in ``out_dir/search``), and the result records the mask's test
accuracy before any weight training and the epochs spent (search + training).
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from tfprune import scoring
from tfprune.experiment.registry import Procedure, register_procedure, setting

SCOPES = ("global", "layerwise")
#: ``none`` and the variants of :func:`tfprune.lottery.sanity_checks` but ``unmodified`` (a test checks it).
SANITY_CHECKS = ("none", "shuffle", "reinit", "invert")


def is_search(scorer: str) -> bool:
    """Whether ``scorer`` is a registered mask search (:attr:`tfprune.scoring.Scorer.learns_mask`)."""
    return scorer in scoring.scorer_names() and scoring.get_scorer(scorer).learns_mask


@dataclasses.dataclass(frozen=True)
class ScorerSettings:
    scorer: str = setting("", "the scorer of method=prune_at_init/early/sanity (with --method=<scorer> it is that "
                              "scorer).", choices=scoring.scorer_names)
    scope: str = setting("global", "ranking of the pruning methods: one global ranking or per layer.",
                         choices=SCOPES)
    per_class: int = setting(10, "snip/grasp (scorers that need data): scoring batch, examples per class.",
                             minimum=1)
    search_epochs: int = setting(10, "edge_popup/gem_miner: epochs of the mask search on the training set (weights "
                                     "frozen at initialization; batches of --batch_size).", minimum=1,
                                 for_scorers=is_search)
    search_lr: float = setting(0.0, "edge_popup/gem_miner: learning rate of the scores (SGD, momentum 0.9, cosine "
                                    "decay); 0: the method's default.", minimum=0.0, for_scorers=is_search)
    penalty: float = setting(1e-4, "gem_miner: weight of the L2 penalty on the scores.", minimum=0.0,
                             for_scorers=is_search)
    prune_every: int = setting(1, "gem_miner: prune the lowest scores for good every this many search epochs.",
                               minimum=1, for_scorers=is_search)


@dataclasses.dataclass(frozen=True)
class EarlySettings(ScorerSettings):
    early_step: int = setting(0, "scoring methods: train dense this many steps, then prune (0: at init).",
                              minimum=0)

    def problems(self, config):
        return self._step_problems(config) + ([] if self.early_step > 0 else [
            "early_step=0: method=early prunes after early_step > 0 training steps (0 is method=prune_at_init)."])

    def _step_problems(self, config):
        steps = config.total_steps()
        return [] if self.early_step < steps else [
            f"early_step={self.early_step} must be smaller than the training length ({config.epochs} epochs x "
            f"{steps // config.epochs} steps = {steps})."]


@dataclasses.dataclass(frozen=True)
class SanitySettings(EarlySettings):
    sanity: str = setting("none", "sanity check of the masks: shuffle (per layer), reinit (fresh weights) or "
                                  "invert (keep the lowest scores).", choices=SANITY_CHECKS)

    def problems(self, config):
        return self._step_problems(config) + ([] if self.sanity != "none" else [
            "sanity=none: method=sanity needs --sanity=shuffle|reinit|invert."])


def score_arguments(ctx) -> "tuple[object, dict]":
    """``(data, options)`` the run's scorer is called with: a mask search gets the whole training set,
    its settings and, with an ``out_dir``, a state directory to resume from; another data-dependent
    scorer gets the balanced batch."""
    s = ctx.settings
    if not is_search(s.scorer):
        return ctx.scoring_batch(), {}
    d, takes = ctx.datasets, scoring.get_scorer(s.scorer).options
    options = {"epochs": s.search_epochs, "batch_size": ctx.config.batch_size, "penalty": s.penalty,
               "prune_every": s.prune_every, **({"lr": s.search_lr} if s.search_lr > 0 else {})}
    if ctx.config.out_dir:
        options["state_dir"] = os.path.join(ctx.config.out_dir, "search")
    return (d.x_train, d.y_train), {k: v for k, v in options.items() if k in takes}


def accuracy_at_init(model, datasets) -> float:
    """Test accuracy of ``model`` as it is (masked weights at θ0, before any weight training)."""
    logits = model.predict(datasets.x_test, batch_size=1024, verbose=0)
    return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == np.asarray(datasets.y_test)))


def run_prune_at_init(ctx):
    from tfprune.api import prune_at_init
    from tfprune.experiment.procedures.fit import fit_run

    def prune(model, total_steps):
        s = ctx.settings
        data, options = score_arguments(ctx)
        pruned = prune_at_init(model, s.scorer, ctx.config.sparsity, data=data, loss=ctx.make_loss(),
                               scope=s.scope, seed=ctx.config.seed, **options)
        info = {"scope": s.scope, "per_class": s.per_class if scoring.get_scorer(s.scorer).needs_data
                and not is_search(s.scorer) else None}
        if is_search(s.scorer):
            info.update({k: v for k, v in options.items() if k != "state_dir"},
                        test_accuracy_before_training=accuracy_at_init(pruned, ctx.datasets),
                        epochs_spent=options["epochs"] + ctx.config.epochs)
        return pruned, info

    return fit_run(ctx, prune)


def _engine_arguments(ctx):
    s, d = ctx.settings, ctx.datasets
    data, options = score_arguments(ctx)
    return dict(model=ctx.build_model, train_data=(d.x_train, d.y_train), validation_data=(d.x_test, d.y_test),
                method=s.scorer, sparsity=ctx.config.sparsity, prune_step=s.early_step, run_dir=ctx.run_dir,
                training=ctx.spec(), scope=s.scope, score_data=data, method_options=options, train_dense=False)


def run_early(ctx):
    from tfprune import lottery

    results = lottery.prune_early(**_engine_arguments(ctx))
    return _phase_result(ctx, results, "level_1", api="tfprune.lottery.prune_early")


def run_sanity(ctx):
    from tfprune import lottery

    results = lottery.sanity_checks(variants=[ctx.settings.sanity], **_engine_arguments(ctx))
    return _phase_result(ctx, results, ctx.settings.sanity, api="tfprune.lottery.sanity_checks")


def _phase_result(ctx, results, phase, api):
    from tfprune.experiment.procedures.engine import engine_result, trained_phase_model

    s = ctx.settings
    row = results.by_name(phase)
    model = trained_phase_model(ctx, phase)
    sanity = getattr(s, "sanity", "none")
    return model, engine_result(ctx, row, method_info={"phase": phase, "prune_step": s.early_step, "sanity": sanity,
                                                       "scope": s.scope, "run_dir": ctx.run_dir, "api": api})


_COMMON = dict(uses_scorer=True)
register_procedure(Procedure(name="prune_at_init", settings=ScorerSettings, run=run_prune_at_init, distributes=True,
                             description="a scorer at initialization, masks fixed during training", grid=None,
                             **_COMMON))
register_procedure(Procedure(name="early", settings=EarlySettings, run=run_early, needs_out_dir=True,
                             distributes=True, grid=None,
                             description="a scorer after early_step training steps (training continues from there)",
                             **_COMMON))
register_procedure(Procedure(name="sanity", settings=SanitySettings, run=run_sanity, needs_out_dir=True,
                             distributes=True, grid=None,
                             description="a scorer's masks shuffled, re-initialized or inverted (Frankle et al. 2021)",
                             **_COMMON))
