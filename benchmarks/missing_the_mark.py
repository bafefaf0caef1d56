r"""Frankle, Dziugaite, Roy & Carbin 2021, "Pruning Neural Networks at Initialization: Why are We
Missing the Mark?", as one resumable command on tfprune's procedures.

Cells (each one :func:`tfprune.experiment.run`, written atomically to
``<out_dir>/cells/<label>/s<sparsity>/seed<seed>/result.json``; a rerun skips finished cells):

* every ``--methods`` scorer × ``--sparsities`` × ``--variants`` × ``--seeds``: ``unmodified``
  (pruning at initialization), ``shuffle`` / ``reinit`` / ``invert`` (the sanity checks);
* pruning early in training: every scorer after each ``--early_steps`` k > 0 steps, at
  ``--early_sparsity``;
* the baselines per seed: ``magnitude_after_training`` (train, prune once, fine-tune as long) at
  every sparsity, and lottery-ticket rewinding (``lottery``, one trajectory per seed, rewinding to
  ``--rewind_step``).

Outputs: ``results.csv``, ``summary.md`` (mean ± std per label and sparsity),
``variants.png`` (accuracy vs sparsity, one panel per method with its variants and the baselines)
and ``early.png`` (accuracy vs the pruning step k at ``--early_sparsity``).

    python benchmarks/missing_the_mark.py --out_dir=benchmarks/out/mtm --seeds=0,1
    python benchmarks/missing_the_mark.py --quick --dataset=synthetic --out_dir=/tmp/mtm   # machinery check
"""
import csv
import io
import math
import os
import sys
import time

if __package__ in (None, ""):  # `python benchmarks/missing_the_mark.py`: use this checkout's tfprune
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    sys.path.insert(1, os.getcwd())
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import flags, logging  # noqa: E402  (absl.logging defines its flags on import)

from tfprune.experiment import flags as experiment_flags  # noqa: E402

# KERAS_BACKEND from --keras=3 --backend=..., before anything imports Keras (grid imports TensorFlow, which does)
experiment_flags.select_keras()

from tfprune.experiment import check_config, grid  # noqa: E402
from tfprune.io import atomic_write  # noqa: E402

SCORERS = ("random", "magnitude", "snip", "grasp", "synflow")
VARIANTS = ("unmodified", "shuffle", "reinit", "invert")
BASELINES = ("magnitude_after_training", "lottery")
QUICK = {"sparsities": ["0.9", "0.99"], "seeds": ["0"], "epochs": 1, "max_train": 512, "max_test": 128,
         "early_steps": ["0", "2"], "methods": ["random", "synflow"]}

experiment_flags.import_plugins()
experiment_flags.define_common_flags(out_dir_help="experiment directory: cells/, results.csv, summary.md, plots.")
flags.DEFINE_list("methods", list(SCORERS), "scorers pruned at init, checked and pruned early.")
flags.DEFINE_list("sparsities", ["0.8", "0.9", "0.96", "0.98", "0.99"], "target sparsities in (0, 1).")
flags.DEFINE_list("variants", list(VARIANTS), "unmodified and the sanity checks (shuffle, reinit, invert).")
flags.DEFINE_list("seeds", ["0", "1"], "seeds (each one the full experiment).")
flags.DEFINE_list("early_steps", ["0", "100", "469"], "training steps before scoring (0: at init).")
flags.DEFINE_float("early_sparsity", 0.98, "sparsity of the pruning-early runs.")
flags.DEFINE_list("baselines", list(BASELINES), "magnitude_after_training and/or lottery.")
flags.DEFINE_bool("quick", False, "machinery check: 2 sparsities, 1 seed, 1 epoch, 2 methods, small data.")
flags.DEFINE_bool("plot_only", False, "do not train: rebuild the tables and plots from finished cells.")
flags.DEFINE_integer("max_cells", None, "train at most this many unfinished cells, then write the tables and exit "
                     "(memory grows with every cell trained in one process: run the command in a loop).",
                     lower_bound=1)
flags.adopt_module_key_flags(experiment_flags)
FLAGS = flags.FLAGS


def cells(base, out_dir, methods, sparsities, variants, seeds, early_steps, early_sparsity, baselines):
    """``[(label, sparsity, seed, config)]`` of the plain cells (the lottery trajectories aside)."""
    out = []
    for seed in seeds:
        for sparsity in sparsities:
            for method in methods:
                for variant in variants:
                    label = method if variant == "unmodified" else f"{method}-{variant}"
                    settings = {} if variant == "unmodified" else {"sanity": variant}
                    out.append((label, sparsity, seed, _cell(base, out_dir, method, label, sparsity, seed, settings)))
            if "magnitude_after_training" in baselines:
                out.append(("magnitude_after_training", sparsity, seed, _cell(
                    base, out_dir, "magnitude_after_training", "magnitude_after_training", sparsity, seed, {})))
        for k in early_steps:
            if k > 0:
                for method in methods:
                    label = f"{method}-k{k}"
                    out.append((label, early_sparsity, seed,
                                _cell(base, out_dir, method, label, early_sparsity, seed, {"early_step": k})))
    return out


def _cell(base, out_dir, method, label, sparsity, seed, settings):
    # the flags' settings (--scope, --per_class, --search_epochs, ...) and the cell's variant
    return base.replace(settings={**base.settings, **settings}).with_method(
        method, sparsity=sparsity, seed=seed, out_dir=grid.cell_dir(out_dir, label, sparsity, seed))


def run_all(base, out_dir, plain, sparsities, seeds, baselines, log=print, max_cells=None):
    """Trains the unfinished cells (at most ``max_cells``), then the lottery trajectories; returns
    whether everything is finished."""
    start, trained = time.perf_counter(), 0
    for i, (label, sparsity, seed, config) in enumerate(plain, 1):
        name = f"[{i}/{len(plain)}] {label:<28} sparsity {sparsity:<5g} seed {seed}"
        try:
            t0 = time.perf_counter()
            done = grid.finished_config(config) is not None
            if not done and max_cells is not None and trained >= max_cells:
                return False
            trained += not done
            result = grid.run_config(config, log=log)
            log(f"{name}: {'done before, ' if done else ''}test accuracy {result['test_accuracy']:.4f} "
                f"({time.perf_counter() - t0:.0f} s, total {(time.perf_counter() - start) / 60:.1f} min)")
        except Exception as e:  # noqa: BLE001 - reported; error.json is in the cell; retried next time
            log(f"{name}: FAILED {e!r}")
    if "lottery" in baselines:
        for seed in seeds:
            grid.run_trajectory_cells(base, out_dir, "lottery", sparsities, seed, log=log)
    return True


def collect(out_dir, plain, sparsities, seeds, baselines):
    results = []
    for label, sparsity, seed, config in plain:
        done = grid.finished_config(config)
        if done is not None:
            results.append((label, done))
    if "lottery" in baselines:
        for seed in seeds:
            for sparsity in sparsities:
                path = grid.cell_dir(out_dir, "lottery", sparsity, seed)
                done = grid.read_result(path)
                if done is not None:
                    results.append(("lottery", done))
    return results


def _stats(values):
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, std


def aggregate(results):
    """``{(label, target sparsity): (mean accuracy, std, n, mean measured sparsity)}``."""
    groups = {}
    for label, r in results:
        groups.setdefault((label, r["target_sparsity"]), []).append(r)
    return {key: _stats([r["test_accuracy"] for r in rs]) + (len(rs), sum(r["sparsity"] for r in rs) / len(rs))
            for key, rs in groups.items()}


def summary_markdown(results) -> str:
    agg = aggregate(results)
    sparsities = sorted({s for _, s in agg})
    labels = sorted({l for l, _ in agg}, key=lambda l: (l.split("-")[0], len(l), l))
    lines = ["| label | " + " | ".join(f"{100 * s:g}%" for s in sparsities) + " |", "|---|" + "---|" * len(sparsities)]
    for label in labels:
        row = []
        for s in sparsities:
            a = agg.get((label, s))
            if a is None:
                row.append("")
            else:  # one seed: no spread to show
                row.append(f"{100 * a[0]:.2f} ± {100 * a[1]:.2f}" if a[2] > 1 else f"{100 * a[0]:.2f} (1 seed)")
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    lines.append("\nTest accuracy (%), mean ± std over seeds. `<method>-<variant>`: sanity check; "
                 "`<method>-k<k>`: scored after k training steps.")
    return "\n".join(lines) + "\n"


def write_csv(results, path):
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["label", "target_sparsity", "seed", "sparsity", "test_accuracy", "collapsed"])
    for label, r in sorted(results, key=lambda x: (x[0], x[1]["target_sparsity"], x[1]["config"]["seed"])):
        writer.writerow([label, r["target_sparsity"], r["config"]["seed"], f"{r['sparsity']:.6g}",
                         f"{r['test_accuracy']:.6g}", ";".join(r["collapsed"])])
    atomic_write(path, buf.getvalue())


STYLE = {"unmodified": ("k", "o", "-"), "shuffle": ("tab:blue", "s", "--"), "reinit": ("tab:green", "^", "--"),
         "invert": ("tab:red", "v", ":")}


def plot_variants(results, methods, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(results)
    fig, axes = plt.subplots(1, len(methods), figsize=(3.4 * len(methods), 3.6), sharey=True, squeeze=False)
    for ax, method in zip(axes[0], methods):
        for variant, (color, marker, ls) in STYLE.items():
            label = method if variant == "unmodified" else f"{method}-{variant}"
            _line(ax, agg, label, variant, color, marker, ls)
        for base, color in (("lottery", "tab:purple"), ("magnitude_after_training", "tab:brown")):
            _line(ax, agg, base, base.replace("_after_training", " after training"), color, None, "-", lw=1)
        ax.set_title(method, fontsize=10)
        ax.set_xscale("log")
        ax.invert_xaxis()
        ax.set_xlabel("density (log)")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("test accuracy (%)")
    axes[0][-1].legend(fontsize=7, loc="lower left")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _save(fig, plt, path)


def _line(ax, agg, label, legend, color, marker, ls, lw=1.5):
    points = sorted((1 - a[3], a) for (l, s), a in agg.items() if l == label)
    if points:
        ax.plot([p[0] for p in points], [100 * p[1][0] for p in points], color=color, marker=marker, ls=ls,
                lw=lw, ms=4, label=legend)


def plot_early(results, methods, early_steps, sparsity, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = aggregate(results)
    fig, ax = plt.subplots(figsize=(6, 4))
    for method in methods:
        xs, ys = [], []
        for k in early_steps:
            a = agg.get((method if k == 0 else f"{method}-k{k}", sparsity))
            if a is not None:
                xs.append(k)
                ys.append(100 * a[0])
        if xs:
            ax.plot(xs, ys, marker="o", label=method)
    ax.set_xlabel("training steps before scoring (k)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, plt, path)


def _save(fig, plt, path):
    fig.savefig(path + ".tmp.png", dpi=110)
    plt.close(fig)
    os.replace(path + ".tmp.png", path)


def main(argv):
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # retracing notices: one model per cell is expected
    logging.set_verbosity(logging.WARNING)
    if len(argv) > 1:
        raise ValueError(f"unexpected positional arguments: {' '.join(argv[1:])}; every setting is a --flag.")
    base, values = experiment_flags.grid_settings(FLAGS, QUICK if FLAGS.quick else None,
                                                  ("sparsities", "seeds", "early_steps", "methods"))
    sparsities = sorted(float(s) for s in values["sparsities"])
    seeds = [int(s) for s in values["seeds"]]
    early = sorted(int(k) for k in values["early_steps"])
    methods = list(values["methods"])
    out_dir = FLAGS.out_dir
    plain = cells(base, out_dir, methods, sparsities, FLAGS.variants, seeds, early, FLAGS.early_sparsity,
                  FLAGS.baselines)
    for _, _, _, config in plain[:len(plain) // max(len(seeds), 1)]:
        check_config(config)
    if not FLAGS.plot_only:
        print(f"missing the mark: {len(plain)} cells + {len(seeds) if 'lottery' in FLAGS.baselines else 0} lottery "
              f"trajectories, {base.model} on {base.dataset}, {base.epochs} epochs -> {out_dir}", flush=True)
        complete = run_all(base, out_dir, plain, sparsities, seeds, FLAGS.baselines,
                           log=lambda m: print(m, flush=True), max_cells=FLAGS.max_cells)
        if not complete:
            print(f"stopped after --max_cells={FLAGS.max_cells} cells; run the command again to continue.")
    results = collect(out_dir, plain, sparsities, seeds, FLAGS.baselines)
    write_csv(results, os.path.join(out_dir, "results.csv"))
    atomic_write(os.path.join(out_dir, "summary.md"), summary_markdown(results))
    title = (f"{base.model} on {base.dataset}, {base.epochs} epochs, {len(seeds)} seed(s); baselines: "
             f"{', '.join(FLAGS.baselines)}")
    plot_variants(results, methods, os.path.join(out_dir, "variants.png"), title)
    plot_early(results, methods, early, FLAGS.early_sparsity, os.path.join(out_dir, "early.png"), title)
    print(summary_markdown(results))
    return 0


if __name__ == "__main__":
    flags.mark_flag_as_required("out_dir")
    experiment_flags.run_binary(main)
