"""Results of the procedures that train on :mod:`tfprune.lottery`'s resumable engine
(``lottery``, ``finetune``, ``early``, ``sanity``): a phase's row → the run's result dict, and
the trained model of a phase rebuilt from its run directory (tf_keras or Keras 3 alike)."""
from __future__ import annotations

import os

from tfprune import io, lottery
from tfprune.experiment.runner import RunContext, make_result


def _history(epochs: list) -> dict:
    """The engine's per-epoch history rows as Keras' ``{metric: [value per epoch]}``."""
    history: dict = {}
    for epoch in epochs:
        for key, value in epoch.items():
            if key not in ("epoch", "start_step", "end_step"):
                history.setdefault(key, []).append(value)
    return history


def engine_result(ctx: RunContext, row, method_info: dict) -> dict:
    """The result dict of one completed engine phase (a lottery level, ``level_1``, a variant);
    its ``test_accuracy`` is the engine's evaluation of the test split after the last epoch."""
    report = row.metrics["sparsity_report"]
    return make_result(ctx, test_accuracy=row.val_accuracy, test_loss=row.val_loss,
                       train_accuracy=row.train_accuracy, train_loss=row.train_loss, report=report,
                       initial_sparsity=report["sparsity"], prune_time=0.0, train_time=row.wall_time_s,
                       steps=row.steps, history=_history(row.metrics["history"]), method_info=method_info)


def trained_phase_model(ctx: RunContext, phase: str):
    """A fresh build of the model with the phase's masks and trained weights (and the weights it
    started training from as the run's ``start_weights``)."""
    path = os.path.join(ctx.run_dir, phase)
    model = lottery.apply_ticket(ctx.build_model(), os.path.join(path, "mask.npz"))
    lottery.load_phase_weights(model, os.path.join(path, "trained_weights.npz"))
    set_start_weights(ctx, path)
    return model


def set_start_weights(ctx: RunContext, phase_dir: str) -> None:
    """The run's ``start_weights``: the phase's ``rewind_weights.npz`` (masked; θk for a rewound
    lottery level or a scorer pruned at step k, fresh weights for ``reinit``)."""
    ctx.start_weights = io.load_npz(os.path.join(phase_dir, "rewind_weights.npz"))
