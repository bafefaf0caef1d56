"""Core benchmark: training-step overhead of fixed masks, SynFlow scoring time (--part=steps), and
the cost of candidate re-mask ops, each with the wrapper's invariants checked in a graph (--part=ops).

Measured side by side in one run, interleaved (the order rotates every repeat) so that machine
noise hits every variant alike. Each number is the *minimum* over --repeats of the mean time of
--steps calls of the model's compiled Keras train step (`model.train_function`, what `fit` runs
for every batch), so per-epoch work (callbacks, iterator set-up) is excluded for every variant
alike. Interference from
other processes only ever adds time, so the minimum is the most repeatable estimate. A second,
identical dense model ("dense control") shows how large the remaining noise is. TensorFlow runs
with --threads intra-op threads (1 by default: less scheduling noise on a shared machine).

    python benchmarks/core_bench.py --out=benchmarks/results/core.md
    python benchmarks/core_bench.py --part=ops --out=benchmarks/results/core_ops.md
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
from tfprune import _keras, wrapper  # noqa: E402
from tfprune.experiment import models  # noqa: E402
from tfprune._keras import keras  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("part", "steps", ["steps", "ops"], "steps: train-step ratios; ops: re-mask op candidates.")
flags.DEFINE_list("models", ["lenet_300_100", "conv2"], "Models from tfprune.experiment.models.")
flags.DEFINE_integer("batch_size", 64, "Batch size.", lower_bound=1)
flags.DEFINE_integer("steps", 200, "Training steps per measurement.", lower_bound=10)
flags.DEFINE_integer("repeats", 7, "Measurements per variant (minimum reported).", lower_bound=1)
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"], "sgd: SGD(0.01, momentum 0.9); adam: Adam(1e-3).")
flags.DEFINE_float("sparsity", 0.9, "Sparsity of the pruned variants.")
flags.DEFINE_integer("synflow_rounds", 100, "SynFlow rounds for the scoring-time measurement.", lower_bound=1)
flags.DEFINE_integer("threads", 1, "TensorFlow intra-op threads (0 = TF's default).", lower_bound=0)
flags.DEFINE_string("out", None, "Write the markdown table here (atomically).")


# Candidate re-mask ops (w, m) -> new kernel value. Only those that keep every invariant the wrapper
# documents (+0.0, idempotent for any mask) may replace it; the others are lower bounds.
BEFORE = "tf.where(m != 0, w, zeros_like(w)) (before)"
OPS = {
    BEFORE: lambda w, m: tf.where(tf.not_equal(m, 0), w, tf.zeros_like(w)),
    "tf.where(m != 0, w, 0.0)": lambda w, m: tf.where(tf.not_equal(m, 0), w, tf.zeros([], w.dtype)),
    "raw_ops.Select(m != 0, w, zeros_like(w))": lambda w, m: tf.raw_ops.Select(
        condition=tf.not_equal(m, 0), x=w, y=tf.zeros_like(w)),
    "raw_ops.Select(m != 0, w, m)": lambda w, m: tf.raw_ops.Select(condition=tf.not_equal(m, 0), x=w, y=m),
    "multiply_no_nan(w, cast(m != 0)) (now: wrapper.masked)": wrapper.masked,
    "multiply_no_nan(w, div_no_nan(m, m))": lambda w, m: tf.math.multiply_no_nan(w, tf.math.divide_no_nan(m, m)),
    "multiply_no_nan(w, m)": tf.math.multiply_no_nan,
    "w * m": lambda w, m: w * m,
    "w * m + 0.0": lambda w, m: w * m + 0.0,
}


def variants(name, sparsity):
    def dense():
        return models.build(name, (28, 28, 1), 10, seed=0)

    def ours():
        return tfprune.prune_at_init(dense(), "random", sparsity, seed=0)

    def tfmot_wrapper():
        tfmot = _keras.tfmot()  # TF-MOT's own API, imported without touching the user's tf.keras
        schedule = tfmot.ConstantSparsity(sparsity, begin_step=0, frequency=100)
        return tfmot.prune_low_magnitude(dense(), pruning_schedule=schedule)

    def ours_with(op):  # the wrapper with another re-mask op (None: none at all, not a valid model)
        def make():
            model = ours()
            for layer in model.layers:
                if hasattr(layer, "pruning_vars"):
                    layer.mask_weights = lambda layer=layer: tf.group(*[] if op is None else [
                        w.assign(op(tf.convert_to_tensor(w), tf.convert_to_tensor(m)), read_value=False)
                        for w, m, _ in layer.pruning_vars])
            return model
        return make

    # "dense (control)" is a second, identical dense model: its ratio to "dense" shows the noise.
    return {"dense": dense, "dense (control)": dense, "tfprune fixed mask": ours,
            "tfprune before": ours_with(OPS[BEFORE]),
            "one pass, multiply_no_nan(w, m)": ours_with(tf.math.multiply_no_nan),
            "wrapper, no re-mask": ours_with(None), "tfmot wrapper (freq 100)": tfmot_wrapper}


def step_times(name):
    rng = np.random.default_rng(0)
    n = FLAGS.batch_size * 32
    ds = tf.data.Dataset.from_tensor_slices(
        (rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n))).batch(FLAGS.batch_size).cache()
    built = {}
    for label, make in variants(name, FLAGS.sparsity).items():
        model = make()
        sgd = FLAGS.optimizer == "sgd"
        optimizer = keras.optimizers.SGD(0.01, momentum=0.9) if sgd else keras.optimizers.Adam(1e-3)
        model.compile(optimizer,
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
    # per-repeat ratios (each variant against the dense run of the same repeat): their spread
    ratios = {label: np.array(v) / np.array(times["dense"]) for label, v in times.items()}
    return {label: min(v) for label, v in times.items()}, ratios


def invariants(op):
    """Checks one op in a graph (as Keras' train step runs it) on 37 entries (Eigen's vector and
    scalar tail paths): (1) a 0/1 mask: masked entries +0.0 for negative, -0.0, inf and NaN
    weights; (2) kept entries bit-identical; (3) any mask (0.5, -0.0, inf, NaN; direct writes to the
    variable are not checked): the bits of ``where(m != 0, w, +0.0)``, and a second call changes
    nothing."""
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal(37).astype(np.float32)
    w0[:4] = [-0.0, np.inf, -np.inf, np.nan]
    m0 = (rng.random(37) < 0.5).astype(np.float32)
    m0[:4] = 0
    w, m = tf.Variable(w0), tf.Variable(m0)

    @tf.function
    def apply():
        w.assign(op(tf.convert_to_tensor(w), tf.convert_to_tensor(m)), read_value=False)

    apply()
    once = w.numpy()
    zero = once[m0 == 0]
    positive = bool((zero == 0).all() and not np.signbit(zero).any())
    kept = bool(np.array_equal(once[m0 != 0].view(np.int32), w0[m0 != 0].view(np.int32)))
    odd = np.where(m0 != 0, np.resize(np.float32([0.5, np.inf, np.nan, -2]), 37), -0.0).astype(np.float32)
    m.assign(odd)
    w.assign(w0)
    apply()
    first = w.numpy()
    apply()
    expected = np.where(odd != 0, w0, np.float32(0)).view(np.int32)
    again = w.numpy()
    any_mask = bool(np.array_equal(first.view(np.int32), expected) and np.array_equal(again.view(np.int32), expected))
    return positive, kept, any_mask


def op_times(name):
    """Microseconds per call of one tf.function that re-masks every kernel of the pruned model."""
    model = tfprune.prune_at_init(models.build(name, (28, 28, 1), 10, seed=0), "random", FLAGS.sparsity, seed=0)
    pairs = [(w, m) for layer in model.layers if hasattr(layer, "pruning_vars") for w, m, _ in layer.pruning_vars]

    def remask(op):
        @tf.function
        def function():
            for w, m in pairs:
                w.assign(op(tf.convert_to_tensor(w), tf.convert_to_tensor(m)), read_value=False)
        return function

    @tf.function
    def reads():
        for pair in pairs:
            for v in pair:
                tf.identity(tf.convert_to_tensor(v))

    functions = {label: remask(op) for label, op in OPS.items()}
    functions["reads only (no op, no assign)"] = reads
    functions["empty tf.function"] = tf.function(lambda: tf.constant(0))
    for function in functions.values():
        function()
    times, labels = {label: [] for label in functions}, list(functions)
    for repeat in range(FLAGS.repeats):
        for label in labels[repeat % len(labels):] + labels[:repeat % len(labels)]:
            start = time.perf_counter()
            for _ in range(FLAGS.steps):
                functions[label]()
            times[label].append((time.perf_counter() - start) / FLAGS.steps * 1e6)
    return {label: (min(v), float(np.median(v))) for label, v in times.items()}


def part_ops():
    checks = {label: invariants(op) for label, op in OPS.items()}
    lines = ["| model | op | min µs/call | median µs/call | masked +0.0 | kept bit-exact | "
             "any mask: = where(m != 0, w, +0.0), idempotent |",
             "|---|---|---|---|---|---|---|"]
    for name in FLAGS.models:
        for label, (low, median) in op_times(name).items():
            marks = ["yes" if c else "**no**" for c in checks[label]] if label in checks else ["-"] * 3
            lines.append(f"| {name} | `{label}` | {low:.1f} | {median:.1f} | " + " | ".join(marks) + " |")
            print(lines[-1], flush=True)
    return (f"{FLAGS.steps} calls per measurement, {FLAGS.repeats} interleaved repeats, every kernel of the model "
            f"re-masked in one tf.function, sparsity {FLAGS.sparsity}.\n\n" + "\n".join(lines))


def synflow_time(name):
    model = models.build(name, (28, 28, 1), 10, seed=0)
    start = time.perf_counter()
    tfprune.compute_masks(model, "synflow", 0.98, rounds=FLAGS.synflow_rounds)
    return time.perf_counter() - start


def part_steps():
    lines = [
        "| model | params | dense step (ms) | dense control / dense | tfprune / dense | tfprune before / dense | "
        f"one pass, multiply_no_nan(w, m) / dense | wrapper, no re-mask / dense | TF-MOT wrapper / dense | "
        f"SynFlow {FLAGS.synflow_rounds} rounds (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    spread = ["| model | variant | per-repeat ratio to dense: median | p10 | p90 |", "|---|---|---|---|---|"]
    for name in FLAGS.models:
        times, ratios = step_times(name)
        params = models.build(name, (28, 28, 1), 10).count_params()
        dense = times["dense"]
        row = (f"| {name} | {params:,} | {dense * 1e3:.2f} | {times['dense (control)'] / dense:.3f} | "
               f"{times['tfprune fixed mask'] / dense:.3f} | {times['tfprune before'] / dense:.3f} | "
               f"{times['one pass, multiply_no_nan(w, m)'] / dense:.3f} | {times['wrapper, no re-mask'] / dense:.3f} | "
               f"{times['tfmot wrapper (freq 100)'] / dense:.3f} | {synflow_time(name):.1f} |")
        print(row, flush=True)
        lines.append(row)
        for label in list(ratios)[1:]:
            p10, p50, p90 = np.percentile(ratios[label], [10, 50, 90])
            spread.append(f"| {name} | {label} | {p50:.3f} | {p10:.3f} | {p90:.3f} |")
    return (f"batch {FLAGS.batch_size}, {FLAGS.steps} steps per measurement, minimum of {FLAGS.repeats} interleaved "
            f"repeats, sparsity {FLAGS.sparsity}, {'SGD+momentum' if FLAGS.optimizer == 'sgd' else 'Adam'}.\n\n"
            + "\n".join(lines) + "\n\n" + "\n".join(spread))


def main(argv):
    del argv
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(FLAGS.threads)
    body = part_ops() if FLAGS.part == "ops" else part_steps()
    command = "python benchmarks/core_bench.py " + " ".join(sys.argv[1:])
    text = (f"Command: `{command}`\n\nTF {tf.__version__}, {FLAGS.threads or 'default'} intra-op thread(s), "
            f"{os.cpu_count()} CPU cores; " + body + "\n")
    print(text)
    if FLAGS.out:
        from tfprune.io import atomic_write
        atomic_write(FLAGS.out, text)


if __name__ == "__main__":
    app.run(main)
