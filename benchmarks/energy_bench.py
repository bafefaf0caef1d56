"""Energy per inference: dense vs 90% unstructured vs 90% block vs channel-pruned (tfprune.energy).

For LeNet-300-100 (28x28x1) and VGG-small (32x32x3) from ``tfprune.experiment.models`` (no
training: energy is a count), in float32 and int8, with the default
:class:`tfprune.EnergyCosts` (Horowitz 45 nm; 1 MiB on chip; 16-bit indices):

* dense;
* 90% unstructured: ``tfprune.compute_masks(model, scorer, 0.9)`` (global), element-sparse;
* 90% block: ``compute_masks(..., block=(4, 1))`` (4 consecutive inputs of one output: TFLite's
  1x4 float kernel), one index per kept block. Allocation makes blocks of 2-D (Dense) kernels
  only, so VGG-small's conv kernels stay element-sparse in that row;
* channel-pruned: ``tfprune.structured.prune(model, ratio)`` (L1, every layer loses ``ratio``
  of its channels), ``ratio`` bisected so that the smaller model keeps as many kernel weights
  as the 90% masks (the closest from either side), priced dense.

Optionally (``--tflite``) LeNet-300-100 90% block-sparse exported with ``tflite_export.export``
as float32 (1x4) and int8 (1x16), priced as the written file runs (``report.energy``).

Run (a minute or two on 2 cores)::

    python benchmarks/energy_bench.py
"""
from __future__ import annotations

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

import tfprune  # noqa: E402
import tfprune.structured as ts  # noqa: E402
from tfprune.experiment import models  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["lenet_300_100", "vgg_small"], "Models from tfprune.experiment.models.")
flags.DEFINE_float("sparsity", 0.9, "Fraction of kernel weights removed (masks) / matched (channels).")
flags.DEFINE_string("scorer", "magnitude", "Data-free scorer for the masks (magnitude, synflow, random).")
flags.DEFINE_list("dtypes", ["float32", "int8"], "Data types to price.")
flags.DEFINE_bool("tflite", True, "Also export LeNet-300-100 90% block-sparse (float32, int8) and price the files.")
flags.DEFINE_integer("seed", 0, "Initialization seed.")
flags.DEFINE_string("out", os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "energy.md"),
                    "Markdown file to write.")

SHAPES = {"lenet_300_100": (28, 28, 1), "vgg_small": (32, 32, 3)}


def kernel_weights(model) -> int:
    counts, _ = tfprune.energy.count_layers(model)
    return sum(c.params for c in counts)


def channel_pruned(model, target: int):
    """``(small model, ratio)``: the layerwise channel ratio whose smaller model's kernel weights
    are closest to ``target`` (bisection on the ratio, 16 steps)."""
    low, high, best = 0.0, 0.99, None
    for _ in range(16):
        ratio = (low + high) / 2
        small = ts.prune(model, ratio).model
        n = kernel_weights(small)
        if best is None or abs(n - target) < abs(best[1] - target):
            best = (small, n, ratio)
        if n > target:
            low = ratio
        else:
            high = ratio
    return best[0], best[2]


def variants(name):
    """``[(label, model, masks, block)]`` for one model."""
    model = models.build(name, SHAPES[name], 10, seed=FLAGS.seed)
    masks = tfprune.compute_masks(model, FLAGS.scorer, sparsity=FLAGS.sparsity)
    blocks = tfprune.compute_masks(model, FLAGS.scorer, sparsity=FLAGS.sparsity, block=(4, 1))
    kept = int(sum(m.sum() for m in masks.values()))
    small, ratio = channel_pruned(model, kept)
    pct = f"{FLAGS.sparsity:.0%}"
    return [("dense", model, {}, None), (f"{pct} unstructured ({FLAGS.scorer})", model, masks, None),
            (f"{pct} block 4x1 ({FLAGS.scorer})", model, blocks, (4, 1)),
            (f"channels, ratio {ratio:.3f} (L1)", small, {}, None)], kept


def rows_for(name):
    out = []
    cases, kept = variants(name)
    for dtype in FLAGS.dtypes:
        dense_total = None
        for label, model, masks, block in cases:
            e = tfprune.estimate_energy(model, masks, block=block, dtype=dtype)
            weights = kernel_weights(model) if not masks else int(sum(m.sum() for m in masks.values()))
            dense_total = dense_total or e.total_pj
            out.append((name, dtype, label, weights, e, e.total_pj / dense_total))
    return out, kept


def tflite_rows():
    import tflite_export  # pylint: disable=import-outside-toplevel

    model = models.build("lenet_300_100", SHAPES["lenet_300_100"], 10, seed=FLAGS.seed)
    x = np.random.default_rng(FLAGS.seed).random((64,) + SHAPES["lenet_300_100"], dtype=np.float32)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for quantization, block in (("none", (4, 1)), ("int8", (16, 1))):
            masks = tfprune.compute_masks(model, FLAGS.scorer, sparsity=FLAGS.sparsity, block=block)
            pruned = tfprune.apply_masks(models.build("lenet_300_100", SHAPES["lenet_300_100"], 10, seed=FLAGS.seed),
                                         masks)
            report = tflite_export.export(pruned, os.path.join(tmp, f"{quantization}.tflite"), quantization=quantization,
                                          representative_data=x if quantization == "int8" else None, block="auto")
            out.append((quantization, block, report))
    return out


def uj(pj) -> str:
    return f"{pj * 1e-6:.3f}"


def main(argv):
    del argv
    lines = [f"Command: `{' '.join(['python benchmarks/energy_bench.py'] + sys.argv[1:])}`", "",
             "Energy per inference (batch 1) from `tfprune.estimate_energy` with the default `tfprune.EnergyCosts`: "
             "Horowitz (ISSCC 2014) 45 nm costs — float32 MAC 4.6 pJ, int8 MAC 0.3 pJ (8-bit multiply, 32-bit "
             "accumulate), register file 1 pJ (2 reads per MAC), SRAM 5 pJ and DRAM 640 pJ per 32-bit access, scaled "
             "by the bytes moved; weights (values + 16-bit indices) in SRAM when they fit in 1 MiB, else DRAM; "
             "activations in SRAM; every weight and activation fetched once (ideal reuse). Models untrained (seed "
             f"{FLAGS.seed}): energy is a count. Masks: `tfprune.compute_masks(model, {FLAGS.scorer!r}, "
             f"{FLAGS.sparsity})` (global), block rows with `block=(4, 1)` (Dense kernels only: VGG-small's convs "
             "stay element-sparse there); channel rows: `tfprune.structured.prune(model, ratio)` with `ratio` "
             "bisected to keep as many kernel weights as the masks.", "",
             "| model | dtype | variant | kernel weights | MACs | weight bytes | weights in | compute µJ | "
             "memory µJ | total µJ | ×dense |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    summary = []
    for name in FLAGS.models:
        rows, kept = rows_for(name)
        for model, dtype, label, weights, e, ratio in rows:
            lines.append(f"| {model} | {dtype} | {label} | {weights:,} | {e.macs:,} | {e.weight_bytes:,.0f} | "
                         f"{e.weights_in} | {uj(e.compute_pj)} | {uj(e.memory_pj)} | {uj(e.total_pj)} | {ratio:.4f} |")
            if label == "dense":
                summary.append(f"{model} {dtype} dense: memory {e.memory_pj / e.total_pj:.0%} of the total")
    lines += ["", "Memory share of the dense models: " + "; ".join(summary) + "."]
    if FLAGS.tflite:
        lines += ["", "Exported `.tflite` files (LeNet-300-100, 90% block masks, `tflite_export.export(..., "
                  "block='auto')`; int8 calibrated on 64 uniform random images), priced as the written file runs "
                  "(`report.energy`: block-sparse weights run sparse, element-sparse ones are densified at load):", "",
                  "| quantization | block | file bytes | run block-sparse | sparse-encoded weights: written as (rule) | MACs | "
                  "weight bytes | weights in | compute µJ | memory µJ | total µJ |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for quantization, block, report in tflite_rows():
            e = report.energy
            sparse = ", ".join(r.name for r in e.rows if r.stored != "dense") or "none"
            why = "; ".join(f"{t.layer}: {t.final_encoding}" + (f" ({t.rule})" if t.rule else "") for t in report.tensors)
            lines.append(f"| {quantization} | {block[0]}x{block[1]} | {report.size_bytes:,} | {sparse} | {why or '-'} | "
                         f"{e.macs:,} | {e.weight_bytes:,.0f} | {e.weights_in} | {uj(e.compute_pj)} | "
                         f"{uj(e.memory_pj)} | {uj(e.total_pj)} |")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(FLAGS.out), exist_ok=True)
    tfprune.io.atomic_write(FLAGS.out, text)
    print(text)


if __name__ == "__main__":
    app.run(main)
