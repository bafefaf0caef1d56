"""Core benchmark: training-step overhead of fixed masks, and SynFlow scoring time.

Measured side by side in one run, interleaved (the order rotates every repeat) so that machine
noise hits every variant alike. Each number is the *minimum* over --repeats of the mean time of
--steps calls of the model's compiled Keras train step (`model.train_function`, what `fit` runs
for every batch), so per-epoch work (callbacks, iterator set-up) is excluded for every variant
alike. Interference from
other processes only ever adds time, so the minimum is the most repeatable estimate. A second,
identical dense model ("dense control") shows how large the remaining noise is. TensorFlow runs
with --threads intra-op threads (1 by default: less scheduling noise on a shared machine).

    python benchmarks/core_bench.py --out=benchmarks/results/core.md
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

import tfprune  # noqa: E402
from tfprune import _keras  # noqa: E402
from tfprune.experiment import models  # noqa: E402
from tfprune._keras import keras  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["lenet_300_100", "conv2"], "Models from tfprune.experiment.models.")
flags.DEFINE_integer("batch_size", 64, "Batch size.", lower_bound=1)
flags.DEFINE_integer("steps", 200, "Training steps per measurement.", lower_bound=10)
flags.DEFINE_integer("repeats", 7, "Measurements per variant (minimum reported).", lower_bound=1)
flags.DEFINE_float("sparsity", 0.9, "Sparsity of the pruned variants.")
flags.DEFINE_integer("synflow_rounds", 100, "SynFlow rounds for the scoring-time measurement.", lower_bound=1)
flags.DEFINE_integer("threads", 1, "TensorFlow intra-op threads (0 = TF's default).", lower_bound=0)
flags.DEFINE_string("out", None, "Write the markdown table here (atomically).")


def variants(name, sparsity):
    def dense():
        return models.build(name, (28, 28, 1), 10, seed=0)

    def ours():
        return tfprune.prune_at_init(dense(), "random", sparsity, seed=0)

    def tfmot_wrapper():
        tfmot = _keras.tfmot()  # TF-MOT's own API, imported without touching the user's tf.keras
        schedule = tfmot.ConstantSparsity(sparsity, begin_step=0, frequency=100)
        return tfmot.prune_low_magnitude(dense(), pruning_schedule=schedule)

    # "dense (control)" is a second, identical dense model: its ratio to "dense" shows the noise.
    return {"dense": dense, "dense (control)": dense, "tfprune fixed mask": ours,
            "tfmot wrapper (freq 100)": tfmot_wrapper}


def step_times(name):
    rng = np.random.default_rng(0)
    n = FLAGS.batch_size * 32
    ds = tf.data.Dataset.from_tensor_slices(
        (rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n))).batch(FLAGS.batch_size).cache()
    built = {}
    for label, make in variants(name, FLAGS.sparsity).items():
        model = make()
        model.compile(keras.optimizers.SGD(0.01, momentum=0.9),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        # one short fit with the callbacks: initialises TF-MOT's step counter, traces the step
        model.fit(ds, epochs=1, verbose=0, callbacks=tfprune.callbacks() if label != "dense" else [])
        built[label] = (model.make_train_function(), iter(ds.repeat()))
    times = {label: [] for label in built}
    labels = list(built)
    for repeat in range(FLAGS.repeats):
        # rotate the order each repeat so no variant always runs first
        for label in labels[repeat % len(labels):] + labels[:repeat % len(labels)]:
            train_step, batches = built[label]
            start = time.perf_counter()
            for _ in range(FLAGS.steps):
                train_step(batches)
            times[label].append((time.perf_counter() - start) / FLAGS.steps)
    return {label: min(v) for label, v in times.items()}


def synflow_time(name):
    model = models.build(name, (28, 28, 1), 10, seed=0)
    start = time.perf_counter()
    tfprune.compute_masks(model, "synflow", 0.98, rounds=FLAGS.synflow_rounds)
    return time.perf_counter() - start


def main(argv):
    del argv
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    lines = [
        "| model | params | dense step (ms) | dense control / dense | tfprune / dense | TF-MOT wrapper / dense | "
        f"SynFlow {FLAGS.synflow_rounds} rounds (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in FLAGS.models:
        times = step_times(name)
        params = models.build(name, (28, 28, 1), 10).count_params()
        dense = times["dense"]
        row = (f"| {name} | {params:,} | {dense * 1e3:.2f} | {times['dense (control)'] / dense:.3f} | "
               f"{times['tfprune fixed mask'] / dense:.3f} | "
               f"{times['tfmot wrapper (freq 100)'] / dense:.3f} | {synflow_time(name):.1f} |")
        print(row, flush=True)
        lines.append(row)
    command = "python benchmarks/core_bench.py " + " ".join(sys.argv[1:])
    text = (f"Command: `{command}`\n\nbatch {FLAGS.batch_size}, {FLAGS.steps} steps per measurement, minimum of "
            f"{FLAGS.repeats} interleaved repeats, sparsity {FLAGS.sparsity}, SGD+momentum, "
            f"TF {tf.__version__}, {FLAGS.threads or 'default'} intra-op thread(s), {os.cpu_count()} CPU cores.\n\n"
            + "\n".join(lines) + "\n")
    print(text)
    if FLAGS.out:
        from tfprune.io import atomic_write
        atomic_write(FLAGS.out, text)


if __name__ == "__main__":
    app.run(main)
