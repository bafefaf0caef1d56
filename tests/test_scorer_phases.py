"""benchmarks/scorer_phases.py: it runs, and its phases add up to no more than the call they split."""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_scorer_phases_splits_compute_masks_beside_its_floor(tmp_path):
    out = tmp_path / "phases.md"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "scorer_phases.py"),
                           "--models=lenet_300_100", "--repeats=1", f"--out={out}"],
                          capture_output=True, text=True, timeout=600, cwd=ROOT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = {m.group(1): [float(v) for v in re.findall(r"-?[\d.]+", m.group(2))]
            for m in re.finditer(r"^\| lenet_300_100 \| (snip|grasp) \|(.*)\|$", out.read_text(), re.M)}
    assert set(rows) == {"snip", "grasp"}
    for total, floor, ratio, eager, make, gradient, checks, warnings, allocate, rest in rows.values():
        assert total > 0 and floor > 0
        # ratio = compute_masks / floor before the table rounds both to 0.1 ms (and the ratio to 0.01)
        assert (total - 0.05) / (floor + 0.05) - 0.005 <= ratio <= (total + 0.05) / max(floor - 0.05, 1e-9) + 0.005
        assert gradient > 0 and allocate > 0 and make > 0
        assert rest >= -0.05  # one repeat: the phases are disjoint parts of the same call (rounding to 0.1 ms)
