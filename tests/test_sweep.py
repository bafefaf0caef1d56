"""benchmarks/sweep.py: grid, resume, CSV/plots, bad flags; a --quick smoke run on synthetic data."""
import csv
import json
import os

import pytest
from absl import flags
from absl.testing import flagsaver

from benchmarks import sweep
from tfprune import experiment as training
from tfprune.experiment import grid, runner

FLAGS = flags.FLAGS
QUICK = ["--quick", "--dataset=synthetic", "--max_train=256", "--max_test=64", "--batch_size=64",
         "--methods=dense,random,synflow,tfmot_gradual"]


def run_main(argv):
    with flagsaver.flagsaver():
        FLAGS.unparse_flags()
        FLAGS(["sweep"] + list(argv))
        return sweep.main(["sweep"])


def test_grid_runs_dense_once_per_seed_at_sparsity_zero():
    grid = sweep.cells(["dense", "snip", "synflow"], [0.0, 0.9, 0.99], [0, 1])
    assert grid[:3] == [("dense", 0.0, 0), ("snip", 0.9, 0), ("synflow", 0.9, 0)]
    assert len(grid) == 2 * (1 + 2 * 2)
    assert ("snip", 0.0, 0) not in grid and ("dense", 0.9, 0) not in grid


@pytest.mark.parametrize("argv, message", [
    (["--methods=dense,pruneit"], "--methods: every method must be one of"),
    (["--sparsities=0,1.2"], "--sparsities: a comma-separated list of numbers in \\[0, 1\\)"),
    (["--seeds=a"], "--seeds: a comma-separated list of integers"),
    (["--plot_sparsity=1"], "--plot_sparsity must be in"),
])
def test_bad_flags_are_rejected(argv, message):
    with flagsaver.flagsaver():
        FLAGS.unparse_flags()
        with pytest.raises(flags.IllegalFlagValueError, match=message):
            FLAGS(["sweep"] + argv)


def test_quick_sweep_writes_cells_csv_summary_and_plots_then_resumes(tmp_path, capsys, monkeypatch):
    out = tmp_path / "sweep"
    assert run_main(QUICK + [f"--out_dir={out}", "--plot_sparsity=0.99"]) == 0
    # 3 sparsities (0, 0.9, 0.99), 1 seed: dense + 3 methods x 2 sparsities.
    results = list((out / "cells").rglob("result.json"))
    assert len(results) == 7
    cell = json.loads((out / "cells" / "synflow" / "s0.99" / "seed0" / "result.json").read_text())
    assert cell["config"]["epochs"] == 1 and cell["config"]["max_train"] == 256  # explicit flag beats --quick
    with open(out / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 7 and {r["method"] for r in table} == {"dense", "random", "synflow", "tfmot_gradual"}
    with open(out / "layer_density.csv") as f:
        assert len(list(csv.DictReader(f))) == 7 * 3
    for name in ("accuracy_vs_sparsity.png", "layer_density.png"):
        assert (out / name).stat().st_size > 10_000
    summary = (out / "summary.md").read_text()
    assert "| synflow |" in summary and "Dense:" in summary

    # Resume: a rerun trains nothing (training.run would fail) and rebuilds the same table.
    def fail(*args, **kwargs):
        raise AssertionError("a finished cell was trained again")

    monkeypatch.setattr(runner, "run", fail)
    capsys.readouterr()
    assert run_main(QUICK + [f"--out_dir={out}"]) == 0
    assert capsys.readouterr().out.count("done before") == 7

    # A sweep with other settings refuses to mix its cells with these ones.
    with pytest.raises(ValueError, match="trained with other settings"):
        run_main(QUICK + [f"--out_dir={out}", "--lr=0.1"])


def test_failed_cell_leaves_error_json_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real_run = runner.run

    def flaky(config, **kw):
        if config.method == "random":
            raise RuntimeError("boom")
        return real_run(config, **kw)

    monkeypatch.setattr(runner, "run", flaky)
    base = training.Config(dataset="synthetic", epochs=1, max_train=128, max_test=32, verbose=0)
    results = sweep.run_grid(base, str(tmp_path), ["dense", "random"], [0.0, 0.5], [0], log=lambda *_: None)
    assert [r["config"]["method"] for r in results] == ["dense"]
    error = json.loads((tmp_path / "cells" / "random" / "s0.5" / "seed0" / "error.json").read_text())
    assert "boom" in error["error"]
    monkeypatch.setattr(runner, "run", real_run)
    results = sweep.run_grid(base, str(tmp_path), ["dense", "random"], [0.0, 0.5], [0], log=lambda *_: None)
    assert len(results) == 2
    assert not os.path.exists(tmp_path / "cells" / "random" / "s0.5" / "seed0" / "error.json")


def test_lottery_cells_come_from_one_trajectory_per_seed(tmp_path):
    assert sweep.nearest_level({0: 1.0, 1: 0.5, 2: 0.25, 3: 0.125}, 0.2) == 2
    assert sweep.nearest_level({0: 1.0, 1: 0.5, 2: 0.25}, 0.002) == 2
    base = training.Config(dataset="synthetic", epochs=1, max_train=128, max_test=32, verbose=0,
                           settings={"prune_fraction": 0.5})
    results = sweep.run_grid(base, str(tmp_path), ["lottery"], [0.0, 0.5, 0.75], [0], log=lambda *_: None)
    assert [r["method_info"]["level"] for r in results] == [1, 2]
    assert [round(r["sparsity"], 3) for r in results] == [0.5, 0.75]
    assert os.path.isdir(tmp_path / "cells" / "lottery" / "trajectory" / "seed0" / "run" / "level_2")


def test_obd_cells_come_from_one_trajectory_per_seed(tmp_path):
    """--methods=obd in the sweep: one Train-(Prune-Finetune)^n run by OBD saliency per seed, each
    cell the level at its sparsity, the criterion recorded in the run."""
    base = training.Config(dataset="synthetic", epochs=1, max_train=128, max_test=32, verbose=0,
                           settings={"prune_fraction": 0.5, "obd_per_class": 3})
    results = sweep.run_grid(base, str(tmp_path), ["obd"], [0.5, 0.75], [0], log=lambda *_: None)
    assert [r["method_info"]["level"] for r in results] == [1, 2]
    assert [round(r["sparsity"], 3) for r in results] == [0.5, 0.75]
    run = tmp_path / "cells" / "obd" / "trajectory" / "seed0" / "run"
    with open(run / "config.json") as f:
        assert json.load(f)["config"]["criterion"] == "obd"
