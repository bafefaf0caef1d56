"""Lottery tickets, pruning early and sanity checks under tf.distribute give the masks of one device.

Every distributed body runs in a subprocess (tests/distributed_checks.py), each one bounded by a
timeout and always killed: MirroredStrategy on 2 logical CPU devices, and
MultiWorkerMirroredStrategy with 2 worker processes on 127.0.0.1 (free ports, TF_CONFIG). Masks
must be bit-identical across replicas, across workers and to the single-device run; weights and
metrics equal within float tolerance (the gradient all-reduce sums in another order).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from loopback import free_ports, tf_config
from tfprune.io import load_json, load_npz

ROOT = Path(__file__).resolve().parents[1]
CHECKS = str(ROOT / "tests" / "distributed_checks.py")
TRAIN = str(ROOT / "examples" / "train.py")


def _env(**extra):
    return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3", **extra)


class Processes:
    """Subprocesses in their own sessions, all killed (SIGKILL to the group) on exit."""

    def __init__(self, log_dir: Path):
        self.log_dir, self.procs = log_dir, []

    def start(self, name, args, script=CHECKS, **env):
        log = open(self.log_dir / f"{name}.log", "w")
        proc = subprocess.Popen([sys.executable, script, *args], env=_env(**env), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs.append((name, proc, log))
        return proc

    def wait_all(self, timeout):
        deadline = time.time() + timeout
        for name, proc, _ in self.procs:
            try:
                proc.wait(timeout=max(1.0, deadline - time.time()))
            except subprocess.TimeoutExpired:
                pytest.fail(f"{name} still running after {timeout} s:\n{self.tail(name)}")
            assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{self.tail(name)}"

    def kill_all(self):
        for _, proc, _ in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()
        for _, _, log in self.procs:
            log.close()
        self.procs = []

    def tail(self, name):
        return (self.log_dir / f"{name}.log").read_text()[-3000:]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.kill_all()


def start_workers(procs: Processes, run_dir, tag, args=None, script=CHECKS, **env):
    """Two MultiWorkerMirroredStrategy workers on 127.0.0.1 (free ports), TF_CONFIG each."""
    ports = free_ports(2)
    for index in range(2):
        procs.start(f"{tag}_worker{index}", args or ["worker", str(run_dir)], script=script,
                    TF_CONFIG=tf_config(ports, index), **env)


def arrays(path):
    return {k: v for k, v in load_npz(path).items() if not k.startswith("__")}


def assert_same_run(a: Path, b: Path, phases, exact_weights=False):
    """Masks bit-identical; weights and metrics within float tolerance (or bit-identical)."""
    for phase in phases:
        ma, mb = arrays(a / phase / "mask.npz"), arrays(b / phase / "mask.npz")
        assert set(ma) == set(mb) and all(np.array_equal(ma[k], mb[k]) for k in ma), (phase, "masks differ")
        wa, wb = arrays(a / phase / "trained_weights.npz"), arrays(b / phase / "trained_weights.npz")
        for key in wa:
            if exact_weights:
                assert np.array_equal(wa[key], wb[key]), (phase, key)
            else:
                np.testing.assert_allclose(wa[key], wb[key], rtol=1e-4, atol=1e-5, err_msg=f"{phase} {key}")
        ja, jb = load_json(a / phase / "metrics.json"), load_json(b / phase / "metrics.json")
        assert ja["kept"] == jb["kept"] and ja["sparsity"] == jb["sparsity"], phase
        for key in ("val_loss", "val_accuracy", "train_loss"):
            assert ja[key] == pytest.approx(jb[key], rel=1e-4, abs=1e-5), (phase, key)


def assert_replicas_agree(path: Path, replicas: int):
    """Every variable holds the same value on every replica (mirrored variables stay in sync)."""
    saved = np.load(path)
    names = {k.rsplit("@", 1)[0] for k in saved.files}
    assert any("mask" in n for n in names), names
    for name in names:
        values = [saved[f"{name}@{i}"] for i in range(replicas)]
        assert all(np.array_equal(values[0], v) for v in values[1:]), name


LOTTERY = ["level_0", "level_1", "level_2"]


def test_mirrored_two_cpu_replicas_match_one_device(tmp_path):
    with Processes(tmp_path) as procs:
        procs.start("mirrored", ["mirrored", str(tmp_path), "lottery"])
        procs.wait_all(timeout=240)
    assert_same_run(tmp_path / "lottery_mirrored", tmp_path / "lottery_single", LOTTERY)
    assert_replicas_agree(tmp_path / "lottery_mirrored.local.replicas.npz", 2)
    config = load_json(tmp_path / "lottery_mirrored" / "config.json")["config"]
    assert config["distribute"] == {"strategy": "MirroredStrategy", "replicas": 2}
    assert "distribute" not in load_json(tmp_path / "lottery_single" / "config.json")["config"]
    sparsity = [load_json(tmp_path / "lottery_mirrored" / p / "metrics.json")["sparsity"] for p in LOTTERY]
    assert sparsity[0] == 0.0 and 0.19 < sparsity[1] < sparsity[2]  # really pruned, level after level


@pytest.mark.slow
def test_early_pruning_and_sanity_checks_under_mirrored_match_one_device(tmp_path):
    with Processes(tmp_path) as procs:
        procs.start("mirrored", ["mirrored", str(tmp_path), "early", "sanity"])
        procs.wait_all(timeout=240)
    assert_same_run(tmp_path / "early_mirrored", tmp_path / "early_single", ["level_0", "level_1"])
    assert_same_run(tmp_path / "sanity_mirrored", tmp_path / "sanity_single", ["level_0", "shuffle", "reinit"])
    for name in ("early_mirrored", "sanity_mirrored"):
        assert_replicas_agree(tmp_path / f"{name}.replicas.npz", 2)
    assert load_json(tmp_path / "sanity_mirrored" / "shuffle" / "metrics.json")["sparsity"] == pytest.approx(0.6)


def test_multi_worker_two_processes_match_one_device(tmp_path):
    run_dir = tmp_path / "run"
    with Processes(tmp_path) as procs:
        start_workers(procs, run_dir, "mw", LEVELS="1")
        procs.start("single", ["single", str(tmp_path / "single")], LEVELS="1")
        procs.wait_all(timeout=240)
        outputs = [json.loads(procs.tail(f"mw_worker{i}").strip().splitlines()[-1]) for i in range(2)]
    assert outputs == [{"task": "worker0", "chief": True}, {"task": "worker1", "chief": False}]
    assert_same_run(run_dir, tmp_path / "single", ["level_0", "level_1"])
    # the non-chief worker trained the same model in memory, and left nothing behind
    a, b = np.load(f"{run_dir}.worker0.replicas.npz"), np.load(f"{run_dir}.worker1.replicas.npz")
    assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert load_json(run_dir / "config.json")["config"]["distribute"] == {
        "strategy": "CollectiveAllReduceStrategy", "replicas": 2}  # (MultiWorkerMirroredStrategy)


@pytest.mark.slow
def test_multi_worker_killed_and_restarted_resumes_after_the_last_finished_level(tmp_path):
    killed, reference = tmp_path / "killed", tmp_path / "reference"
    with Processes(tmp_path) as procs:
        start_workers(procs, killed, "first", EPOCH_SLEEP="0.5")
        done = killed / "level_1" / "metrics.json"
        deadline = time.time() + 300
        while not done.exists():
            assert all(p.poll() is None for _, p, _ in procs.procs), "a worker ended before the kill"
            assert time.time() < deadline, "level_1 not finished after 300 s"
            time.sleep(0.05)
        procs.kill_all()  # both workers, mid level 2
    assert not (killed / "level_2" / "metrics.json").exists()
    finished = {p: (killed / p / "metrics.json").stat().st_mtime_ns for p in ("level_0", "level_1")}
    with Processes(tmp_path) as procs:
        start_workers(procs, killed, "restart")
        start_workers(procs, reference, "reference")
        procs.wait_all(timeout=300)
    # resumed at level 2: the finished levels were not trained again
    assert {p: (killed / p / "metrics.json").stat().st_mtime_ns for p in finished} == finished
    assert_same_run(killed, reference, LOTTERY, exact_weights=True)
    # a finished run started again: both workers return without training or writing
    files = {p: p.stat().st_mtime_ns for p in killed.rglob("*") if p.is_file()}
    with Processes(tmp_path) as procs:
        start_workers(procs, killed, "again")
        procs.wait_all(timeout=120)
    assert {p: p.stat().st_mtime_ns for p in killed.rglob("*") if p.is_file()} == files
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_multi_worker_without_a_seed_is_refused_on_every_worker(tmp_path):
    with Processes(tmp_path) as procs:
        start_workers(procs, tmp_path / "run", "seedless", NO_SEED="1")
        for name, proc, _ in procs.procs:
            assert proc.wait(timeout=120) != 0, name
            assert ("ValueError: training.seed: got None under a multi-worker strategy; allowed: an integer"
                    in procs.tail(name)), procs.tail(name)
    assert not (tmp_path / "run").exists()


def test_bad_strategy_names_and_arguments_are_refused_in_one_line(monkeypatch):
    from tfprune.lottery import distribute
    from tfprune.spec import TrainingSpec

    with pytest.raises(ValueError, match=r"^strategy: got 'ring'; allowed: 'none', 'mirrored', 'multi_worker'\.$"):
        distribute.make_strategy("ring")
    with pytest.raises(ValueError, match=r"^cpu_replicas: got 2 with strategy 'none'; allowed: only with strategy "):
        distribute.make_strategy("none", cpu_replicas=2)
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match=r"^strategy: got 'multi_worker' but the TF_CONFIG environment variable"):
        distribute.make_strategy("multi_worker")
    with pytest.raises(TypeError, match=r"^distribute: expected a tf.distribute.Strategy or None, got str\.$"):
        TrainingSpec(distribute="mirrored")
    assert distribute.make_strategy("none") is None and distribute.is_chief(None)
    assert distribute.task_name(None) == "local" and distribute.num_workers(None) == 1


def test_state_digest_sees_finished_phases_and_checkpoints_only(tmp_path):
    """What the workers compare before training: seed, finished phases, checkpoints (by content)."""
    from tfprune.lottery import _files, distribute

    run = tmp_path / "run"
    empty = distribute.state_digest(str(run))  # (no directory yet)
    run.mkdir()
    assert distribute.state_digest(str(run)) == empty
    _files.write_json(str(run / "config.json"), {"seed_used": 3})
    with_config = distribute.state_digest(str(run))
    assert with_config != empty
    (run / "level_0").mkdir()
    _files.write_npz(str(run / "level_0" / "mask.npz"), {"a": np.ones(3)})  # written alike by every worker
    assert distribute.state_digest(str(run)) == with_config
    _files.write_npz(str(run / "level_0" / "checkpoint.npz"), {"w": np.zeros(3)})
    at_step_1 = distribute.state_digest(str(run))
    _files.write_npz(str(run / "level_0" / "checkpoint.npz"), {"w": np.ones(3)})
    assert len({with_config, at_step_1, distribute.state_digest(str(run))}) == 3
    mirror = tmp_path / ".run.worker1"
    distribute.make_mirror(str(run), str(mirror))  # a non-chief worker's private copy: the same state
    assert distribute.state_digest(str(mirror)) == distribute.state_digest(str(run))
    assert distribute.mirror_dir(str(run), None) == str(tmp_path / ".run.local")


def test_strategy_flag_names_match_the_library_and_bad_values_stop_the_binary():
    from tfprune.experiment import flags as experiment_flags
    from tfprune.lottery import distribute

    assert experiment_flags.STRATEGIES == distribute.STRATEGIES
    for args, message in ((["--strategy=ring"], "flag --strategy=ring: value should be one of "
                                                "<none|mirrored|multi_worker>"),
                          (["--cpu_replicas=2"], "--cpu_replicas needs --strategy=mirrored.")):
        result = subprocess.run([sys.executable, TRAIN, *args], env=_env(), capture_output=True, text=True,
                                timeout=120)
        assert result.returncode != 0 and message in result.stderr, result.stderr[-2000:]


BINARY = ["--dataset=synthetic", "--model=lenet_300_100", "--method=lottery", "--sparsity=0.5", "--epochs=1",
          "--max_train=512", "--max_test=256", "--batch_size=64", "--verbose=0"]


@pytest.mark.slow
def test_training_binary_under_mirrored_and_multi_worker_matches_one_device(tmp_path):
    with Processes(tmp_path) as procs:
        procs.start("none", BINARY + [f"--out_dir={tmp_path / 'none'}"], script=TRAIN)
        procs.start("mirrored", BINARY + ["--strategy=mirrored", "--cpu_replicas=2",
                                          f"--out_dir={tmp_path / 'mirrored'}"], script=TRAIN)
        procs.wait_all(timeout=300)
        start_workers(procs, None, "mw", BINARY + ["--strategy=multi_worker", f"--out_dir={tmp_path / 'mw'}"],
                      script=TRAIN)
        procs.wait_all(timeout=300)
    phases = [f"level_{n}" for n in range(5)]  # sparsity 0.5 at 20% a level: 4 levels after the dense one
    for name in ("mirrored", "mw"):
        assert_same_run(tmp_path / name / "run", tmp_path / "none" / "run", phases)
        ta, tb = arrays(tmp_path / name / "ticket.npz"), arrays(tmp_path / "none" / "ticket.npz")
        assert set(ta) == set(tb) and all(np.array_equal(ta[k], tb[k]) for k in ta)
        ra, rb = load_json(tmp_path / name / "result.json"), load_json(tmp_path / "none" / "result.json")
        assert ra["sparsity"] == rb["sparsity"]
        assert ra["test_accuracy"] == pytest.approx(rb["test_accuracy"], abs=1e-6)
    assert load_json(tmp_path / "mw" / "run" / "config.json")["config"]["distribute"]["replicas"] == 2


FIT = ["--dataset=synthetic", "--model=lenet_300_100", "--sparsity=0.9", "--epochs=1", "--max_train=512",
       "--max_test=256", "--batch_size=64", "--verbose=0"]


def assert_same_fit_run(a: Path, b: Path):
    """Masks (ticket.npz) bit-identical; sparsity equal; accuracy within float tolerance."""
    ta, tb = arrays(a / "ticket.npz"), arrays(b / "ticket.npz")
    assert set(ta) == set(tb) and all(np.array_equal(ta[k], tb[k]) for k in ta)
    ra, rb = load_json(a / "result.json"), load_json(b / "result.json")
    assert ra["sparsity"] == rb["sparsity"]
    assert ra["test_accuracy"] == pytest.approx(rb["test_accuracy"], abs=1e-6)
    assert ra["test_loss"] == pytest.approx(rb["test_loss"], rel=1e-4)


def test_pruning_at_init_binary_under_mirrored_matches_one_device(tmp_path):
    """--method=synflow (scored on one device, then trained in the strategy's scope) on 2 CPU replicas."""
    args = FIT + ["--method=synflow"]
    with Processes(tmp_path) as procs:
        procs.start("none", args + [f"--out_dir={tmp_path / 'none'}"], script=TRAIN)
        procs.start("mirrored", args + ["--strategy=mirrored", "--cpu_replicas=2", f"--out_dir={tmp_path / 'mirrored'}"],
                    script=TRAIN)
        procs.wait_all(timeout=240)
    assert_same_fit_run(tmp_path / "mirrored", tmp_path / "none")


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dense", "snip", "tfmot_gradual"])
def test_fit_methods_of_the_binary_under_multi_worker_match_one_device(tmp_path, method):
    args = FIT + [f"--method={method}"] + (["--sparsity=0"] if method == "dense" else [])
    with Processes(tmp_path) as procs:
        procs.start("none", args + [f"--out_dir={tmp_path / 'none'}"], script=TRAIN)
        procs.wait_all(timeout=240)
        start_workers(procs, None, "mw", args + ["--strategy=multi_worker", f"--out_dir={tmp_path / 'mw'}"],
                      script=TRAIN)
        procs.wait_all(timeout=300)
    assert_same_fit_run(tmp_path / "mw", tmp_path / "none")


def test_a_procedure_that_does_not_distribute_is_refused_with_a_strategy():
    """A plugin's procedure registered without distributes=True never trains on one device silently."""
    import types

    from tfprune.experiment import registry, runner

    builtin = ("dense", "prune_at_init", "tfmot_gradual", "lottery", "magnitude_after_training", "finetune", "obd",
               "early", "sanity")
    assert all(registry.get_procedure(p).distributes for p in builtin)
    config = types.SimpleNamespace(procedure=types.SimpleNamespace(distributes=False), method="mine", keras=2)
    with pytest.raises(ValueError, match=r"^strategy: got a \w+ with method=mine; allowed: no strategy \(the "
                                         r"procedures that train under one: .*dense.*\)\.$"):
        runner._check_strategy(config, object())
