"""``tfmot_gradual``: TF-MOT's own ``prune_low_magnitude`` with a ``PolynomialDecay`` schedule,
the peer baseline. Sparsity ramps from 0 to the target (cubic, TF-MOT's default power 3) between
step 0 and ``tfmot_end_fraction`` of the training steps, re-ranking every ``tfmot_frequency``
steps; TF-MOT ranks per layer (every Dense/Conv kernel at the target), its own default, and the
run trains exactly the same epochs, batches and optimizer as every other method."""
from __future__ import annotations

import dataclasses

from tfprune.experiment.registry import Procedure, register_procedure, setting


@dataclasses.dataclass(frozen=True)
class TfmotSettings:
    tfmot_frequency: int = setting(100, "tfmot_gradual: TF-MOT PolynomialDecay frequency (steps between "
                                        "re-rankings).", minimum=1)
    tfmot_end_fraction: float = setting(2.0 / 3.0, "tfmot_gradual: fraction of training over which sparsity "
                                                   "ramps 0 -> target, in (0, 1].", minimum=0.0, maximum=1.0,
                                        open_minimum=True)


def tfmot_schedule(sparsity: float, settings: TfmotSettings, total_steps: int):
    """TF-MOT's ``PolynomialDecay``: 0 → ``sparsity`` over the first ``tfmot_end_fraction`` of
    ``total_steps``, every ``tfmot_frequency`` steps.

    ``end_step`` is rounded down to a multiple of the frequency so that the last pruning step
    lands exactly on ``end_step`` (where the schedule reaches the target); for runs shorter than
    the frequency, the frequency shrinks to ``end_step``.
    """
    from tfprune import _keras

    end = max(1, int(settings.tfmot_end_fraction * total_steps))
    frequency = min(settings.tfmot_frequency, end)
    end = (end // frequency) * frequency
    return _keras.tfmot().PolynomialDecay(initial_sparsity=0.0, final_sparsity=float(sparsity),
                                                   begin_step=0, end_step=end, frequency=frequency)


def run(ctx):
    from tfprune import _keras
    from tfprune.experiment.procedures.fit import fit_run

    def prune(model, total_steps):
        schedule = tfmot_schedule(ctx.config.sparsity, ctx.settings, total_steps)
        pruned = _keras.tfmot().prune_low_magnitude(model, pruning_schedule=schedule)
        return pruned, {"schedule": "PolynomialDecay", "begin_step": schedule.begin_step,
                        "end_step": schedule.end_step, "frequency": schedule.frequency, "power": schedule.power,
                        "ranking": "layerwise magnitude (TF-MOT)"}

    return fit_run(ctx, prune)


register_procedure(Procedure(
    name="tfmot_gradual", settings=TfmotSettings, run=run, kerases=(2,), distributes=True,
    keras_note="TF-MOT's prune_low_magnitude wraps tf_keras (Keras 2) models only; use --keras=2",
    description="TF-MOT prune_low_magnitude with a PolynomialDecay schedule (the peer baseline)"))
