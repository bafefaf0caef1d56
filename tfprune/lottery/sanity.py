"""The sanity checks of Frankle et al. 2021 ("Pruning neural networks at initialization: why are
we missing the mark?") as one call.

For a method and a sparsity, the masks are computed once on θk (k = ``prune_step``, 0 = at
initialization) and each variant is trained from step k to T side by side:

* ``unmodified``: the method's masks, weights θk;
* ``shuffle``: each layer's mask randomly permuted (same number of weights per layer);
* ``reinit``: the same masks, fresh weights drawn from the model's own initializers (and a
  new optimizer); initializers with a fixed seed (the zoo's, e.g.) are re-seeded from the run's
  seed, so the weights are new draws from the same distributions;
* ``invert``: the highest-scoring weights pruned instead of the lowest (for GraSP, which keeps
  its lowest scores, the reverse), through ``tfprune.compute_masks(..., keep=<the method's opposite>)``.

If a method's accuracy survives ``shuffle``/``reinit`` it only picked per-layer densities, not
individual weights; ``invert`` should be clearly worse for a meaningful score.
"""
from __future__ import annotations

import os
import warnings
import zlib
from typing import Mapping, Sequence

import numpy as np

from tfprune.lottery._engine import Engine
from tfprune.lottery.early import EarlySettings, _EarlySetup
from tfprune.lottery.masks import shuffle_masks
from tfprune.lottery.results import RunResults, load_results
from tfprune.lottery.ticket import save_ticket
from tfprune.spec import TrainingSpec

__all__ = ["VARIANTS", "sanity_checks"]

VARIANTS = ("unmodified", "shuffle", "reinit", "invert")


def _derived_seed(seed: int, label: str) -> int:
    return zlib.crc32(f"{seed}/{label}".encode()) & 0x7FFFFFFF


def sanity_checks(model, train_data, validation_data=None, *, training: TrainingSpec, run_dir, method: str,
                  sparsity: float, variants: Sequence[str] = VARIANTS, prune_step: int = 0, scope: str = "global",
                  score_data=None, score_loss=None, method_options: "Mapping | None" = None,
                  train_dense: bool = True, reset_optimizer: bool = False) -> RunResults:
    """Trains ``method``'s pruned network and its sanity-check variants; returns them side by side.

    Args:
        variants: any of ``"unmodified"``, ``"shuffle"``, ``"reinit"``, ``"invert"``.
        training, method, sparsity, prune_step, scope, score_data, score_loss, method_options,
            train_dense, reset_optimizer: as for :func:`tfprune.lottery.prune_early` (the dense
            reference is ``level_0``; ``reinit`` always starts with a new optimizer).
        model, train_data, validation_data, run_dir: as for :class:`tfprune.lottery.LotteryTicket`.

    Each variant is a directory ``run_dir/<variant>/`` in the lottery run format (mask.npz,
    rewind_weights.npz, trained_weights.npz, metrics.json, ...); the unmodified masks are also
    kept as ``run_dir/method_mask.npz``. Resumable like every run.

    Returns:
        :class:`RunResults` with rows ``level_0`` (dense, if trained) and one per variant.

    Example:

        >>> res = sanity_checks(build_lenet, (x, y), (x_val, y_val), method="snip", sparsity=0.9,
        ...                     run_dir="runs/sanity_snip",
        ...                     training=TrainingSpec(loss=loss, epochs=1, batch_size=32, seed=0, verbose=0))
        >>> [r.name for r in res]   # print(res): the variants side by side
        ['level_0', 'unmodified', 'shuffle', 'reinit', 'invert']
    """
    if isinstance(variants, str):
        variants = [variants]
    variants = list(variants)
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown or not variants or len(set(variants)) != len(variants):
        raise ValueError(f"variants: got {variants!r}; allowed: a non-empty list without repeats of "
                         f"{', '.join(map(repr, VARIANTS))}.")
    settings = EarlySettings(method=method, sparsity=sparsity, prune_step=prune_step, scope=scope,
                             score_data=score_data, score_loss=score_loss, method_options=method_options,
                             train_dense=train_dense, reset_optimizer=reset_optimizer)
    setup = _EarlySetup(train_data, validation_data, training, settings)
    engine = Engine(model, setup.train, setup.val, run_dir=run_dir, training=training)
    title = f"Sanity checks: {method} at sparsity {settings.sparsity}, pruned at step {setup.prune_step}"
    config = {**setup.config(), "variants": variants}
    dense_row = settings.train_dense or setup.prune_step > 0  # else level 0 only provides θ0
    try:
        done = engine.prepare("sanity", config).finished(["level_0", *variants])
        if done is not None:  # nothing to train: no lock, no write unless the summary is stale
            engine.write_summary(done if dense_row else done[1:], complete=True, extra={"title": title},
                                 best_effort=True)
            engine.barrier()
            return RunResults(load_results(run_dir).rows, title=title)
        engine.open("sanity", config)
        rows = []
        if dense_row:
            rows.append(setup.dense_phase(engine))
        else:  # at init, no dense reference: only θ0 is needed as the rewind point
            setup.dense_phase(engine)
        engine.write_summary(rows, complete=False, extra={"title": title})
        method_masks = None

        def unmodified_masks():
            nonlocal method_masks
            if method_masks is None:
                path = engine.path("method_mask.npz")
                if os.path.exists(path):
                    method_masks = engine.load_masks_file(path)
                else:
                    method_masks = setup.masks(engine, seed=engine.seed)
                    save_ticket(path, method_masks, engine.model,
                                info={"method": method, "sparsity": settings.sparsity})
            return method_masks

        for variant in variants:
            if engine.is_complete(variant):
                rows.append(engine.load_metrics(variant))
                engine.write_summary(rows, complete=False, extra={"title": title})
                continue
            if os.path.exists(engine.path(variant, "mask.npz")):
                masks = engine.load_masks(variant)
            elif variant == "invert":
                masks = setup.masks(engine, seed=engine.seed, invert=True)
            elif variant == "shuffle":
                masks = shuffle_masks(unmodified_masks(), seed=_derived_seed(engine.seed, "shuffle"))
            else:
                masks = unmodified_masks()
            start = _variant_start(engine, setup, variant)
            rows.append(engine.train_phase(variant, masks, start, setup.prune_step, setup.total_steps,
                                           info={"method": method, "variant": variant}))
            engine.write_summary(rows, complete=False, extra={"title": title})
        engine.write_summary(rows, complete=True, extra={"title": title})
        engine.barrier()  # (multi-worker: the chief's files are complete before anyone reads them)
    finally:
        engine.close()
    return RunResults(load_results(run_dir).rows, title=title)


def _variant_start(engine: Engine, setup: _EarlySetup, variant: str):
    def start():
        weights, optimizer_state = setup.rewind_point(engine)
        if variant != "reinit":
            return weights, (None if setup.settings.reset_optimizer else optimizer_state)
        fresh = engine.fresh_weights(_derived_seed(engine.seed, "reinit"))
        unchanged = [key for key, value in fresh.items()
                     if key.endswith("::0") and value.ndim >= 2 and np.array_equal(value, engine.init_weights[key])]
        if unchanged:
            # a safety net: seeded initializers are re-seeded, but a layer may draw its kernel
            # some other way (a seed fixed outside its config, a deterministic initializer)
            warnings.warn(f"reinit: the re-drawn weights of {sorted(k.split('::')[0] for k in unchanged)} equal the "
                          "original ones (a layer that fixes its initial kernel outside its config, or a "
                          "deterministic initializer?); the reinit check is then meaningless.",
                          UserWarning, stacklevel=3)
        return fresh, None

    return start
