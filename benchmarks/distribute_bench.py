"""Training-step time of fixed-mask (and dense, and TF-MOT) models with 1 vs 2 replicas.

The CPU is split into two logical devices (before TensorFlow starts); "1 replica" is a
``MirroredStrategy`` on ``/cpu:0``, "2 replicas" one on ``/cpu:0`` and ``/cpu:1``: same global
batch, same examples per step, so the ratio is the cost or gain of splitting each step across
two replicas. Variants are measured side by side in one run, interleaved (the order rotates every
repeat); each number is the minimum over --repeats of the median time of one ``fit`` step
(from ``on_train_batch_begin`` to ``on_train_batch_end``, which waits for the step's loss), over
--steps steps, after a warm-up epoch that traces the step.

    python benchmarks/distribute_bench.py --out=benchmarks/results/distribute.md
    python benchmarks/distribute_bench.py --threads=1 --out=benchmarks/results/distribute_1thread.md
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["lenet_300_100", "conv2"], "Models from tfprune.experiment.models.")
flags.DEFINE_integer("batch_size", 128, "Global batch size (split evenly across the replicas).", lower_bound=2)
flags.DEFINE_integer("steps", 40, "Training steps per measurement.", lower_bound=5)
flags.DEFINE_integer("repeats", 3, "Measurements per variant (minimum reported).", lower_bound=1)
flags.DEFINE_float("sparsity", 0.9, "Sparsity of the pruned variants.")
flags.DEFINE_integer("threads", 0, "TensorFlow intra-op threads (0 = TF's default: one per core).", lower_bound=0)
flags.DEFINE_string("out", None, "Write the markdown table here (atomically).")


class StepTimer:
    """Per-step wall time inside ``fit`` (a plain callback: Keras turns the logs into numbers
    before ``on_train_batch_end``, so the step has finished)."""

    def __init__(self, keras):
        outer = self

        class Callback(keras.callbacks.Callback):
            def on_train_batch_begin(self, batch, logs=None):
                outer.start = time.perf_counter()

            def on_train_batch_end(self, batch, logs=None):
                outer.times.append(time.perf_counter() - outer.start)

        self.callback, self.times, self.start = Callback(), [], 0.0


def make_variants(name):
    import tfprune
    from tfprune import _keras
    from tfprune._keras import keras
    from tfprune.experiment import models

    def dense():
        return models.build(name, (28, 28, 1), 10, seed=0)

    def fixed_mask():
        return tfprune.prune_at_init(dense(), "random", FLAGS.sparsity, seed=0)

    def tfmot_wrapper():
        tfmot = _keras.tfmot()
        return tfmot.prune_low_magnitude(dense(), pruning_schedule=tfmot.ConstantSparsity(
            FLAGS.sparsity, begin_step=0, frequency=100))

    return keras, {"dense": dense, "tfprune fixed mask": fixed_mask, "tfmot wrapper (freq 100)": tfmot_wrapper}


def prepared(keras, build, devices):
    import tfprune
    strategy = tf.distribute.MirroredStrategy(devices, cross_device_ops=tf.distribute.ReductionToOneDevice())
    with strategy.scope():
        model = build()
        model.compile(keras.optimizers.SGD(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    n = FLAGS.batch_size * FLAGS.steps
    x = rng.normal(size=(n, 28, 28, 1)).astype("float32")
    y = rng.integers(0, 10, n).astype("int32")
    timer = StepTimer(keras)
    callbacks = [timer.callback] + tfprune.callbacks()
    model.fit(x[:FLAGS.batch_size * 5], y[:FLAGS.batch_size * 5], batch_size=FLAGS.batch_size, verbose=0,
              callbacks=callbacks)  # traces the step

    def measure():
        timer.times.clear()
        model.fit(x, y, batch_size=FLAGS.batch_size, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
        return float(np.median(timer.times))

    return measure


def run_model(name):
    keras, variants = make_variants(name)
    layouts = {"1 replica": ["/cpu:0"], "2 replicas": ["/cpu:0", "/cpu:1"]}
    runs = {(v, r): prepared(keras, build, devices) for v, build in variants.items() for r, devices in layouts.items()}
    best = {key: float("inf") for key in runs}
    keys = list(runs)
    for repeat in range(FLAGS.repeats):
        for key in keys[repeat % len(keys):] + keys[:repeat % len(keys)]:
            best[key] = min(best[key], runs[key]())
    rows = []
    for variant in variants:
        one, two = best[(variant, "1 replica")], best[(variant, "2 replicas")]
        rows.append((name, variant, one * 1e3, two * 1e3, two / one))
    return rows


def main(argv):
    del argv
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    rows = [row for name in FLAGS.models for row in run_model(name)]
    lines = [f"Global batch {FLAGS.batch_size}, {FLAGS.steps} steps x {FLAGS.repeats} repeats (minimum of medians), "
             f"sparsity {FLAGS.sparsity}, {os.cpu_count()} CPU cores, intra-op threads {FLAGS.threads or 'default'}, "
             "MirroredStrategy on logical CPU devices.", "",
             "| model | variant | 1 replica (ms/step) | 2 replicas (ms/step) | 2 / 1 |", "|---|---|---|---|---|"]
    lines += [f"| {m} | {v} | {a:.2f} | {b:.2f} | {r:.2f} |" for m, v, a, b, r in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if FLAGS.out:
        from tfprune.io import atomic_write
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
        atomic_write(FLAGS.out, text)


if __name__ == "__main__":
    app.run(main)
