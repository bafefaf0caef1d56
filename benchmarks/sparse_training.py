"""Sparse training benchmark: does ``prune_at_init(..., execution="sparse")`` train cheaper?

Three parts, each written to its own file under ``--out`` (a part whose file exists is skipped
unless ``--force``; run the parts one by one to keep each job short):

* ``steps``: training step time (Adam, Keras' compiled train step, batch ``--batch_size``) of the dense model, the
  masked dense one (``execution="dense"``, today's default), ``execution="sparse"`` and
  ``execution="auto"``, side by side and interleaved in one run (median over ``--rounds``),
  for a wide MLP (784-4096-4096-4096-10) and LeNet-300-100 at ``--sparsity`` (random global
  masks: per-layer densities equal in expectation).
* ``sweep``: one Dense layer (4096x4096, 784x300, 300x100) trained masked dense vs sparse at
  densities from 0.5% to 50%: the crossover density below which sparse execution pays.
* ``structured``: on Fashion-MNIST, LeNet-300-100 pruned at init by SynFlow (a) structurally,
  channel scores pooled per neuron, a genuinely smaller dense model (``tfprune.structured``),
  and (b) unstructured (element masks, ``execution="dense"`` and ``"auto"``) at the same number of
  kernel weights, all trained from scratch for ``--epochs``: test accuracy and the best epoch
  time after the first (which traces).

Run (about 3 + 4 + 6 minutes on 2 CPU cores)::

    python benchmarks/sparse_training.py --part=steps
    python benchmarks/sparse_training.py --part=sweep
    python benchmarks/sparse_training.py --part=structured
"""
from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
from absl import app, flags  # noqa: E402

import tfprune  # noqa: E402
from tfprune import io, sparse_dense  # noqa: E402
from tfprune.table import table  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_enum("part", "steps", ["steps", "sweep", "structured"], "Which part to run.")
flags.DEFINE_float("sparsity", 0.98, "Sparsity of the step-time models.")
flags.DEFINE_integer("batch_size", 128, "Training batch size.")
flags.DEFINE_integer("steps", 20, "Timed training steps per model per round (LeNet and the sweep's small "
                     "kernels: 10x as many).")
flags.DEFINE_integer("rounds", 7, "Interleaved timing rounds (median).")
flags.DEFINE_list("densities", ["0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5"], "Sweep densities.")
flags.DEFINE_list("ratios", ["0.5", "0.8", "0.9", "0.98"], "Structured: fractions of hidden neurons removed.")
flags.DEFINE_integer("epochs", 3, "Structured: training epochs.")
flags.DEFINE_integer("seed", 0, "Random seed.")
flags.DEFINE_bool("force", False, "Run a part even if its result file exists.")
flags.DEFINE_string("out", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "sparse_training"),
                    "Result directory.")

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def wide_mlp(seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((784,))
    h = inputs
    for i in range(3):
        h = keras.layers.Dense(4096, activation="relu", name=f"fc{i + 1}")(h)
    return keras.Model(inputs, keras.layers.Dense(10, name="output")(h), name="wide_mlp")


def lenet(seed):
    from tfprune.experiment import models
    return models.build("lenet_300_100", (784,), 10, seed=seed)


def variants(build, sparsity, seed):
    """{name: model}: dense, and the same random masks executed masked-dense, sparse and auto."""
    out = {"dense": build(seed)}
    for execution in ("dense", "sparse", "auto"):
        out[f"masked_{execution}" if execution == "dense" else execution] = tfprune.prune_at_init(
            build(seed), "random", sparsity, seed=seed, execution=execution)
    return out


def step_times(models, x, y, batch, steps, rounds, loss=LOSS):
    """Median seconds per training step of each model (Adam; Keras' own compiled train step,
    called ``steps`` times per round without ``fit``'s per-call set-up), the models interleaved
    round by round so that load changes hit them all alike."""
    import tensorflow as tf
    times, functions = {name: [] for name in models}, {}
    for name, model in models.items():
        model.compile(keras.optimizers.Adam(1e-3), loss)
        batches = iter(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch, drop_remainder=True).repeat())
        train = model.make_train_function()
        functions[name] = (train, batches)
        for _ in range(3):  # trace and warm up
            train(batches)
    for _ in range(rounds):
        for name, (train, batches) in functions.items():
            start = time.perf_counter()
            for _ in range(steps):
                logs = train(batches)
            float(logs["loss"])  # wait for the last step
            times[name].append((time.perf_counter() - start) / steps)
    return {name: float(np.median(t)) for name, t in times.items()}


def part_steps(out):
    rng = np.random.default_rng(FLAGS.seed)
    n = FLAGS.batch_size * FLAGS.steps
    x, y = rng.standard_normal((n, 784)).astype(np.float32), rng.integers(0, 10, n)
    rows = []
    for name, build, steps in (("wide MLP 784-4096x3-10", wide_mlp, FLAGS.steps),
                               ("LeNet-300-100", lenet, 10 * FLAGS.steps)):
        models = variants(build, FLAGS.sparsity, FLAGS.seed)
        times = step_times(models, x, y, FLAGS.batch_size, steps, FLAGS.rounds)
        base = times["dense"]
        for variant, seconds in times.items():
            rows.append([name, variant, ",".join(sparse_dense.sparse_layers(models[variant])) or "-",
                         f"{1000 * seconds:.2f}", f"{seconds / base:.3f}", f"{seconds / times['masked_dense']:.3f}"])
            print(rows[-1], flush=True)
    return table(["model", "execution", "sparse layers", "ms/step", "x dense", "x masked dense"], rows,
                 align="lllrrr")


def one_layer(n_in, n_out, density, execution, seed):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((n_in,))
    model = keras.Model(inputs, keras.layers.Dense(n_out, name="fc")(inputs))
    return tfprune.prune_at_init(model, "random", 1.0 - density, seed=seed, execution=execution)


def part_sweep(out):
    rng = np.random.default_rng(FLAGS.seed)
    rows = []
    for n_in, n_out in ((4096, 4096), (784, 300), (300, 100)):
        n = FLAGS.batch_size * FLAGS.steps
        x = rng.standard_normal((n, n_in)).astype(np.float32)
        y = rng.standard_normal((n, n_out)).astype(np.float32)
        for density in map(float, FLAGS.densities):
            models = {e: one_layer(n_in, n_out, density, e, FLAGS.seed) for e in ("dense", "sparse")}
            steps = FLAGS.steps if n_in * n_out > 1_000_000 else 10 * FLAGS.steps
            times = step_times(models, x, y, FLAGS.batch_size, steps, FLAGS.rounds, loss="mse")
            ratio = times["sparse"] / times["dense"]
            rows.append([f"{n_in}x{n_out}", f"{density:g}", f"{1000 * times['dense']:.2f}",
                         f"{1000 * times['sparse']:.2f}", f"{ratio:.3f}",
                         "yes" if sparse_dense.pays(n_in, n_out, int(round(density * n_in * n_out))) else "no"])
            print(rows[-1], flush=True)
    return table(["kernel", "density", "masked dense ms/step", "sparse ms/step", "sparse / masked", "auto picks sparse"],
                 rows, align="llrrrl")


def part_structured(out):
    from tfprune import structured
    from tfprune.experiment import data, models
    x_train, y_train, x_test, y_test, _, _ = data.load_arrays("fashion_mnist")
    x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    dense = models.build("lenet_300_100", (784,), 10, seed=FLAGS.seed)
    total = sum(int(np.prod(v.shape)) for v in tfprune._keras.prunable_kernels(dense).values())
    rows = []

    def train(model, label, ratio, params):
        keras.utils.set_random_seed(FLAGS.seed)  # the same shuffling for every model
        model.compile(keras.optimizers.Adam(1e-3), LOSS, metrics=["accuracy"])
        epochs = EpochTimes()
        model.fit(x_train, y_train, batch_size=FLAGS.batch_size, epochs=FLAGS.epochs, verbose=0,
                  callbacks=tfprune.callbacks() + [epochs])
        accuracy = model.evaluate(x_test, y_test, verbose=0)[1]
        rows.append([label, ratio, ",".join(sparse_dense.sparse_layers(model)) or "-", f"{params:,}",
                     f"{1 - params / total:.3f}", f"{accuracy:.4f}", f"{min(epochs.seconds[1:] or epochs.seconds):.2f}"])
        print(rows[-1], flush=True)

    train(models.build("lenet_300_100", (784,), 10, seed=FLAGS.seed), "dense", "-", total)
    for ratio in map(float, FLAGS.ratios):
        at_init = models.build("lenet_300_100", (784,), 10, seed=FLAGS.seed)
        small, _ = structured.prune(at_init, ratio, "synflow")
        params = sum(int(np.prod(v.shape)) for v in tfprune._keras.prunable_kernels(small).values())
        train(small, "structured (SynFlow channels)", f"{ratio:g}", params)
        sparsity = 1.0 - params / total
        for execution in ("dense", "auto"):
            pruned = tfprune.prune_at_init(models.build("lenet_300_100", (784,), 10, seed=FLAGS.seed), "synflow",
                                           sparsity, execution=execution)
            kept = int(sum(m.sum() for m in tfprune.get_masks(pruned).values()))
            train(pruned, f"unstructured SynFlow, execution={execution}", f"{ratio:g}", kept)
    return table(["model", "neurons removed", "sparse layers", "kernel weights", "sparsity", "test accuracy",
                  "s/epoch (best after the 1st)"], rows, align="lllrrrr")


class EpochTimes(keras.callbacks.Callback):
    """Wall-clock seconds of every epoch (the first one includes tracing)."""

    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def main(argv):
    del argv
    path = os.path.join(FLAGS.out, f"{FLAGS.part}.md")
    if os.path.exists(path) and not FLAGS.force:
        print(f"{path} exists (--force to run again)")
        return
    text = {"steps": part_steps, "sweep": part_sweep, "structured": part_structured}[FLAGS.part](FLAGS.out)
    command = "python benchmarks/sparse_training.py " + " ".join(sys.argv[1:])
    os.makedirs(FLAGS.out, exist_ok=True)
    io.atomic_write(path, f"`{command}`\n\n```\n{text}\n```\n")
    print(text)


if __name__ == "__main__":
    app.run(main)
