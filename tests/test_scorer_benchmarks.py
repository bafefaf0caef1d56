"""benchmarks/scorer_floor.py and benchmarks/layer_collapse.py: they run, and what they measure holds."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, argv):
    """A benchmark in its own process (absl flags of one binary per process)."""
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script)] + list(argv),
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_scorer_floor_times_each_scorer_beside_its_bare_passes(tmp_path):
    out = tmp_path / "floor.md"
    text = run("scorer_floor.py", ["--models=lenet_300_100", "--rounds=3", "--repeats=1", f"--out={out}"])
    rows = {m.group(1): float(m.group(2)) for m in re.finditer(r"\| lenet_300_100 \| 266,200 \| (\S+) \|.*?\| \*\*([\d.]+)\*\* \|", text)}
    assert set(rows) == {"synflow-3", "snip", "grasp"}
    assert all(ratio > 0 for ratio in rows.values())
    assert out.read_text().count("| lenet_300_100 |") == 3


def test_layer_collapse_magnitude_collapses_before_random(tmp_path):
    """On a narrow VGG-16-bn: global magnitude empties a layer at a lower compression than random
    (the paper's order), and the table has one row per method."""
    out = tmp_path / "collapse.md"
    text = run("layer_collapse.py", ["--methods=random,magnitude", "--seeds=0", "--width=0.125", "--classes=10",
                                     "--max_compression=4", f"--out={out}"])
    found = {m.group(1): float(m.group(2)) for m in re.finditer(r"\| (random|magnitude) \| ([\d.]+) \|", text)}
    assert found["magnitude"] < found["random"], text
    assert found["random"] <= 4.0
    bisected = run("layer_collapse.py", ["--methods=random,magnitude", "--seeds=0", "--width=0.125", "--classes=10",
                                         "--max_compression=4", "--bisect"])
    assert {m.group(1): float(m.group(2)) for m in re.finditer(r"\| (random|magnitude) \| ([\d.]+) \|",
                                                               bisected)} == found  # nested masks: monotone
