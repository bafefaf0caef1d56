"""Where SNIP's and GraSP's ``compute_masks`` time goes, phase by phase, beside their compute floor.

For every model and scorer (one process; each repeat runs the library call, the traced floor and
the bare eager pass; the minimum over repeats is reported for each, so a phase's minimum and the
total's may come from different repeats):

* ``compute_masks``: ``tfprune.compute_masks(model, scorer, sparsity, data=(x, y), loss=loss)``;
* ``floor``: its traced pass(es) from ``benchmarks/scorer_floor.py`` (one gradient of the mean
  loss; GraSP: plus one Hessian-gradient product), trace excluded;
* ``bare eager``: the library's pass written out without the library (a plain tape over the
  model, not traced; GraSP: g and H·g in one pass, as the library computes them);
* the library's phases: ``make_score_fn`` (argument checks, batches, the net), the gradient
  pass(es) with their host reads, the score product, the finiteness checks and warnings, and
  ``allocate``.

    python benchmarks/scorer_phases.py --models=lenet_300_100,resnet20,vgg16_bn --repeats=3 \
        --out=benchmarks/results/scorer_phases.md
"""
import functools
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app  # noqa: E402

import tfprune  # noqa: E402
from scorer_floor import FLAGS, build, kernels_of, loss_floor  # noqa: E402  (and its flags)
from tfprune import api  # noqa: E402
from tfprune._keras import keras  # noqa: E402
from tfprune.scoring import _tfkeras_net  # noqa: E402

# (phase, owner, function): the functions compute_masks calls, timed where they are looked up
PHASES = [("make_score_fn", api, "make_score_fn"), ("pass", _tfkeras_net.TfKerasNet, "masked_gradient"),
          ("pass", _tfkeras_net.TfKerasNet, "masked_hessian_gradient"), ("checks", api, "check_finite"),
          ("warnings", api, "_warn_not_pruned"), ("warnings", api, "_warn_zero_scores"), ("allocate", api, "allocate")]


def timer(function, label, spent):
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.perf_counter() - start
    return wrapper


def timed(spent):
    """Wraps each phase's function so that its time adds up in ``spent``."""
    for label, owner, name in PHASES:
        setattr(owner, name, timer(getattr(owner, name), label, spent))


def bare_eager(model, x, y, hessian):
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    kernels = kernels_of(model)
    x, y = tf.constant(x), tf.constant(y)

    def run():
        if not hessian:
            with tf.GradientTape() as tape:
                value = loss(y, model(x, training=False))
            return tape.gradient(value, kernels)
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                value = loss(y, model(x, training=False) / 200.0)
            g = inner.gradient(value, kernels)
            z = tf.add_n([tf.reduce_sum(a * tf.stop_gradient(a)) for a in g])
        return outer.gradient(z, kernels)
    return run


def measure(name, scorer, spent):
    model, shape, classes = build(name)
    rng = np.random.default_rng(0)
    x = rng.random((FLAGS.per_class * classes,) + shape, dtype=np.float32)
    y = np.repeat(np.arange(classes), FLAGS.per_class).astype(np.int32)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    floor, eager = loss_floor(model, x, y, hessian=scorer == "grasp"), bare_eager(model, x, y, scorer == "grasp")
    eager()  # the process's first pass of this model (oneDNN primitives) is not a one-shot cost to report
    best = {}
    for _ in range(FLAGS.repeats):
        spent.clear()
        start = time.perf_counter()
        tfprune.compute_masks(model, scorer, FLAGS.sparsity, data=(x, y), loss=loss)
        spent["compute_masks"] = time.perf_counter() - start
        for label, fn in (("floor", floor), ("bare eager", eager)):
            start = time.perf_counter()
            fn()
            spent[label] = time.perf_counter() - start
        for label, seconds in spent.items():
            best[label] = min(best.get(label, np.inf), seconds)
    return best


def main(argv):
    del argv
    spent = {}
    timed(spent)
    columns = ["compute_masks", "floor", "bare eager", "make_score_fn", "pass", "checks", "warnings", "allocate"]
    rows = ["| model | scorer | compute_masks (ms) | floor (ms) | **ratio** | bare eager pass (ms) | make_score_fn | "
            "library pass | checks | warnings | allocate | rest |", "|---" * 12 + "|"]
    for name in FLAGS.models:
        for scorer in FLAGS.scorers:
            t = {k: v * 1e3 for k, v in measure(name, scorer, spent).items()}
            rest = t["compute_masks"] - sum(t.get(k, 0.0) for k in columns[3:])
            cells = [f"{t.get(k, 0.0):.1f}" for k in columns]
            row = (f"| {name} | {scorer} | {cells[0]} | {cells[1]} | **{t['compute_masks'] / t['floor']:.2f}** | "
                   + " | ".join(cells[2:]) + f" | {rest:.1f} |")
            print(row, flush=True)
            rows.append(row)
    command = "python benchmarks/scorer_phases.py " + " ".join(sys.argv[1:])
    text = (f"Command: `{command}`\n\nsparsity {FLAGS.sparsity}, {FLAGS.per_class} random examples per class, "
            f"minimum of {FLAGS.repeats} repeats per column, TF {tf.__version__}, {os.cpu_count()} CPU cores. "
            "ratio = compute_masks / floor; \"rest\" = compute_masks minus the library's phases (the "
            "score product, api bookkeeping).\n\n" + "\n".join(rows) + "\n")
    print(text)
    if FLAGS.out:
        from tfprune.io import atomic_write
        atomic_write(FLAGS.out, text)


if __name__ == "__main__":
    FLAGS.set_default("scorers", ["snip", "grasp"])
    app.run(main)
