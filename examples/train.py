r"""Train one model with one pruning method and report its test accuracy and sparsity.

Examples (from the repository root)::

    python examples/train.py --method=synflow --sparsity=0.98 --epochs=8
    python examples/train.py --method=tfmot_gradual --sparsity=0.98 --epochs=8 --tensorboard
    python examples/train.py --dataset=synthetic --model=lenet_300_100 --epochs=1 --out_dir=/tmp/run
    python examples/train.py --plugin=my_scorers --method=my_scorer --sparsity=0.9
    python examples/train.py --keras=3 --backend=jax --method=lottery --sparsity=0.9 --out_dir=/tmp/lt_jax

Prints a Keras progress bar, the sparsity report and the test accuracy, and writes
``<out_dir>/result.json`` (atomically). ``--out_dir`` defaults to
``runs/<dataset>-<model>-<method>-s<sparsity>-seed<seed>``. Same flags → same numbers on the
same machine (seeded, deterministic ops). ``--help`` lists every flag (generated from the
procedures' and scorers' registries); the logic lives in :func:`tfprune.experiment.run`.

``--keras=3`` runs on Keras 3 (``--keras=2``, tf_keras, is the default) on ``--backend``
(``tensorflow``, ``jax`` or ``torch``). Keras reads its backend once per process, when ``keras``
or TensorFlow is first imported, so this binary reads ``--keras``/``--backend`` from its command
line and sets ``KERAS_BACKEND`` before it imports anything else (plugins included); the run
checks it again. Keras 3 runs write ``model.keras`` instead of ``model.h5``; ``tfmot_gradual``,
``--export_tflite`` and ``--tensorboard`` need ``--keras=2``.

``--strategy=mirrored`` (``--cpu_replicas=N`` on a CPU-only machine) or ``--strategy=multi_worker``
(``TF_CONFIG``) trains the methods on the resumable engine (lottery, finetune, early, sanity,
obd) under ``tf.distribute``; every worker runs the same command (docs/distributed_training.md)::

    python examples/train.py --dataset=synthetic --method=lottery --sparsity=0.5 --epochs=1 \
        --strategy=mirrored --cpu_replicas=2 --out_dir=/tmp/lt_mirrored
"""
import os
import sys

if __package__ in (None, ""):  # `python examples/train.py`: use this checkout's tfprune
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(1, os.getcwd())  # --plugin modules in the current directory
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402  (absl.logging defines its flags, e.g. --verbosity, on import)

from tfprune import experiment  # noqa: E402  (imports neither Keras nor TensorFlow)
from tfprune.experiment import flags as experiment_flags  # noqa: E402
from tfprune.experiment import flavor  # noqa: E402

experiment_flags.select_keras()  # KERAS_BACKEND from --keras=3 --backend=..., before anything imports Keras
experiment_flags.import_plugins()  # before the flags: registered scorers/procedures become --method values
experiment_flags.define_run_flags()
flags.adopt_module_key_flags(experiment_flags)  # --help lists the shared flags too
FLAGS = flags.FLAGS


def default_out_dir(config: experiment.Config) -> str:
    keras = "" if config.keras == 2 else f"-keras3_{config.backend}"
    return os.path.join("runs", f"{config.dataset}-{config.model}-{config.method}-s{config.sparsity:g}-seed{config.seed}"
                        f"{keras}")


def config_from_flags() -> experiment.Config:
    config = experiment_flags.config_from_flags(FLAGS)
    if not config.out_dir:
        config = config.replace(out_dir=default_out_dir(config))
    return config


def main(argv):
    if len(argv) > 1:
        raise ValueError(f"unexpected positional arguments: {' '.join(argv[1:])}; every setting is a --flag.")
    config = config_from_flags()
    flavor.select(config.keras, config.backend)  # (flags from a --flagfile: not seen by select_keras)
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    logging.set_verbosity(logging.WARNING)  # the TFLite converter's INFO lines
    strategy = experiment_flags.strategy_from_flags(FLAGS)  # (before anything runs TensorFlow: --cpu_replicas)
    result = experiment.run(config, overwrite=FLAGS.overwrite, strategy=strategy)
    print(f"test accuracy {result['test_accuracy']:.4f} at sparsity {result['sparsity']:.4f}")
    return 0


if __name__ == "__main__":
    experiment_flags.run_binary(main)
