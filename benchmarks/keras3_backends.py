r"""Keras 3 on TensorFlow, JAX and PyTorch, side by side with the tf_keras path, in one run.

Per backend (each in its own process: ``KERAS_BACKEND`` is per process), on LeNet-300-100 and a
small CNN (28×28×1 inputs, 10 classes, the same architectures in tf_keras and Keras 3):

* ``synflow_s``: ``compute_masks(model, "synflow", 0.98)`` (100 float64 rounds);
* ``snip_s``: ``compute_masks(model, "snip", 0.98)`` on 100 examples;
* ``step_ratio``: the time of a masked train step (``prune_at_init(model, "synflow", 0.98)``, Adam,
  batch 128) over the time of the same model's dense train step, measured in alternating blocks
  of 10 steps in the same process; the ratio of the fastest blocks (the least disturbed by other
  load on a shared machine) and, beside it, the ratio of the medians. Three controls, measured in
  the same alternation: a second, identical dense model (``control_ratio``: the noise floor);
  the dense model with all-ones masks (``ones_ratio``: the masking mechanism alone, same weights
  and data as the dense model); the 98% model stripped of its masks (``stripped_ratio``: the
  sparse weights without the mechanism; what a sparse network costs by itself, e.g. PyTorch's
  CPU ``sqrt`` is ~4.6x slower on the exact zeros that Adam's second moments hold for weights of
  disconnected units).

``--accuracy`` also trains LeNet-300-100 on Fashion-MNIST with SynFlow at 98% (8 epochs, Adam
1.2e-3, batch 128, seeds ``--seeds``) on each Keras 3 backend, for the row BENCHMARKS.md
compares with the tf_keras sweep.

    python benchmarks/keras3_backends.py --out=benchmarks/results/keras3_backends.md
    python benchmarks/keras3_backends.py --quick     # a smoke run: tiny repetitions
"""
import json
import os
import statistics
import subprocess
import sys
import time

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags  # noqa: E402

FLAVORS = ("tf_keras", "tensorflow", "jax", "torch")
flags.DEFINE_list("flavors", list(FLAVORS), "tf_keras and/or Keras 3 backends to measure.")
flags.DEFINE_bool("accuracy", False, "also train LeNet-300-100 / Fashion-MNIST, SynFlow 98%, on each Keras 3 backend.")
flags.DEFINE_list("seeds", ["0", "1"], "seeds of the --accuracy runs.")
flags.DEFINE_integer("epochs", 8, "epochs of the --accuracy runs.")
flags.DEFINE_bool("quick", False, "smoke run: few steps and repetitions.")
flags.DEFINE_string("out", None, "write the markdown table here (atomically).")
flags.DEFINE_string("child", None, "internal: measure this flavor in this process and print JSON.")
FLAGS = flags.FLAGS


def build(keras, name, seed=0):
    init = lambda s: keras.initializers.GlorotNormal(seed=seed * 100 + s)  # noqa: E731
    layers = keras.layers
    inputs = keras.Input((28, 28, 1))
    if name == "lenet_300_100":
        x = layers.Flatten()(inputs)
        x = layers.Dense(300, activation="relu", name="fc1", kernel_initializer=init(1))(x)
        x = layers.Dense(100, activation="relu", name="fc2", kernel_initializer=init(2))(x)
    else:
        x = layers.Conv2D(32, 3, activation="relu", name="conv1", kernel_initializer=init(1))(inputs)
        x = layers.Conv2D(32, 3, activation="relu", name="conv2", kernel_initializer=init(2))(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Flatten()(x)
        x = layers.Dense(64, activation="relu", name="fc1", kernel_initializer=init(3))(x)
    outputs = layers.Dense(10, name="output", kernel_initializer=init(9))(x)
    return keras.Model(inputs, outputs, name=name)


def _timed(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def compile_and_warm(keras, model, x, y):
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    for _ in range(3):
        model.train_on_batch(x, y)


def measure(flavor):
    import numpy as np
    if flavor == "tf_keras":
        from tfprune._keras import keras
    else:
        import keras
    import tfprune

    quick = FLAGS.quick
    rng = np.random.default_rng(0)
    x = rng.random((128, 28, 28, 1)).astype("float32")
    y = (np.arange(128) % 10).astype("int32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    rows = []
    for name in ("lenet_300_100", "small_cnn"):
        model = build(keras, name)
        rounds = 10 if quick else 100
        synflow = _timed(lambda: tfprune.compute_masks(model, "synflow", 0.98, rounds=rounds))
        snip = _timed(lambda: tfprune.compute_masks(model, "snip", 0.98, data=(x[:100], y[:100]), loss=loss))
        models = {"dense": build(keras, name),
                  "control": build(keras, name),  # a second dense model: its distance from 1.0 is the noise floor
                  "masked": tfprune.prune_at_init(build(keras, name), "synflow", 0.98)}
        ones = build(keras, name)
        models["ones"] = tfprune.apply_masks(ones, {k: np.ones_like(m) for k, m in tfprune.get_masks(ones).items()})
        models["stripped"] = tfprune.strip(tfprune.prune_at_init(build(keras, name), "synflow", 0.98))
        steps, blocks = (3, 2) if quick else (10, 40)
        times = {key: [] for key in models}
        for key, model in models.items():
            compile_and_warm(keras, model, x, y)
        for _ in range(blocks):  # alternate: all of them see the same machine load
            for key, model in models.items():
                times[key].append(_timed(lambda: [model.train_on_batch(x, y) for _ in range(steps)]) / steps)
        fastest = {key: min(t) for key, t in times.items()}
        rows.append({"flavor": flavor, "model": name, "synflow_s": synflow, "synflow_rounds": rounds, "snip_s": snip,
                     "dense_step_ms": 1e3 * fastest["dense"], "masked_step_ms": 1e3 * fastest["masked"],
                     "step_ratio": fastest["masked"] / fastest["dense"],
                     "median_ratio": statistics.median(times["masked"]) / statistics.median(times["dense"]),
                     **{f"{key}_ratio": fastest[key] / fastest["dense"] for key in ("control", "ones", "stripped")}})
    if FLAGS.accuracy and flavor != "tf_keras":
        from tfprune.experiment import data
        xt, yt, xe, ye, _, _ = data.load_arrays("fashion_mnist")
        for seed in [int(s) for s in FLAGS.seeds]:
            keras.utils.set_random_seed(seed)
            model = tfprune.prune_at_init(build(keras, "lenet_300_100", seed), "synflow", 0.98)
            model.compile(keras.optimizers.Adam(1.2e-3), loss, metrics=["accuracy"])
            t = _timed(lambda: model.fit(xt, yt, batch_size=128, epochs=FLAGS.epochs, verbose=0, shuffle=True))
            acc = float(model.evaluate(xe, ye, verbose=0)[1])
            rows.append({"flavor": flavor, "model": "lenet_300_100/fashion_mnist", "seed": seed,
                         "test_accuracy": acc, "sparsity": tfprune.sparsity_report(model).sparsity, "train_s": t})
    return rows


def run_child(flavor):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                        os.environ.get("PYTHONPATH", "")]))
    env.pop("TF_USE_LEGACY_KERAS", None)
    if flavor != "tf_keras":
        env["KERAS_BACKEND"] = flavor
    argv = [sys.executable, os.path.abspath(__file__), f"--child={flavor}", f"--seeds={','.join(FLAGS.seeds)}",
            f"--epochs={FLAGS.epochs}"] + (["--quick"] if FLAGS.quick else []) + (["--accuracy"] if FLAGS.accuracy else [])
    run = subprocess.run(argv, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{flavor}: the measuring process failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def markdown(rows):
    speed = [r for r in rows if "step_ratio" in r]
    lines = ["| flavor | model | SynFlow (s) | SNIP (s) | dense step (ms) | masked step (ms) | dense control / dense "
             "| **masked / dense** | masked / dense (medians) | all-ones masks / dense | stripped 98% / dense |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in speed:
        lines.append(f"| {r['flavor']} | {r['model']} | {r['synflow_s']:.2f} ({r['synflow_rounds']} rounds) | "
                     f"{r['snip_s']:.2f} | {r['dense_step_ms']:.2f} | {r['masked_step_ms']:.2f} | {r['control_ratio']:.3f} | "
                     f"**{r['step_ratio']:.3f}** | {r['median_ratio']:.3f} | {r['ones_ratio']:.3f} | {r['stripped_ratio']:.3f} |")
    acc = [r for r in rows if "test_accuracy" in r]
    if acc:
        lines += ["", "| flavor | seed | test accuracy | sparsity | train time (s) |", "|---|---|---|---|---|"]
        for r in acc:
            lines.append(f"| {r['flavor']} | {r['seed']} | {100 * r['test_accuracy']:.2f} | {r['sparsity']:.4f} | "
                         f"{r['train_s']:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if FLAGS.child:
        print(json.dumps(measure(FLAGS.child)))
        return 0
    bad = [f for f in FLAGS.flavors if f not in FLAVORS]
    if bad:
        raise app.UsageError(f"--flavors: got {bad}; allowed: {', '.join(FLAVORS)}")
    rows = []
    for flavor in FLAGS.flavors:
        print(f"measuring {flavor} ...", flush=True)
        rows += run_child(flavor)
    table = markdown(rows)
    print(table)
    if FLAGS.out:
        from tfprune.io import atomic_write
        atomic_write(FLAGS.out, table)
    return 0


if __name__ == "__main__":
    app.run(main)
