r"""Lottery ticket rewinding on LeNet-300-100 / Fashion-MNIST, down to ~98% sparsity.

Iterative magnitude pruning (global, the output layer at half rate as in the LTH paper) with
rewinding to θ0 (``--rewind_step 0``) or to an early step. Every level is saved under
``--run_dir`` and the run resumes where it stopped when the same command is run again (Ctrl-C
it, kill it, run it again).

With 20% per level (the paper's rate) 98% sparsity takes 18 levels; a larger
``--prune_fraction`` gets there in fewer, faster levels:

    python examples/lottery_fashion_mnist.py --prune_fraction 0.55 --epochs_per_level 2

Data: Fashion-MNIST from Debian's ``dataset-fashion-mnist`` package (``apt-get install
dataset-fashion-mnist``), linked into ``$KERAS_HOME/datasets/fashion-mnist`` so that
``tf_keras.datasets.fashion_mnist.load_data()`` reads it offline.

``--strategy=mirrored`` (``--cpu_replicas=N`` without GPUs) or ``--strategy=multi_worker`` (every
worker runs the same command with its own ``TF_CONFIG``; ``--run_dir`` on a mount all of them
see) trains under ``tf.distribute``: docs/distributed_training.md.
"""
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

import tf_keras as keras  # noqa: E402
from tfprune import lottery  # noqa: E402
from tfprune.experiment import flags as experiment_flags  # noqa: E402
from tfprune.lottery import distribute  # noqa: E402
from tfprune.spec import TrainingSpec  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("run_dir", "runs/lottery_fashion_mnist", "Directory of the (resumable) run.")
flags.DEFINE_float("prune_fraction", 0.2, "Fraction of the remaining weights pruned per level, in (0, 1).")
flags.DEFINE_float("target_sparsity", 0.98, "Stop once this sparsity is reached.")
flags.DEFINE_integer("levels", None, "Number of pruning levels instead of --target_sparsity.")
flags.DEFINE_integer("epochs_per_level", 2, "Training epochs per level.")
flags.DEFINE_integer("rewind_step", 0, "Rewind step k (0 = reset to initialization, the original LTH).")
flags.DEFINE_integer("batch_size", 128, "Batch size (the LTH paper uses 60).")
flags.DEFINE_float("learning_rate", 1.2e-3, "Adam learning rate (LTH paper: 1.2e-3).")
flags.DEFINE_bool("output_half_rate", True, "Prune the output layer at half the rate (LTH paper).")
flags.DEFINE_integer("validation_size", 5000, "Training examples held out for validation.")
flags.DEFINE_integer("max_train", None, "Use only this many training examples (quick tries).")
flags.DEFINE_integer("seed", 0, "Seed of θ0, the data order and every training segment.")
flags.DEFINE_bool("deterministic", False, "Enable TF op determinism (bit-identical resumes on CPU).")
flags.DEFINE_integer("verbose", 1, "0 silent, 1 a line per level, 2 also a line per epoch.")
experiment_flags.define_strategy_flags()  # --strategy=mirrored|multi_worker, --cpu_replicas

FASHION_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"


def load_fashion_mnist():
    """``(x_train, y_train), (x_test, y_test)``: float32 in [0, 1] of shape (N, 28, 28), int labels.

    Links the Debian package's files into the tf_keras cache first (a small function on
    purpose: tfprune.experiment.data provides the same).
    """
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    cache = os.path.join(keras_home, "datasets", "fashion-mnist")
    os.makedirs(cache, exist_ok=True)
    for name in FASHION_FILES:
        target, source = os.path.join(cache, name), os.path.join(DEBIAN_DIR, name)
        if not os.path.exists(target):
            if not os.path.exists(source):
                raise FileNotFoundError(f"Fashion-MNIST: neither {target} nor {source} exists; install it with "
                                        "`apt-get install dataset-fashion-mnist` (or let tf_keras download it).")
            if os.path.islink(target):
                os.remove(target)  # dangling link
            os.symlink(source, target)
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    return ((x_train.astype("float32") / 255.0, y_train.astype("int32")),
            (x_test.astype("float32") / 255.0, y_test.astype("int32")))


def lenet_300_100():
    """LeNet-300-100 (LTH paper): Flatten → Dense 300 relu → Dense 100 relu → Dense 10 (logits)."""
    return keras.Sequential([
        keras.Input((28, 28)),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(300, activation="relu", name="fc1"),
        keras.layers.Dense(100, activation="relu", name="fc2"),
        keras.layers.Dense(10, name="output"),
    ], name="lenet_300_100")


def main(argv):
    del argv
    strategy = experiment_flags.strategy_from_flags()  # (before anything runs TensorFlow: --cpu_replicas)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    n_val = FLAGS.validation_size
    x_val, y_val = x_train[-n_val:], y_train[-n_val:]
    x_fit, y_fit = x_train[:-n_val], y_train[:-n_val]
    if FLAGS.max_train:
        x_fit, y_fit = x_fit[:FLAGS.max_train], y_fit[:FLAGS.max_train]
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    training = TrainingSpec(
        optimizer={"class_name": "Adam", "config": {"learning_rate": FLAGS.learning_rate}}, loss=loss,
        metrics=["accuracy"], batch_size=FLAGS.batch_size, epochs=FLAGS.epochs_per_level, seed=FLAGS.seed,
        verbose=FLAGS.verbose, deterministic=FLAGS.deterministic, distribute=strategy)
    lt = lottery.LotteryTicket(
        lenet_300_100, (x_fit, y_fit), (x_val, y_val), training=training, run_dir=FLAGS.run_dir,
        prune_fraction=FLAGS.prune_fraction,
        levels=FLAGS.levels, target_sparsity=None if FLAGS.levels else FLAGS.target_sparsity,
        rewind_step=FLAGS.rewind_step,
        layer_prune_fractions={"output": FLAGS.prune_fraction / 2} if FLAGS.output_half_rate else None)
    start = time.time()
    results = lt.run()
    if not distribute.is_chief(strategy):
        return  # another worker of a multi-worker run: the chief reports
    print()
    print(results)
    print(f"\nrun_dir: {FLAGS.run_dir}   ({time.time() - start:.0f} s in this invocation)")
    for label, row in (("best", results.best), ("last", results[-1])):
        model = lt.model(row.level)
        model.compile(loss=loss, metrics=["accuracy"])
        _, test_acc = model.evaluate(x_test, y_test, batch_size=1000, verbose=0)
        print(f"{label} level {row.level}: sparsity {row.sparsity:.4f}, val acc {row.val_accuracy:.4f}, "
              f"test acc {test_acc:.4f}")


if __name__ == "__main__":
    app.run(main)
