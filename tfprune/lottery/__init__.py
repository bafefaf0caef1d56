"""Lottery tickets, magnitude-after-training baselines, pruning early in training, the sanity
checks of Frankle et al. 2021 and ticket transfer — every run resumable from its directory.

Main entry points:

* :class:`LotteryTicket` / :func:`lottery_ticket`: iterative magnitude pruning with rewinding
  (``rewind_step=0``: the original LTH reset to θ0).
* :func:`prune_finetune` (Train–(Prune–Finetune)ⁿ) and :func:`magnitude_after_training`
  (one-shot): the baselines, same run-directory format. Any of them ranks by another scorer
  with ``LotteryTicket(criterion=Criterion("obd", data=(x, y)))`` (Optimal Brain Damage).
* :func:`prune_early`: any scorer (SNIP, GraSP, SynFlow, magnitude, random) applied after k
  training steps, training continuing from θk.
* :func:`sanity_checks`: ``unmodified``, ``shuffle``, ``reinit``, ``invert`` side by side.
* :func:`save_ticket` / :func:`load_ticket` / :func:`apply_ticket`: masks with their architecture,
  applied to a freshly built model (e.g. trained on another dataset);
  :func:`phase_weights` / :func:`save_phase_weights` / :func:`load_phase_weights`: weights in the
  run format.

Every procedure takes tf_keras models and Keras 3 models (TensorFlow, JAX or PyTorch backend)
alike, and writes the same run directory for both (:mod:`tfprune.lottery._kit`).
* Pure mask transforms: :func:`shuffle_masks`, :func:`invert_keep`, :func:`prune_level`.

Every procedure takes ``training=``, a :class:`tfprune.spec.TrainingSpec` (optimizer, loss,
metrics, batching, training length, seed, determinism, verbosity: one line per level by default),
and its own settings. Every file of a run carries a checksum verified on every read; a damaged
file raises :class:`CorruptFileError` naming it and what to delete.

Example (a resumable lottery run; call it again after an interruption and it continues)::

    import tf_keras as keras
    from tfprune import lottery
    from tfprune.spec import TrainingSpec

    def build():
        return keras.Sequential([keras.Input((784,)), keras.layers.Dense(300, activation="relu"),
                                 keras.layers.Dense(100, activation="relu"), keras.layers.Dense(10)])

    training = TrainingSpec(optimizer="adam", learning_rate=1.2e-3, epochs=2, seed=0,
                            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    lt = lottery.LotteryTicket(build, (x, y), (x_val, y_val), training=training, run_dir="runs/lenet",
                               prune_fraction=0.2, target_sparsity=0.98)
    print(lt.run())
"""
from tfprune.io import CorruptFileError
from tfprune.lottery._phase import plan_segments
from tfprune.lottery._rundir import RunConfigError, RunInUseError
from tfprune.lottery.criterion import Criterion
from tfprune.lottery.early import prune_early
from tfprune.lottery.masks import (check_layer_fractions, count_kept, density, invert_keep, level_densities,
                                   levels_for_sparsity, prune_level, shuffle_masks)
from tfprune.lottery.results import LevelResult, RunResults, load_results
from tfprune.lottery.run import LotteryTicket, lottery_ticket, magnitude_after_training, prune_finetune
from tfprune.lottery.sanity import VARIANTS, sanity_checks
from tfprune.lottery.ticket import (Ticket, TicketMismatchError, apply_ticket, load_phase_weights, load_ticket,
                                    phase_weights, save_phase_weights, save_ticket, ticket_layers)

__all__ = [
    "Criterion",
    "CorruptFileError", "LevelResult", "LotteryTicket", "RunConfigError", "RunInUseError", "RunResults", "Ticket",
    "TicketMismatchError", "VARIANTS", "apply_ticket", "check_layer_fractions", "count_kept", "density",
    "invert_keep", "level_densities", "levels_for_sparsity", "load_phase_weights", "load_results", "load_ticket",
    "lottery_ticket", "magnitude_after_training", "phase_weights", "plan_segments", "prune_early", "prune_finetune",
    "prune_level", "sanity_checks", "save_phase_weights", "save_ticket", "shuffle_masks", "ticket_layers",
]
