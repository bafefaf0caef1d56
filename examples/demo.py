r"""``make demo``: dense vs pruning at init vs TF-MOT on LeNet-300-100 / Fashion-MNIST, one table.

Trains three models with the same data, initialization, optimizer and number of steps:

1. ``dense`` (no pruning);
2. ``--method`` (default ``synflow``) pruned at initialization to ``--sparsity`` (default 0.98);
3. ``tfmot_gradual``: TF-MOT's ``prune_low_magnitude`` + ``PolynomialDecay`` to the same sparsity;

then prints one table: method, sparsity, test accuracy, train time, ``.tflite`` size (with
``--export_tflite``, the default here). Each run is :func:`tfprune.training.run`, as in
``examples/train.py``; results go to ``--out_dir`` (default ``demo_out``).

    python examples/demo.py                        # 8 epochs each (as the sweep)
    python examples/demo.py --epochs=2 --method=snip --sparsity=0.9
"""
import os
import sys
import time

if __package__ in (None, ""):  # `python examples/demo.py`: use this checkout's tfprune
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from tfprune import cli, training  # noqa: E402

cli.define_run_flags()
flags.adopt_module_key_flags(cli)  # --help lists the shared flags too
FLAGS = flags.FLAGS

#: Defaults of ``make demo`` (set only when this file is the program, so tests see the usual ones).
DEMO_DEFAULTS = {"epochs": 8, "method": "synflow", "sparsity": 0.98, "out_dir": "demo_out", "verbose": 2,
                 "export_tflite": True}


def demo_configs(base: training.Config):
    """The three runs: dense, ``base.method`` at ``base.sparsity``, TF-MOT at the same sparsity."""
    sparse = {"sparsity": base.sparsity}
    out = [base.replace(method="dense", sparsity=0.0, early_step=0, sanity="none",
                        out_dir=os.path.join(base.out_dir, "dense"))]
    if base.method not in ("dense", "tfmot_gradual"):
        out.append(base.replace(out_dir=os.path.join(base.out_dir, base.method), **sparse))
    out.append(base.replace(method="tfmot_gradual", early_step=0, sanity="none",
                            out_dir=os.path.join(base.out_dir, "tfmot_gradual"), **sparse))
    return out


def _size(result):
    tflite = result.get("tflite") or {}
    size = tflite.get("size_bytes")
    return f"{size / 1024:.1f} KiB" if size else "-"


def table(results) -> str:
    """The demo's table, one row per result."""
    header = f"{'method':<15} {'sparsity':>9} {'test acc':>9} {'train time':>11} {'.tflite size':>13}"
    lines = [header, "-" * len(header)]
    for r in results:
        c = r["config"]
        collapsed = "  (layer collapse)" if r["collapsed"] else ""
        lines.append(f"{c['method']:<15} {r['sparsity']:>9.4f} {100 * r['test_accuracy']:>8.2f}% "
                     f"{r['train_time_s']:>10.1f}s {_size(r):>13}{collapsed}")
    return "\n".join(lines)


def main(argv):
    import tensorflow as tf
    from absl import logging
    tf.get_logger().setLevel("ERROR")
    logging.set_verbosity(logging.WARNING)  # the TFLite converter's INFO lines
    if len(argv) > 1:
        raise app.UsageError(f"unexpected positional arguments: {' '.join(argv[1:])}")
    base = cli.config_from_flags(FLAGS)
    if not base.out_dir:
        base = base.replace(out_dir=DEMO_DEFAULTS["out_dir"])
    if base.sparsity == 0:
        raise app.UsageError("--sparsity must be > 0 for the demo (it compares pruned models with the dense one).")
    start = time.perf_counter()
    results = []
    for config in demo_configs(base):
        print(f"\n=== {config.method} (sparsity {config.sparsity:g}) ===", flush=True)
        results.append(training.run(config))
    print(f"\n{base.model} on {base.dataset}, {base.epochs} epochs, batch {base.batch_size}, "
          f"{base.optimizer} lr {base.lr:g}, seed {base.seed} (total {time.perf_counter() - start:.0f} s)")
    print(table(results))
    return 0


if __name__ == "__main__":
    for _name, _value in DEMO_DEFAULTS.items():
        FLAGS.set_default(_name, _value)
    app.run(main)
