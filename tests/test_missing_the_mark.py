"""benchmarks/missing_the_mark.py: the machinery on synthetic data (cells, resume, tables, plots)."""
import csv
import os
import subprocess
import sys

from tfprune.experiment import grid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "benchmarks", "missing_the_mark.py")
ARGS = ["--quick", "--dataset=synthetic", "--max_train=128", "--max_test=32", "--batch_size=32",
        "--methods=random,snip", "--variants=unmodified,shuffle,invert", "--early_steps=0,2",
        "--early_sparsity=0.9", "--baselines=magnitude_after_training,lottery", "--prune_fraction=0.5",
        "--per_class=3"]


def run(argv):
    """The binary in its own process (its flags would clash with the other binaries' in this one)."""
    proc = subprocess.run([sys.executable, SCRIPT] + list(argv), capture_output=True, text=True, timeout=600,
                          cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_cells_cover_methods_variants_early_steps_and_baselines(tmp_path):
    out = tmp_path / "mtm"
    run(ARGS + [f"--out_dir={out}"])
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    labels = {r["label"] for r in rows}
    assert labels == {"random", "random-shuffle", "random-invert", "snip", "snip-shuffle", "snip-invert",
                      "random-k2", "snip-k2", "magnitude_after_training", "lottery"}
    # 2 sparsities x (2 methods x 3 variants + 1 baseline) + 2 early + 2 lottery cells
    assert len(rows) == 2 * 7 + 2 + 2
    shuffled = [r for r in rows if r["label"] == "snip-shuffle"]
    assert all(abs(float(r["sparsity"]) - float(r["target_sparsity"])) < 1e-3 for r in shuffled)
    assert "| snip-invert |" in (out / "summary.md").read_text()
    for name in ("variants.png", "early.png"):
        assert (out / name).stat().st_size > 10_000
    early = grid.read_result(grid.cell_dir(str(out), "snip-k2", 0.9, 0))
    assert early["procedure"] == "early" and early["method_info"]["prune_step"] == 2
    for label in ("snip", "snip-shuffle", "snip-k2"):  # the flags' settings reach every kind of cell
        assert grid.read_result(grid.cell_dir(str(out), label, 0.9, 0))["config"]["settings"]["per_class"] == 3
    # each ticket on its initial weights, before any training (benchmarks/masks_before_training.py)
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "masks_before_training.py"),
                           f"--out_dir={out}", "--labels=snip,snip-shuffle", "--sparsity=0.9", "--seeds=0"],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| snip")]
    assert [r.split(" | ")[0] for r in rows] == ["| snip", "| snip-shuffle"]
    assert all(0.0 <= float(r.split(" | ")[1]) <= 100.0 for r in rows)
    # Resume: a rerun trains nothing.
    printed = run(ARGS + [f"--out_dir={out}"])
    assert printed.count("done before") == 2 * 7 + 2 and "FAILED" not in printed
