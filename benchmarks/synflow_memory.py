"""SynFlow's memory on a ResNet-50-shaped model (25.5M weights, random initialization).

Builds ``keras.applications.ResNet50(weights=None)`` (tf_keras, constructed, nothing downloaded),
then runs ``compute_masks(model, "synflow", sparsity, rounds=R)`` in the same process and reports
the model's float32 weight memory, the process's peak resident set before and after scoring (the
difference is what SynFlow added at its peak: the float64 scoring copy, the float32 snapshot,
one round's gradients and scores, TensorFlow's workspace) and the wall time.

    python benchmarks/synflow_memory.py --rounds=100 --out=benchmarks/results/synflow_memory.md
"""
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import tfprune  # noqa: E402
from tfprune import _keras  # noqa: E402
from tfprune._keras import keras  # noqa: E402
from tfprune.io import atomic_write  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 100, "SynFlow rounds.", lower_bound=1)
flags.DEFINE_float("sparsity", 0.99, "target sparsity.")
flags.DEFINE_integer("image_size", 224, "input height and width.", lower_bound=32)
flags.DEFINE_string("out", None, "write the markdown result here (atomically).")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(argv):
    del argv
    keras.utils.set_random_seed(0)
    model = keras.applications.ResNet50(weights=None, input_shape=(FLAGS.image_size, FLAGS.image_size, 3))
    kernels = _keras.prunable_kernels(model)
    prunable = sum(int(np.prod(k.shape)) for k in kernels.values())
    weight_mib = sum(int(np.prod(w.shape)) * 4 for w in model.weights) / 2**20
    before = peak_rss_mib()
    start = time.perf_counter()
    masks = tfprune.compute_masks(model, "synflow", FLAGS.sparsity, rounds=FLAGS.rounds)
    seconds = time.perf_counter() - start
    after = peak_rss_mib()
    kept = sum(int(m.sum()) for m in masks.values())
    lines = [
        f"Command: `python benchmarks/synflow_memory.py --rounds={FLAGS.rounds} --sparsity={FLAGS.sparsity:g} "
        f"--image_size={FLAGS.image_size}`", "",
        "| model | prunable weights | weights (MiB, float32) | peak RSS before (MiB) | peak RSS after (MiB) "
        "| **added (MiB)** | added / weights | SynFlow time (s) | kept |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| ResNet-50 ({FLAGS.image_size}x{FLAGS.image_size}) | {prunable:,} | {weight_mib:.0f} | {before:.0f} | "
        f"{after:.0f} | **{after - before:.0f}** | {(after - before) / weight_mib:.2f} | {seconds:.1f} | {kept:,} |", ""]
    text = "\n".join(lines)
    print(text)
    if FLAGS.out:
        atomic_write(FLAGS.out, text)


if __name__ == "__main__":
    app.run(main)
