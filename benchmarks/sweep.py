r"""Accuracy vs sparsity: every method × sparsity × seed, against TF-MOT and lottery tickets.

Default grid: LeNet-300-100 on Fashion-MNIST, methods dense, every registered scorer (random,
magnitude, snip, grasp, synflow, and any ``--plugin`` adds), tfmot_gradual, lottery; sparsities 0, 0.5, 0.8, 0.9, 0.96, 0.98, 0.99, 0.998; seeds 0, 1.
Sparsity 0 is trained once per seed, as ``dense`` (every method is the dense model there).

    python benchmarks/sweep.py --out_dir=benchmarks/results --epochs=8 --seeds=0,1
    python benchmarks/sweep.py --quick --dataset=synthetic --out_dir=/tmp/sweep   # CI smoke, < 2 min

Each cell is one :func:`tfprune.experiment.run` (the same code and flags as ``examples/train.py``)
and writes ``<out_dir>/cells/<method>/s<sparsity>/seed<seed>/result.json`` atomically; a rerun
skips every cell whose ``result.json`` exists, so an interrupted sweep resumes where it stopped
(a failed cell leaves ``error.json`` and is retried). At the end the sweep writes, in
``out_dir``: ``results.csv`` (one row per cell), ``layer_density.csv`` (one row per cell and
layer), ``summary.md`` (mean ± std table), ``accuracy_vs_sparsity.png`` (mean ± std over seeds
vs density, log scale) and ``layer_density.png`` (per-layer density of each method at
``--plot_sparsity``: the picture of layer collapse). ``--plot_only`` redraws from the finished
cells without training.

``--executor=ray`` runs each cell (each trajectory, for ``lottery``) as one Ray task
(``pip install tfprune[ray]``), ``--ray_cpus_per_cell``/``--ray_gpus_per_cell`` reserved for it,
on a local Ray instance started for the sweep or on the cluster ``--ray_address`` names; the
cells' files, the resume and the tables are the same as with the default ``--executor=local``
(see :mod:`tfprune.experiment.executors` for what a multi-node cluster needs).

    python benchmarks/sweep.py --quick --dataset=synthetic --out_dir=/tmp/sweep_ray --executor=ray

``--quick`` shrinks the grid for smoke tests: sparsities 0, 0.9, 0.99, seed 0, 1 epoch, at most
2,000 training and 1,000 test examples (flags given explicitly still win).
"""
import csv
import functools
import importlib.util
import io
import math
import os
import sys
import time
import traceback

if __package__ in (None, ""):  # `python benchmarks/sweep.py`: use this checkout's tfprune
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(1, os.getcwd())  # --plugin modules in the current directory
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402  (absl.logging defines its flags, e.g. --verbosity, on import)

from tfprune.experiment import flags as experiment_flags  # noqa: E402

# KERAS_BACKEND from --keras=3 --backend=..., before anything imports Keras (grid imports TensorFlow, which does)
experiment_flags.select_keras()

from tfprune.experiment import check_config, executors, grid, method_names  # noqa: E402
from tfprune.experiment.grid import cells, collect, nearest_level, run_grid  # noqa: E402,F401
from tfprune.io import atomic_write  # noqa: E402

DEFAULT_SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.96, 0.98, 0.99, 0.998)
QUICK = {"sparsities": ["0", "0.9", "0.99"], "seeds": ["0"], "epochs": 1, "max_train": 2000, "max_test": 1000}

PLUGINS = experiment_flags.import_plugins()  # Ray workers import them too
experiment_flags.define_common_flags(out_dir_help="sweep directory: cells/, results.csv, summary.md and the plots.")
flags.DEFINE_list("methods", grid.default_methods(), "methods to run (dense is the sparsity-0 reference; with "
                  "--keras=3 the default leaves out tfmot_gradual, tf_keras only).")
flags.DEFINE_list("sparsities", [f"{s:g}" for s in DEFAULT_SPARSITIES], "target sparsities in [0, 1).")
flags.DEFINE_list("seeds", ["0", "1"], "seeds (each one a full grid).")
flags.DEFINE_bool("quick", False, "smoke-test grid: 3 sparsities, 1 seed, 1 epoch, subsets of the data.")
flags.DEFINE_float("plot_sparsity", 0.99, "sparsity of the layer_density.png picture (must be in the grid).")
flags.DEFINE_bool("plot_only", False, "do not train: rebuild the CSV, summary and plots from finished cells.")
flags.DEFINE_enum("executor", "local", ["local", "ray"], "where the cells run: local (this process, one "
                  "after another) or ray (one Ray task per cell; pip install tfprune[ray]).")
flags.DEFINE_string("ray_address", None, "with --executor=ray: the Ray cluster to join (auto: the one `ray start` "
                    "runs here; ray://host:10001: a remote one); default: start a local one for the sweep.")
flags.DEFINE_float("ray_cpus_per_cell", 1.0, "with --executor=ray: CPUs Ray reserves for each cell (> 0).")
flags.DEFINE_float("ray_gpus_per_cell", 0.0, "with --executor=ray: GPUs Ray reserves for each cell (>= 0, "
                   "fractions share a GPU).")
flags.adopt_module_key_flags(experiment_flags)  # --help lists the shared flags too
FLAGS = flags.FLAGS


def _parse_sparsities(values):
    out = []
    for v in values:
        s = float(v)
        if not 0.0 <= s < 1.0:
            raise ValueError(v)
        out.append(s)
    return out


def _parse_seeds(values):
    out = [int(v) for v in values]
    if any(s < 0 for s in out):
        raise ValueError(values)
    return out


def _check_list(values, parse):
    try:
        return bool(parse(values))
    except ValueError:
        return False


flags.register_validator("methods", lambda v: bool(v) and all(m in method_names() for m in v),
                         message=f"--methods: every method must be one of {', '.join(method_names())}.")
flags.register_validator("sparsities", lambda v: _check_list(v, _parse_sparsities),
                         message="--sparsities: a comma-separated list of numbers in [0, 1), e.g. 0,0.9,0.99.")
flags.register_validator("seeds", lambda v: _check_list(v, _parse_seeds),
                         message="--seeds: a comma-separated list of integers >= 0, e.g. 0,1.")
flags.register_validator("executor", lambda v: v != "ray" or importlib.util.find_spec("ray") is not None,
                         message=executors.RAY_MISSING + ".")
flags.register_validator("ray_cpus_per_cell", lambda v: v > 0, message="--ray_cpus_per_cell must be > 0.")
flags.register_validator("ray_gpus_per_cell", lambda v: v >= 0, message="--ray_gpus_per_cell must be >= 0.")


@flags.multi_flags_validator(["executor", "ray_address", "ray_cpus_per_cell", "ray_gpus_per_cell"],
                             message="--ray_address, --ray_cpus_per_cell and --ray_gpus_per_cell need --executor=ray.")
def _ray_flags_need_ray(values):
    return values["executor"] == "ray" or not (values["ray_address"] or values["ray_cpus_per_cell"] != 1.0
                                               or values["ray_gpus_per_cell"] != 0.0)


flags.register_validator("plot_sparsity", lambda v: 0.0 <= v < 1.0, message="--plot_sparsity must be in [0, 1).")


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
CSV_COLUMNS = ("method", "target_sparsity", "seed", "sparsity", "density", "test_accuracy", "test_loss",
               "train_accuracy", "train_time_s", "prune_time_s", "epochs", "steps", "collapsed", "dataset", "model")


def rows(results):
    out = []
    for r in results:
        c = r["config"]
        out.append({"method": c["method"], "target_sparsity": r["target_sparsity"], "seed": c["seed"],
                    "sparsity": r["sparsity"], "density": 1.0 - r["sparsity"], "test_accuracy": r["test_accuracy"],
                    "test_loss": r["test_loss"], "train_accuracy": r["train_accuracy"],
                    "train_time_s": r["train_time_s"], "prune_time_s": r["prune_time_s"], "epochs": c["epochs"],
                    "steps": r["steps"], "collapsed": ";".join(r["collapsed"]), "dataset": c["dataset"],
                    "model": c["model"]})
    method_order = {m: i for i, m in enumerate(grid.default_methods())}
    out.sort(key=lambda row: (method_order.get(row["method"], 99), row["target_sparsity"], row["seed"]))
    return out


def _write_text_atomic(path, text):
    atomic_write(path, text)
    return path


def _csv_text(columns, table):
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in table:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def write_csvs(results, out_dir):
    table = rows(results)
    paths = [_write_text_atomic(os.path.join(out_dir, "results.csv"), _csv_text(CSV_COLUMNS, table))]
    layer_rows = []
    for r in results:
        for layer in r["report"]["layers"]:
            layer_rows.append({"method": r["config"]["method"], "target_sparsity": r["target_sparsity"],
                               "seed": r["config"]["seed"], "layer": layer["name"], "params": layer["params"],
                               "kept": layer["kept"], "density": layer["density"], "collapsed": layer["collapsed"]})
    layer_rows.sort(key=lambda x: (x["method"], x["target_sparsity"], x["seed"]))
    paths.append(_write_text_atomic(os.path.join(out_dir, "layer_density.csv"), _csv_text(
        ("method", "target_sparsity", "seed", "layer", "params", "kept", "density", "collapsed"), layer_rows)))
    return paths


def aggregate(table):
    """``{(method, target_sparsity): (mean accuracy, std accuracy, n seeds, mean density, collapsed runs)}``."""
    groups = {}
    for row in table:
        groups.setdefault((row["method"], row["target_sparsity"]), []).append(row)
    out = {}
    for key, group in groups.items():
        acc = [g["test_accuracy"] for g in group]
        mean = sum(acc) / len(acc)
        std = math.sqrt(sum((a - mean) ** 2 for a in acc) / (len(acc) - 1)) if len(acc) > 1 else 0.0
        out[key] = (mean, std, len(acc), sum(g["density"] for g in group) / len(group),
                    sum(1 for g in group if g["collapsed"]))
    return out


def _method_order(agg) -> "list[str]":
    """The methods present in ``agg``, in the default grid's order (others after them)."""
    present = {m for m, _ in agg}
    known = [m for m in grid.default_methods() if m in present]
    return known + sorted(present - set(known))


def summary_markdown(results) -> str:
    """A method × sparsity table of test accuracy, mean ± std over seeds (``*``: some seed collapsed)."""
    table = rows(results)
    agg = aggregate(table)
    sparsities = sorted({s for (_, s) in agg if s > 0})
    methods = [m for m in _method_order(agg) if m != "dense"]
    lines = []
    dense = agg.get(("dense", 0.0))
    if dense:
        lines.append(f"Dense: {100 * dense[0]:.2f} ± {100 * dense[1]:.2f} % ({dense[2]} seeds)\n")
    lines.append("| method | " + " | ".join(f"{100 * s:g}%" for s in sparsities) + " |")
    lines.append("|---|" + "---|" * len(sparsities))
    for m in methods:
        cells_ = []
        for s in sparsities:
            a = agg.get((m, s))
            cells_.append("" if a is None else f"{100 * a[0]:.2f} ± {100 * a[1]:.2f}{' *' if a[4] else ''}")
        lines.append(f"| {m} | " + " | ".join(cells_) + " |")
    lines.append("\nTest accuracy (%), mean ± std over seeds; `*`: layer collapse in at least one seed.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Plots
# --------------------------------------------------------------------------------------------
STYLE = {"random": ("tab:gray", "o"), "magnitude": ("tab:brown", "v"), "snip": ("tab:blue", "s"),
         "grasp": ("tab:green", "D"), "synflow": ("tab:red", "^"), "tfmot_gradual": ("black", "*"),
         "lottery": ("tab:purple", "P")}


def plot_accuracy(results, path, title=None, chance=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = rows(results)
    agg = aggregate(table)
    fig, ax = plt.subplots(figsize=(8, 5.2))
    dense = agg.get(("dense", 0.0))
    if dense:
        ax.axhline(100 * dense[0], color="k", ls="--", lw=1, label=f"dense ({100 * dense[0]:.1f}%)")
        ax.axhspan(100 * (dense[0] - dense[1]), 100 * (dense[0] + dense[1]), color="k", alpha=0.08)
    if chance:
        ax.axhline(100 * chance, color="0.6", ls=":", lw=1, label=f"chance ({100 * chance:.0f}%)")
    for m in _method_order(agg):
        # x: the measured density (lottery cells are the nearest level of one trajectory)
        points = sorted((a[3], a) for (mm, s), a in agg.items() if mm == m and s > 0)
        if not points:
            continue
        color, marker = STYLE.get(m, (None, "o"))
        x = [p[0] for p in points]
        mean = [100 * p[1][0] for p in points]
        std = [100 * p[1][1] for p in points]
        ax.plot(x, mean, marker=marker, color=color, label=m, lw=1.5, ms=5)
        ax.fill_between(x, [a - b for a, b in zip(mean, std)], [a + b for a, b in zip(mean, std)],
                        color=color, alpha=0.15, lw=0)
    ax.set_xscale("log")
    ax.invert_xaxis()
    densities = sorted({1 - s for (_, s) in agg if s > 0}, reverse=True)
    if densities:
        ax.set_xticks(densities)
        ax.set_xticklabels([f"{d:g}\n({100 * (1 - d):g}%)" for d in densities], fontsize=8)
        ax.minorticks_off()
    ax.set_xlabel("density (fraction of weights kept, log scale); sparsity in parentheses")
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=120)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)
    return path


def plot_layer_density(results, path, sparsity, seed=None, title=None):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    picked = [r for r in results if abs(r["target_sparsity"] - sparsity) < 1e-9
              and r["config"]["method"] != "dense" and (seed is None or r["config"]["seed"] == seed)]
    if not picked:
        return None
    seed = min(r["config"]["seed"] for r in picked) if seed is None else seed
    picked = [r for r in picked if r["config"]["seed"] == seed]
    order = {m: i for i, m in enumerate(grid.default_methods())}
    picked.sort(key=lambda r: order.get(r["config"]["method"], 99))
    layers = [row["name"] for row in picked[0]["report"]["layers"]]
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(layers) + 2), 4.8))
    width = 0.8 / len(picked)
    floor = 1e-5  # a collapsed layer (density 0) is drawn at the floor, marked with "x"
    for i, r in enumerate(picked):
        m = r["config"]["method"]
        dens = [row["density"] for row in r["report"]["layers"]]
        xs = np.arange(len(layers)) + (i - (len(picked) - 1) / 2) * width
        color = STYLE.get(m, (None, "o"))[0]
        ax.bar(xs, [max(d, floor) for d in dens], width, color=color, label=m, alpha=0.85)
        for x, row in zip(xs, r["report"]["layers"]):
            if row["collapsed"]:
                ax.text(x, floor * 1.3, "x", ha="center", va="bottom", color="red", fontsize=9, fontweight="bold")
    ax.axhline(1 - sparsity, color="k", ls="--", lw=1, label=f"overall density {1 - sparsity:g}")
    ax.set_yscale("log")
    ax.set_ylim(floor, 1.5)
    ax.set_xticks(range(len(layers)))
    ax.set_xticklabels([f"{n}\n{row['params']:,} w" for n, row in zip(layers, picked[0]["report"]["layers"])])
    ax.set_ylabel("layer density (log scale)")
    ax.set_title(title or f"per-layer density at {100 * sparsity:g}% sparsity (seed {seed}); x = layer collapsed",
                 fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path + ".tmp.png", dpi=120)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)
    return path


def write_outputs(results, out_dir, plot_sparsity, log=print):
    """CSVs, ``summary.md`` and both plots from ``results``; returns the written paths."""
    if not results:
        log("no finished cells: nothing to tabulate.")
        return []
    paths = write_csvs(results, out_dir)
    paths.append(_write_text_atomic(os.path.join(out_dir, "summary.md"), summary_markdown(results)))
    c = results[0]["config"]
    num_classes = results[0]["report"]["layers"][-1]["shape"][-1]
    epochs = sorted({r["config"]["epochs"] for r in results})
    seeds = sorted({r["config"]["seed"] for r in results})
    title = (f"{c['model']} on {c['dataset']}: {', '.join(map(str, epochs))} epochs, "
             f"{c['optimizer']} lr {c['lr']:g}, batch {c['batch_size']}, {len(seeds)} seed(s), mean ± std")
    paths.append(plot_accuracy(results, os.path.join(out_dir, "accuracy_vs_sparsity.png"), title=title,
                               chance=1.0 / num_classes))
    layer_plot = plot_layer_density(results, os.path.join(out_dir, "layer_density.png"), plot_sparsity)
    if layer_plot:
        paths.append(layer_plot)
    else:
        log(f"no cell at sparsity {plot_sparsity:g}: layer_density.png not drawn (see --plot_sparsity).")
    return paths


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------
def settings_from_flags():
    """``(base Config, methods, sparsities, seeds)`` with ``--quick`` applied to unset flags."""
    base, values = experiment_flags.grid_settings(FLAGS, QUICK if FLAGS.quick else None, ("sparsities", "seeds"))
    methods = grid.default_methods(base.keras) if FLAGS["methods"].using_default_value else list(FLAGS.methods)
    return base, methods, _parse_sparsities(values["sparsities"]), _parse_seeds(values["seeds"])


def executor_from_flags():
    """The executor ``--executor`` names (Ray imported only for ``ray``)."""
    if FLAGS.executor == "local":
        return executors.LocalExecutor()
    return executors.RayExecutor(address=FLAGS.ray_address, cpus_per_cell=FLAGS.ray_cpus_per_cell,
                                 gpus_per_cell=FLAGS.ray_gpus_per_cell, imports=PLUGINS)


def main(argv):
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")  # retracing notices: one model per cell is expected
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        raise ValueError(f"unexpected positional arguments: {' '.join(argv[1:])}; every setting is a --flag.")
    base, methods, sparsities, seeds = settings_from_flags()
    # Ray workers may run in another directory (or on another machine, with out_dir on a shared file system)
    out_dir = os.path.abspath(FLAGS.out_dir) if FLAGS.executor == "ray" else FLAGS.out_dir
    for method, sparsity, seed in cells(methods, sparsities, seeds[:1]):  # every cell's settings, before training
        check_config(grid.cell_config(base, out_dir, method, sparsity, seed))
    if not FLAGS.plot_only:
        n = len(cells(methods, sparsities, seeds))
        print(f"sweep: {base.model} on {base.dataset}, {n} cells ({len(methods)} methods x {len(sparsities)} "
              f"sparsities x {len(seeds)} seeds), {base.epochs} epochs, batch {base.batch_size}, "
              f"{base.optimizer} lr {base.lr:g}, executor {FLAGS.executor} -> {out_dir}", flush=True)
        run_grid(base, out_dir, methods, sparsities, seeds, log=functools.partial(print, flush=True),
                 executor=executor_from_flags())
    results = collect(base, out_dir, methods, sparsities, seeds)
    for path in write_outputs(results, out_dir, FLAGS.plot_sparsity):
        print(f"wrote {path}")
    print(summary_markdown(results))
    return 0


if __name__ == "__main__":
    flags.mark_flag_as_required("out_dir")  # cells, CSV and plots go there; a rerun resumes
    experiment_flags.run_binary(main)
