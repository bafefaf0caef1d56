"""absl flags shared by the training binaries, mapped 1:1 onto :class:`tfprune.training.Config`.

Each flag is named after the ``Config`` field it sets, and :func:`config_from_flags` copies
them over by name, so there is one place where a parameter is defined (the ``Config`` field and
its default) and one place where it is used. The checks are absl validators: a bad value or a
bad combination stops the binary before anything is built, with a message naming the flag.

* :func:`define_common_flags`: the model/data/optimizer flags every binary takes
  (``--dataset --model --epochs --batch_size --lr --optimizer --out_dir`` ...).
* :func:`define_run_flags`: the flags of a single run (``--method --sparsity --seed
  --early_step --sanity --export_tflite --quantization --tensorboard``); ``--rewind_step`` and
  ``--prune_fraction`` (lottery) are common flags, the sweep uses them too.

Both are idempotent, so binaries imported into the same process (tests) share the definitions.
"""
from __future__ import annotations

import dataclasses

from absl import flags

from tfprune import data as tfp_data
from tfprune import models as tfp_models
from tfprune import training

DEFAULTS = training.Config()

COMMON_FLAGS = ("dataset", "model", "epochs", "batch_size", "lr", "optimizer", "out_dir", "max_train",
                "max_test", "scope", "tfmot_frequency", "tfmot_end_fraction", "per_class", "rewind_step", "prune_fraction", "verbose")
RUN_FLAGS = ("method", "sparsity", "seed", "early_step", "sanity", "export_tflite",
             "quantization", "tensorboard")



def _defined(names, flag_values) -> bool:
    present = [n for n in names if n in flag_values]
    return len(present) == len(names)


def define_common_flags(flag_values=flags.FLAGS, *, out_dir_help: str = "output directory") -> None:
    """Defines the flags shared by ``examples/train.py``, ``examples/demo.py`` and the sweep."""
    if _defined(COMMON_FLAGS, flag_values):
        return
    fv = {"flag_values": flag_values}
    d = DEFAULTS
    flags.DEFINE_enum("dataset", d.dataset, list(tfp_data.names()), "dataset (tfprune.data).", **fv)
    flags.DEFINE_enum("model", d.model, list(tfp_models.names()), "model (tfprune.models).", **fv)
    flags.DEFINE_integer("epochs", d.epochs, "training epochs (every method trains the same steps).",
                         lower_bound=1, **fv)
    flags.DEFINE_integer("batch_size", d.batch_size, "training and test batch size.", lower_bound=1, **fv)
    flags.DEFINE_float("lr", d.lr, "learning rate (constant).", **fv)
    flags.DEFINE_enum("optimizer", d.optimizer, list(training.OPTIMIZERS),
                      "sgd, momentum (SGD with momentum 0.9) or adam.", **fv)
    flags.DEFINE_string("out_dir", None, out_dir_help, **fv)
    flags.DEFINE_integer("max_train", None, "keep only the first N training examples (quick runs).",
                         lower_bound=1, **fv)
    flags.DEFINE_integer("max_test", None, "keep only the first N test examples (quick runs).",
                         lower_bound=1, **fv)
    flags.DEFINE_enum("scope", d.scope, list(training.SCOPES),
                      "ranking of the pruning-at-init methods: one global ranking or per layer.", **fv)
    flags.DEFINE_integer("tfmot_frequency", d.tfmot_frequency,
                         "tfmot_gradual: TF-MOT PolynomialDecay frequency (steps between re-rankings).",
                         lower_bound=1, **fv)
    flags.DEFINE_float("tfmot_end_fraction", d.tfmot_end_fraction,
                       "tfmot_gradual: fraction of training over which sparsity ramps 0 -> target.", **fv)
    flags.DEFINE_integer("per_class", d.per_class, "snip/grasp: scoring batch, examples per class.",
                         lower_bound=1, **fv)
    flags.DEFINE_integer("rewind_step", d.rewind_step,
                         "lottery: rewind surviving weights to their value after this many steps (0: LTH reset).",
                         lower_bound=0, **fv)
    flags.DEFINE_float("prune_fraction", d.prune_fraction,
                       "lottery: fraction of the remaining weights pruned per level (adjusted so that the "
                       "last level lands exactly on --sparsity).", **fv)
    flags.DEFINE_integer("verbose", d.verbose, "Keras fit verbosity: 1 progress bar, 2 one line/epoch, 0 quiet.",
                         lower_bound=0, upper_bound=2, **fv)
    flags.register_validator("lr", lambda v: v > 0, message="--lr must be > 0.", **fv)
    flags.register_validator("prune_fraction", lambda v: 0 < v < 1, message="--prune_fraction must be in (0, 1).",
                             **fv)
    flags.register_validator("tfmot_end_fraction", lambda v: 0 < v <= 1,
                             message="--tfmot_end_fraction must be in (0, 1].", **fv)


def define_run_flags(flag_values=flags.FLAGS) -> None:
    """Defines the flags of one training run (``examples/train.py``) and their combination checks."""
    define_common_flags(flag_values, out_dir_help="writes result.json (and TensorBoard logs, .tflite) here; default "
                        "runs/<dataset>-<model>-<method>-s<sparsity>-seed<seed>.")
    if _defined(RUN_FLAGS, flag_values):
        return
    fv = {"flag_values": flag_values}
    d = DEFAULTS
    flags.DEFINE_enum("method", d.method, list(training.METHODS),
                      "pruning method: dense (no pruning), pruning at init (random, magnitude, snip, grasp, "
                      "synflow), lottery (iterative magnitude pruning with rewinding) or tfmot_gradual "
                      "(TF-MOT prune_low_magnitude + PolynomialDecay).", **fv)
    flags.DEFINE_float("sparsity", d.sparsity, "fraction of prunable weights removed, in [0, 1).",
                       lower_bound=0.0, **fv)
    flags.DEFINE_integer("seed", d.seed, "seed of the initialization, data order and scorers.", lower_bound=0, **fv)
    flags.DEFINE_integer("early_step", d.early_step,
                         "pruning-at-init methods: train dense this many steps, then prune (0: at init).",
                         lower_bound=0, **fv)
    flags.DEFINE_enum("sanity", d.sanity, list(training.SANITY_CHECKS),
                      "sanity check of the masks: shuffle (per layer), reinit (fresh weights) or invert "
                      "(keep the lowest scores).", **fv)
    flags.DEFINE_bool("export_tflite", d.export_tflite, "export the stripped model to a verified sparse .tflite.",
                      **fv)
    flags.DEFINE_enum("quantization", d.quantization, list(training.QUANTIZATIONS),
                      "TFLite quantization (with --export_tflite).", **fv)
    flags.DEFINE_bool("tensorboard", d.tensorboard, "write TensorBoard logs to out_dir/tensorboard.", **fv)
    flags.register_validator("sparsity", lambda v: v < 1.0,
                             message="--sparsity must be < 1 (0.98 keeps 2% of the weights).", **fv)

    def check_combination(values):
        values = dict(values)
        values["out_dir"] = values["out_dir"] or "<default out_dir>"  # the binary fills in a default
        problems = training.config_problems(dataclasses.replace(DEFAULTS, **values))
        if problems:
            raise flags.ValidationError(" ".join("--" + p for p in problems))
        return True

    names = [n for n in COMMON_FLAGS + RUN_FLAGS]
    flags.register_multi_flags_validator(names, check_combination, **fv)


def config_from_flags(flag_values=flags.FLAGS, **overrides) -> "training.Config":
    """A :class:`~tfprune.training.Config` from every defined flag named like one of its fields."""
    fields = {f.name for f in dataclasses.fields(training.Config)}
    values = {name: flag_values[name].value for name in fields if name in flag_values}
    values.update(overrides)
    return training.Config(**values)
