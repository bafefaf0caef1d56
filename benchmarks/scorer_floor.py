"""Scorers against their compute floor: each scorer timed beside the bare passes it cannot avoid.

For every model and scorer, in one process and interleaved (each repeat rotates the order; the
minimum over repeats is reported, since interference only ever adds time):

* ``synflow``: ``compute_masks(model, "synflow", sparsity, rounds=R)`` against R calls of one traced
  float64 forward + backward at batch 1 on the all-ones input (gradients of ``sum(f(1))`` with
  respect to every kernel, left where they are computed);
* ``snip``: ``compute_masks(model, "snip", ...)`` against one traced gradient of the mean loss over
  the same batch;
* ``grasp``: ``compute_masks(model, "grasp", ...)`` against one traced gradient plus one traced
  Hessian-gradient product over the same batch.

The ratio scorer / floor is what the library adds (host copies, mask bookkeeping, allocation, and
for a first call on a model the scoring clone and the traces). "first call": every repeat scores a
model of its own (what a user's one call costs); "again": the same model each repeat, after one
untimed call (SynFlow reuses its float64 net and trace for the next call on the same model).
Peak memory: the process's maximum resident set before and after the SynFlow runs.

    python benchmarks/scorer_floor.py --models=lenet_300_100,resnet20,vgg16_bn \
        --out=benchmarks/results/scorer_floor.md
"""
import os
import resource
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
flags.DEFINE_list("models", ["lenet_300_100", "resnet20", "vgg16_bn"], "models from tfprune.experiment.models.")
flags.DEFINE_list("scorers", ["synflow", "snip", "grasp"], "scorers to time (synflow, snip, grasp).")
flags.DEFINE_integer("rounds", 100, "SynFlow rounds.", lower_bound=1)
flags.DEFINE_float("sparsity", 0.99, "target sparsity of every scorer.")
flags.DEFINE_integer("per_class", 10, "SNIP/GraSP batch: examples per class (random images).", lower_bound=1)
flags.DEFINE_integer("repeats", 3, "interleaved repeats per measurement (minimum reported).", lower_bound=1)
flags.DEFINE_integer("threads", 0, "TensorFlow intra-op threads (0 = TF's default).", lower_bound=0)
flags.DEFINE_string("out", None, "write the markdown table here (atomically).")

SHAPES = {"lenet_300_100": ((28, 28, 1), 10)}
DEFAULT_SHAPE = ((32, 32, 3), 10)


def build(name):
    shape, classes = SHAPES.get(name, DEFAULT_SHAPE)
    return models.build(name, shape, classes, seed=0), shape, classes


def float64_clone(model):
    """A float64 copy of ``model`` with |weights| and linear outputs: SynFlow's pass, bare."""
    clone = keras.models.clone_model(model, clone_function=lambda layer: layer.__class__.from_config(
        {**layer.get_config(), "dtype": "float64"}))
    for target, source in zip(clone.weights, model.weights):
        target.assign(np.abs(source.numpy()).astype(np.float64))
    return clone


def kernels_of(model):
    return list(_keras.prunable_kernels(model).values())


def synflow_floor(model, shape):
    clone = float64_clone(model)
    kernels = kernels_of(clone)
    ones = tf.ones((1,) + shape, tf.float64)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            total = tf.reduce_sum(clone(ones, training=False))
        return tape.gradient(total, kernels)

    step()  # trace

    def run():
        for _ in range(FLAGS.rounds):
            step()
    return run


def loss_floor(model, x, y, hessian: bool):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kernels = kernels_of(model)

    @tf.function
    def gradient(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, model(x, training=False))
        return tape.gradient(value, kernels)

    @tf.function
    def hvp(x, y, g):
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                value = loss(y, model(x, training=False) / 200.0)
            grads = inner.gradient(value, kernels)
            z = tf.add_n([tf.reduce_sum(a * tf.stop_gradient(b)) for a, b in zip(grads, g)])
        return outer.gradient(z, kernels)

    x, y = tf.constant(x), tf.constant(y)
    g = gradient(x, y)
    if hessian:
        hvp(x, y, g)

    def run():
        grads = gradient(x, y)
        if hessian:
            hvp(x, y, grads)
    return run


def interleaved(fns):
    times = {label: [] for label in fns}
    labels = list(fns)
    for repeat in range(FLAGS.repeats):
        for label in labels[repeat % len(labels):] + labels[:repeat % len(labels)]:
            start = time.perf_counter()
            fns[label]()
            times[label].append(time.perf_counter() - start)
    return {label: min(v) for label, v in times.items()}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def measure(name, scorer):
    model, shape, classes = build(name)
    # "first": each repeat scores a model of its own (same seed, same weights), as a user's one call
    # does; "again": the same model every repeat, after one untimed call (SynFlow keeps its float64
    # net and trace for the next call on the same model; SNIP/GraSP keep nothing).
    fresh = [build(name)[0] for _ in range(FLAGS.repeats)]
    weights = sum(int(np.prod(k.shape)) for k in kernels_of(model))
    rng = np.random.default_rng(0)
    n = FLAGS.per_class * classes
    x = rng.random((n,) + shape, dtype=np.float32)
    y = np.repeat(np.arange(classes), FLAGS.per_class).astype(np.int32)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if scorer == "synflow":
        def score(m):
            tfprune.compute_masks(m, "synflow", FLAGS.sparsity, rounds=FLAGS.rounds)
        floor = synflow_floor(model, shape)
    else:
        def score(m):
            tfprune.compute_masks(m, scorer, FLAGS.sparsity, data=(x, y), loss=loss)
        floor = loss_floor(model, x, y, hessian=scorer == "grasp")
    before = peak_rss_mib()
    score(model)
    times = interleaved({"first": lambda: score(fresh.pop()), "again": lambda: score(model), "floor": floor})
    return {"model": name, "weights": weights, "scorer": scorer, "first": times["first"], "again": times["again"],
            "floor": times["floor"], "peak_mib": peak_rss_mib(), "before_mib": before}


def main(argv):
    del argv
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    rows = ["| model | prunable weights | scorer | tfprune, first call (s) | again, same model (s) | floor (s) | "
            "**first / floor** | again / floor | peak RSS (MiB) |", "|---|---|---|---|---|---|---|---|---|"]
    for name in FLAGS.models:
        for scorer in FLAGS.scorers:
            r = measure(name, scorer)
            label = f"synflow-{FLAGS.rounds}" if scorer == "synflow" else scorer
            row = (f"| {name} | {r['weights']:,} | {label} | {r['first']:.2f} | {r['again']:.2f} | {r['floor']:.2f} | "
                   f"**{r['first'] / r['floor']:.2f}** | {r['again'] / r['floor']:.2f} | {r['peak_mib']:.0f} |")
            print(row, flush=True)
            rows.append(row)
    command = "python benchmarks/scorer_floor.py " + " ".join(sys.argv[1:])
    text = (f"Command: `{command}`\n\nsparsity {FLAGS.sparsity}, SynFlow {FLAGS.rounds} rounds, SNIP/GraSP on "
            f"{FLAGS.per_class} random examples per class, minimum of {FLAGS.repeats} interleaved repeats, TF "
            f"{tf.__version__}, {FLAGS.threads or 'default'} intra-op thread(s), {os.cpu_count()} CPU cores.\n\n"
            + "\n".join(rows) + "\n")
    print(text)
    if FLAGS.out:
        from tfprune.io import atomic_write
        atomic_write(FLAGS.out, text)


if __name__ == "__main__":
    app.run(main)
