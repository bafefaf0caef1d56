"""The SynFlow paper's layer-collapse measurement, without training (Tanaka et al. 2020, Fig. 1/3).

For VGG-16-bn with 100 classes on CIFAR-100 shapes (32x32x3), initialised with PyTorch's
untruncated Kaiming normal (``tfprune.experiment.models.vgg16_bn``), every method prunes globally
to compression 10^c (density 10^-c) for c on a grid of step 0.25; the result is the highest c
before the first grid point at which some layer keeps no weight ("max compression before layer
collapse"); ``--bisect`` finds that point by bisection (exact if collapse is monotone in c).
Random, magnitude, SNIP and GraSP are one-shot, so they are scored once and their masks
at every c come from the same scores (nested); SynFlow runs its 100 rounds for every c. SNIP and
GraSP score random images (no CIFAR-100 here; noted in the table) with random labels.

    python benchmarks/layer_collapse.py --seeds=0,1,2 --out=benchmarks/results/layer_collapse.md
"""
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("methods", ["random", "magnitude", "snip", "grasp", "synflow"], "scorers to compare.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "model (and random scorer) seeds; the table shows their mean.")
flags.DEFINE_float("step", 0.25, "grid step of log10 compression.", lower_bound=0.01)
flags.DEFINE_float("max_compression", 7.0, "largest log10 compression tried.", lower_bound=0.25)
flags.DEFINE_integer("per_class", 2, "SNIP/GraSP: random examples per class (100 classes).", lower_bound=1)
flags.DEFINE_integer("classes", 100, "output classes (CIFAR-100: 100).", lower_bound=2)
flags.DEFINE_float("width", 1.0, "width multiplier of VGG-16-bn (1.0: the paper's network).", lower_bound=0.01)
flags.DEFINE_bool("bisect", False, "find the first collapse by bisection over the grid (log2 of the grid's length "
                  "mask computations instead of one per point); exact when collapse is monotone in the compression, "
                  "as it is for the one-shot methods (nested masks).")
flags.DEFINE_string("out", None, "write the markdown table here (atomically).")

PAPER = {"random": 3.33, "magnitude": 2.75, "snip": 3.58, "grasp": 3.58, "synflow": 5.92}


def collapsed(masks) -> bool:
    return any(not np.any(m) for m in masks.values())


def max_compression(method, model, data, loss, seed, grid):
    """The highest grid value before the first one whose masks empty a layer (the last value of
    the grid if none does)."""
    import tfprune
    from tfprune.allocation import allocate
    from tfprune.scoring import get_scorer

    if method == "synflow":
        make = lambda c: tfprune.compute_masks(model, "synflow", 1.0 - 10.0 ** -c)  # noqa: E731
    else:
        options = {"seed": seed} if method == "random" else {}
        needs = get_scorer(method).needs_data
        scores = tfprune.compute_scores(model, method, data=data if needs else None, loss=loss if needs else None,
                                        **options)
        keep = get_scorer(method).keep
        make = lambda c: allocate(scores, 1.0 - 10.0 ** -c, keep=keep)  # noqa: E731
    if FLAGS.bisect:  # grid[lo] does not collapse (lo = -1: compression 0), grid[hi] does (hi = len: none does)
        lo, hi = -1, len(grid)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if collapsed(make(grid[mid])) else (mid, hi)
        return grid[lo] if lo >= 0 else 0.0
    last = 0.0
    for c in grid:
        if collapsed(make(c)):
            return last
        last = c
    return last


def main(argv):
    del argv
    from tfprune._keras import keras
    from tfprune.experiment import models

    grid = [round(FLAGS.step * i, 4) for i in range(1, int(FLAGS.max_compression / FLAGS.step) + 1)]
    rng = np.random.default_rng(0)
    n = FLAGS.per_class * FLAGS.classes
    data = (rng.random((n, 32, 32, 3), dtype=np.float32), np.repeat(np.arange(FLAGS.classes), FLAGS.per_class))
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    found = {m: [] for m in FLAGS.methods}
    seconds = {m: 0.0 for m in FLAGS.methods}
    for seed in [int(s) for s in FLAGS.seeds]:
        model = models.vgg16_bn((32, 32, 3), FLAGS.classes, seed=seed, width=FLAGS.width)
        for method in FLAGS.methods:
            start = time.perf_counter()
            found[method].append(max_compression(method, model, data, loss, seed, grid))
            seconds[method] += time.perf_counter() - start
            print(f"seed {seed} {method}: {found[method][-1]:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)
    rows = ["| method | max log10 compression before layer collapse (per seed) | mean | paper (mean of 3) | time (s) |",
            "|---|---|---|---|---|"]
    for method, values in found.items():
        data_note = " (random images)" if method in ("snip", "grasp") else ""
        rows.append(f"| {method}{data_note} | {', '.join(f'{v:.2f}' for v in values)} | {np.mean(values):.2f} | "
                    f"{PAPER.get(method, float('nan')):.2f} | {seconds[method]:.0f} |")
    command = "python benchmarks/layer_collapse.py " + " ".join(sys.argv[1:])
    text = (f"Command: `{command}`\n\nVGG-16-bn (width {FLAGS.width}), {FLAGS.classes} classes, 32x32x3, untruncated "
            f"Kaiming normal; global ranking; grid step {FLAGS.step} up to {FLAGS.max_compression}; SNIP/GraSP on "
            f"{n} random images ({FLAGS.per_class} per class) with balanced labels.\n\n" + "\n".join(rows) + "\n")
    print(text)
    if FLAGS.out:
        from tfprune.io import atomic_write
        atomic_write(FLAGS.out, text)


if __name__ == "__main__":
    app.run(main)
