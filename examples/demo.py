r"""``make demo``: dense vs pruning at init vs TF-MOT on LeNet-300-100 / Fashion-MNIST, one table.

Trains three models with the same data, initialization, optimizer and number of steps:

1. ``dense`` (no pruning);
2. ``--method`` (default ``synflow``) pruned at initialization to ``--sparsity`` (default 0.98);
3. ``tfmot_gradual``: TF-MOT's ``prune_low_magnitude`` + ``PolynomialDecay`` to the same sparsity;

then prints one table: method, sparsity, test accuracy, train time, ``.tflite`` size (with
``--export_tflite``, the default here). Each run is :func:`tfprune.experiment.run`, as in
``examples/train.py``; results go to ``--out_dir`` (default ``demo_out``).

    python examples/demo.py                        # 8 epochs each (as the sweep)
    python examples/demo.py --epochs=2 --method=snip --sparsity=0.9
"""
import os
import sys
import time

if __package__ in (None, ""):  # `python examples/demo.py`: use this checkout's tfprune
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402  (absl.logging defines its flags, e.g. --verbosity, on import)

from tfprune import experiment  # noqa: E402
from tfprune.experiment import flags as experiment_flags  # noqa: E402
from tfprune.table import table as render_table  # noqa: E402

experiment_flags.select_keras()  # KERAS_BACKEND from --keras=3 --backend=..., before anything imports Keras
experiment_flags.import_plugins()
experiment_flags.define_run_flags()
flags.adopt_module_key_flags(experiment_flags)  # --help lists the shared flags too
FLAGS = flags.FLAGS

#: Defaults of ``make demo`` (set only when this file is the program, so tests see the usual ones).
DEMO_DEFAULTS = {"epochs": 8, "sparsity": 0.98, "method": "synflow", "out_dir": "demo_out", "verbose": 2,
                 "export_tflite": True}


def demo_configs(base: experiment.Config):
    """The three runs: dense, ``base.method`` at ``base.sparsity``, TF-MOT at the same sparsity."""
    out = [base.with_method("dense", sparsity=0.0, out_dir=os.path.join(base.out_dir, "dense"))]
    if base.method not in ("dense", "tfmot_gradual"):
        out.append(base.replace(out_dir=os.path.join(base.out_dir, base.method)))
    out.append(base.with_method("tfmot_gradual", out_dir=os.path.join(base.out_dir, "tfmot_gradual")))
    return out


def _size(result):
    tflite = result.get("tflite") or {}
    size = tflite.get("size_bytes")
    return f"{size / 1024:.1f} KiB" if size else "-"


def table(results) -> str:
    """The demo's table, one row per result."""
    rows = [[r["config"]["method"], f"{r['sparsity']:.4f}", f"{100 * r['test_accuracy']:.2f}%",
             f"{r['train_time_s']:.1f}s", _size(r), "layer collapse" if r["collapsed"] else ""] for r in results]
    return render_table(["method", "sparsity", "test acc", "train time", ".tflite size", "note"], rows, align="<>>>>")


def main(argv):
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    logging.set_verbosity(logging.WARNING)  # the TFLite converter's INFO lines
    if len(argv) > 1:
        raise ValueError(f"unexpected positional arguments: {' '.join(argv[1:])}; every setting is a --flag.")
    base = experiment_flags.config_from_flags(FLAGS)
    if not base.out_dir:
        base = base.replace(out_dir=DEMO_DEFAULTS["out_dir"])
    if base.sparsity == 0:
        raise ValueError("--sparsity must be > 0 for the demo (it compares pruned models with the dense one).")
    start = time.perf_counter()
    results = []
    for config in demo_configs(base):
        print(f"\n=== {config.method} (sparsity {config.sparsity:g}) ===", flush=True)
        results.append(experiment.run(config, overwrite=FLAGS.overwrite))
    print(f"\n{base.model} on {base.dataset}, {base.epochs} epochs, batch {base.batch_size}, "
          f"{base.optimizer} lr {base.lr:g}, seed {base.seed} (total {time.perf_counter() - start:.0f} s)")
    print(table(results))
    return 0


if __name__ == "__main__":
    # The demo's defaults go first on the command line, so that the user's own flags (later) win.
    sys.argv[1:1] = [f"--{name}={value}" for name, value in DEMO_DEFAULTS.items()]
    experiment_flags.run_binary(main)
