"""The sweep's executors: the seam (any executor, same files and tables) without Ray, and
``--executor=ray`` on a local Ray instance (``ray.init(num_cpus=2)``), whose CSVs must equal the
local executor's (timing columns excepted)."""
import csv
import os
import sys
import textwrap
import time

import pytest
from absl import flags
from absl.testing import flagsaver

from benchmarks import sweep
from tfprune import experiment as training
import tfprune
from tfprune import scoring
from tfprune.experiment import executors, grid

FLAGS = flags.FLAGS
QUICK = ["--quick", "--dataset=synthetic", "--max_train=256", "--max_test=64", "--batch_size=64",
         "--methods=dense,random,lottery", "--sparsities=0,0.36,0.488"]  # 2 and 3 lottery levels of 20%
# (no procedure setting among the flags: examples/train.py, imported by other tests of the same
# process, registers its cross-flag check on the global flags, and a lottery setting with the
# default --method=dense would fail it)
TIMING_COLUMNS = ("train_time_s", "prune_time_s")  # wall-clock seconds: the only columns that may differ


def run_main(argv):
    with flagsaver.flagsaver():
        FLAGS.unparse_flags()
        FLAGS(["sweep"] + list(argv))
        return sweep.main(["sweep"])


def read_rows(path):
    with open(path) as f:
        return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in csv.DictReader(f)]


class BackwardsExecutor(executors.LocalExecutor):
    """Runs the jobs in this process, last first, and records them: what a parallel executor
    may do (finish cells in any order) without starting one."""

    def __init__(self):
        self.seen = []

    def map(self, fn, jobs):
        self.seen = list(jobs)
        return super().map(fn, self.seen[::-1])


def test_any_executor_gives_the_same_cells_and_a_trajectory_is_one_job(tmp_path):
    base = training.Config(dataset="synthetic", epochs=1, max_train=128, max_test=32, verbose=0,
                           settings={"prune_fraction": 0.5})
    methods, sparsities, seeds = ["dense", "random", "lottery"], [0.0, 0.5, 0.75], [0]
    local = grid.run_grid(base, str(tmp_path / "local"), methods, sparsities, seeds, log=lambda *_: None)
    backwards = BackwardsExecutor()
    lines = []
    other = grid.run_grid(base, str(tmp_path / "other"), methods, sparsities, seeds, log=lines.append,
                          executor=backwards)
    # lottery: one trajectory for both of its cells, first (the longest job); dense once, random per sparsity
    assert backwards.seen == [("lottery", 0.5, 0), ("dense", 0.0, 0), ("random", 0.5, 0), ("random", 0.75, 0)]
    assert sum("lottery " in line and "test accuracy" in line for line in lines) == 2
    assert [(r["config"]["method"], r["target_sparsity"]) for r in other] == \
        [("dense", 0.0), ("random", 0.5), ("lottery", 0.5), ("random", 0.75), ("lottery", 0.75)]
    keys = ("test_accuracy", "test_loss", "train_accuracy", "sparsity", "steps", "collapsed")
    assert [{k: r[k] for k in keys} for r in other] == [{k: r[k] for k in keys} for r in local]
    assert grid.run_grid(base, str(tmp_path / "other"), methods, sparsities, seeds, log=lambda *_: None,
                         executor=backwards) == other and backwards.seen == []  # resumed: nothing to run


def test_ray_flags_are_checked_and_a_missing_ray_is_one_line(monkeypatch):
    with flagsaver.flagsaver():
        FLAGS.unparse_flags()
        with pytest.raises(flags.IllegalFlagValueError, match="need --executor=ray"):
            FLAGS(["sweep", "--ray_cpus_per_cell=2"])
        FLAGS.unparse_flags()
        with pytest.raises(flags.IllegalFlagValueError, match="--ray_cpus_per_cell must be > 0"):
            FLAGS(["sweep", "--executor=ray", "--ray_cpus_per_cell=0"])
        FLAGS.unparse_flags()
        monkeypatch.setattr(sweep.importlib.util, "find_spec", lambda name: None)
        with pytest.raises(flags.IllegalFlagValueError, match=r"needs Ray.*pip install tfprune\[ray\]"):
            FLAGS(["sweep", "--executor=ray"])
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(ImportError, match=r"pip install tfprune\[ray\]"):
        executors.RayExecutor()
    with pytest.raises(ValueError, match="executor=local takes no options"):
        executors.make("local", address="auto")


def test_worker_env_carries_this_checkout_the_current_directory_and_the_keras_backend(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    monkeypatch.setenv("PYTHONPATH", "relative/dir")
    env = executors.worker_env()
    root = os.path.dirname(os.path.dirname(os.path.abspath(tfprune.__file__)))
    assert env["PYTHONPATH"].split(os.pathsep) == [root, str(tmp_path), str(tmp_path / "relative" / "dir")]
    assert env["KERAS_BACKEND"] == "jax" and "HOME" not in env


# --------------------------------------------------------------------------------------------
# On Ray
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_instance():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install tfprune[ray])")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield ray
    ray.shutdown()


def test_ray_sweep_writes_the_same_tables_as_the_local_one(ray_instance, tmp_path):
    t0 = time.perf_counter()
    assert run_main(QUICK + [f"--out_dir={tmp_path / 'local'}"]) == 0
    t1 = time.perf_counter()
    assert run_main(QUICK + [f"--out_dir={tmp_path / 'ray'}", "--executor=ray"]) == 0
    t2 = time.perf_counter()
    print(f"local {t1 - t0:.1f} s, ray {t2 - t1:.1f} s")
    local, on_ray = read_rows(tmp_path / "local" / "results.csv"), read_rows(tmp_path / "ray" / "results.csv")
    assert len(local) == 5 and {r["method"] for r in local} == {"dense", "random", "lottery"}
    assert on_ray == local
    for name in ("layer_density.csv", "summary.md"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text()
    # the Ray sweep resumes from the local one's cells: nothing left to run, same table
    assert run_main(QUICK + [f"--out_dir={tmp_path / 'local'}", "--executor=ray"]) == 0
    assert read_rows(tmp_path / "local" / "results.csv") == local


def test_ray_executor_reports_errors_imports_plugins_and_cancels(ray_instance, tmp_path, monkeypatch):
    (tmp_path / "ray_test_plugin.py").write_text(textwrap.dedent('''
        import tfprune
        tfprune.register_scorer("ray_test_scorer", tfprune.get_scorer("magnitude").make, needs_data=False)
    '''))
    monkeypatch.chdir(tmp_path)  # workers get the current directory on their PYTHONPATH
    executor = executors.RayExecutor(imports=["ray_test_plugin"])
    (job, names, error, _), = executor.map(scoring.scorer_names, [()])
    assert error is None and "ray_test_scorer" in names
    (job, value, error, _), = executor.map(int, [("x",)])
    assert job == ("x",) and value is None
    assert isinstance(error, ValueError) and "invalid literal" in str(error)  # the job's exception, not Ray's

    outcomes = executor.map(time.sleep, [(0.1,), (120,)])
    assert next(outcomes)[0] == (0.1,)
    outcomes.close()  # what an interrupt does: the 120 s task is cancelled and its CPU freed
    deadline = time.monotonic() + 30
    while ray_instance.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray_instance.available_resources().get("CPU", 0) == 2

