r"""The sweep's ``--quick`` grid on each executor, side by side: wall time, and whether the tables agree.

    python benchmarks/sweep_executors.py --out_dir=benchmarks/out/sweep_executors \
        --results=benchmarks/results/sweep_ray.md

Runs ``benchmarks/sweep.py --quick`` (any further arguments after ``--`` are passed on, e.g.
``-- --dataset=synthetic``) three ways, from empty directories, one after another: ``local``
(this machine, cell after cell), ``ray`` with 1 CPU per cell (a local Ray instance on every core:
as many cells at once as cores) and ``ray`` with every core per cell (one cell at a time: Ray's
own cost), ``--repeats`` rounds of the three. Each wall time is the whole command (Python, TensorFlow and Ray start-up included).
``results.csv`` is compared field by field without its timing columns (``train_time_s``,
``prune_time_s``), ``layer_density.csv`` and ``summary.md`` byte for byte, every run against the
first local one; the report (Markdown) says which ones agree.
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TIMING_COLUMNS = ("train_time_s", "prune_time_s")


def table(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)]


def run(name, flags, out_dir, extra):
    directory = os.path.join(out_dir, name)
    shutil.rmtree(directory, ignore_errors=True)  # from scratch: a sweep would resume finished cells
    command = [sys.executable, os.path.join(HERE, "sweep.py"), "--quick", f"--out_dir={directory}"] + flags + extra
    print(" ".join(command[1:]), flush=True)
    t0 = time.perf_counter()
    with open(os.path.join(out_dir, f"{name}.log"), "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - t0
    print(f"  {name}: {seconds:.1f} s", flush=True)
    return directory, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out_dir", default=os.path.join(HERE, "out", "sweep_executors"))
    parser.add_argument("--results", default=None, help="write the Markdown report here too")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the three runs (interleaved)")
    args, extra = parser.parse_known_args(argv)
    extra = [a for a in extra if a != "--"]
    os.makedirs(args.out_dir, exist_ok=True)
    cores = os.cpu_count()
    runs = [("local", ["--executor=local"]), ("ray_1cpu", ["--executor=ray", "--ray_cpus_per_cell=1"]),
            ("ray_allcpu", ["--executor=ray", f"--ray_cpus_per_cell={cores}"])]
    times, dirs = {name: [] for name, _ in runs}, {}
    for r in range(args.repeats):  # interleaved rounds: a slow spell of the machine hits every executor
        for name, flags in runs:
            dirs[name, r], seconds = run(name if r == 0 else f"{name}_{r}", flags, args.out_dir, extra)
            times[name].append(seconds)
    local_dir = dirs["local", 0]
    with open(os.path.join(local_dir, "results.csv")) as f:
        cells = sum(1 for _ in f) - 1
    local_s = statistics.median(times["local"])
    lines = [f"`sweep.py --quick {' '.join(extra)}`: {cells} cells, {cores} CPU cores; {args.repeats} interleaved "
             "rounds of the three runs, median (min-max) wall time of the whole command.", "",
             "| executor | wall time (s) | vs local | results.csv (no timing columns) | layer_density.csv, summary.md |",
             "|---|---|---|---|---|"]
    for name, flags in runs:
        same_csv = all(table(os.path.join(dirs[name, r], "results.csv")) == table(os.path.join(local_dir, "results.csv"))
                       for r in range(args.repeats))
        same_rest = all(open(os.path.join(dirs[name, r], n)).read() == open(os.path.join(local_dir, n)).read()
                        for r in range(args.repeats) for n in ("layer_density.csv", "summary.md"))
        t = times[name]
        lines.append(f"| {name} (`{' '.join(flags)}`) | {statistics.median(t):.1f} ({min(t):.1f}-{max(t):.1f}) | "
                     f"{statistics.median(t) / local_s:.2f} | {'equal' if same_csv else 'DIFFERENT'} | "
                     f"{'equal' if same_rest else 'DIFFERENT'} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.results:
        with open(args.results + ".tmp", "w") as f:
            f.write(report)
        os.replace(args.results + ".tmp", args.results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
