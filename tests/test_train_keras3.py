"""The training binary on Keras 3: ``examples/train.py --keras=3 --backend=tensorflow|jax|torch``.

KERAS_BACKEND is per process, so each backend runs in its own processes: one runs the binary's
``main`` for dense, SynFlow (twice: same seed, same masks), SNIP with ``--sanity=shuffle``,
magnitude with ``--sanity=reinit``, early pruning and a 2-level lottery run
(tests/keras3_train_case.py); then the same lottery run from the command line is killed
(SIGKILL) half-way through level 2, after level 1 is complete (tests/keras3_kill_plugin.py),
resumed by the same command, and must end with the uninterrupted run's masks and weights.
No subprocess is given KERAS_BACKEND: the binary sets it from its flags. The flag and config
checks, and the Keras 3 model zoo, are tested in this process.
"""
import functools
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from examples import train  # noqa: F401  (defines the binary's flags)
from tfprune.experiment import Config, config_problems, flavor, models
from tfprune.experiment import flags as cli
from tfprune.experiment.config import result_conflict
from tfprune.io import load_npz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
FLAGS = flags.FLAGS
BACKENDS = ("tensorflow", "jax", "torch")
# the driver's lottery run, from the command line (tests/keras3_train_case.py: LOTTERY)
LOTTERY = ["--dataset=synthetic", "--batch_size=64", "--max_train=256", "--max_test=64", "--verbose=0",
           "--method=lottery", "--sparsity=0.75", "--prune_fraction=0.5", "--rewind_step=1", "--epochs=2"]


def env(**extra):
    out = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    out.update(PYTHONPATH=os.pathsep.join([ROOT, TESTS]), TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return out


@functools.lru_cache(maxsize=None)
def driver(backend: str, base: str) -> str:
    out = os.path.join(base, f"case_{backend}")
    run = subprocess.run([sys.executable, os.path.join(TESTS, "keras3_train_case.py"), backend, out],
                         env=env(), capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    return out


@pytest.fixture(scope="module", params=BACKENDS)
def case(request, tmp_path_factory):
    pytest.importorskip(request.param)
    return request.param, driver(request.param, str(tmp_path_factory.getbasetemp()))


def result(out, name) -> dict:
    with open(os.path.join(out, name, "result.json"), encoding="utf-8") as f:
        return json.load(f)


def masks(path) -> dict:
    return {k: v for k, v in load_npz(path).items() if not k.startswith("__")}


def assert_same_arrays(a: dict, b: dict):
    assert sorted(a) == sorted(b)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


# ------------------------------------------------------------------------ runs, per backend
def test_the_binary_set_the_backend_it_was_given(case):
    backend, out = case
    with open(os.path.join(out, "backend.txt")) as f:
        assert f.read() == backend
    dense = result(out, "dense")
    assert (dense["config"]["keras"], dense["config"]["backend"]) == (3, backend)
    assert dense["versions"]["backend"] == backend and dense["versions"]["keras"].startswith("3.")
    assert dense["procedure"] == "dense" and dense["sparsity"] == 0.0


def test_outputs_are_a_keras_file_a_ticket_and_its_initial_weights(case):
    import keras

    import tfprune
    from tfprune import lottery

    backend, out = case
    run_dir = os.path.join(out, "synflow")
    assert sorted(os.listdir(run_dir)) == ["init_weights.npz", "model.keras", "result.json", "ticket.npz"]
    res = result(out, "synflow")
    ticket = lottery.load_ticket(os.path.join(run_dir, "ticket.npz"))
    assert ticket.sparsity == pytest.approx(res["sparsity"], abs=1e-9)
    assert res["sparsity"] == pytest.approx(0.9, abs=1.0 / 49_600)  # exact to one weight
    # a .keras file of any backend loads here (TensorFlow backend) with its masks enforced
    loaded = keras.saving.load_model(os.path.join(run_dir, "model.keras"))
    assert_same_arrays(tfprune.get_masks(loaded), ticket.masks)
    assert tfprune.sparsity_report(loaded).sparsity == res["sparsity"]
    start = load_npz(os.path.join(run_dir, "init_weights.npz"))
    assert not np.any(start["fc1::0"][ticket.masks["fc1"] == 0])  # the ticket: masked initial weights


def test_same_seed_same_masks_and_metrics(case):
    _, out = case
    a, b = (os.path.join(out, name) for name in ("synflow", "synflow_again"))
    assert_same_arrays(masks(os.path.join(a, "ticket.npz")), masks(os.path.join(b, "ticket.npz")))
    assert_same_arrays(load_npz(os.path.join(a, "init_weights.npz")), load_npz(os.path.join(b, "init_weights.npz")))
    assert result(out, "synflow")["test_loss"] == result(out, "synflow_again")["test_loss"]


def test_snip_with_shuffled_masks_keeps_each_layers_count(case):
    _, out = case
    res = result(out, "snip_shuffle")
    assert res["procedure"] == "sanity" and res["method_info"]["sanity"] == "shuffle"
    snip = masks(os.path.join(out, "snip_shuffle", "run", "method_mask.npz"))
    shuffled = masks(os.path.join(out, "snip_shuffle", "ticket.npz"))
    assert {k: int(m.sum()) for k, m in snip.items()} == {k: int(m.sum()) for k, m in shuffled.items()}
    assert any(not np.array_equal(snip[k], shuffled[k]) for k in snip)


def test_a_mask_search_learns_its_mask_with_the_weights_frozen_then_trains_it(case):
    _, out = case
    res = result(out, "gem_miner")
    info = res["method_info"]
    assert res["procedure"] == "prune_at_init" and info["epochs"] == 2 and info["epochs_spent"] == 3
    assert 0.0 <= info["test_accuracy_before_training"] <= 1.0 and abs(res["sparsity"] - 0.9) < 1e-3
    assert os.path.exists(os.path.join(out, "gem_miner", "search", "search.npz"))  # resumable
    ticket = masks(os.path.join(out, "gem_miner", "ticket.npz"))
    assert sum(int(m.sum()) for m in ticket.values()) == round(0.1 * sum(m.size for m in ticket.values()))


def test_reinit_trains_the_masks_from_new_weights(case):
    _, out = case
    theta0 = load_npz(os.path.join(out, "dense", "init_weights.npz"))  # the dense run starts from θ0
    reinit = load_npz(os.path.join(out, "magnitude_reinit", "init_weights.npz"))
    mask = masks(os.path.join(out, "magnitude_reinit", "ticket.npz"))
    assert_same_arrays(mask, masks(os.path.join(out, "magnitude_reinit", "run", "method_mask.npz")))
    for layer in ("fc1", "fc2", "output"):
        kept = mask[layer] != 0
        same = np.mean(reinit[f"{layer}::0"][kept] == theta0[f"{layer}::0"][kept])
        assert same < 0.01, layer  # genuinely new draws...
        ratio = reinit[f"{layer}::0"][kept].std() / theta0[f"{layer}::0"].std()
        assert 0.7 < ratio < 1.4, layer  # ...of the same initializer family


def test_early_pruning_scores_after_k_steps_and_continues_from_there(case):
    _, out = case
    res = result(out, "synflow_early")
    assert res["procedure"] == "early" and res["method_info"]["prune_step"] == 2
    assert res["sparsity"] == pytest.approx(0.9, abs=1e-4)
    summary = json.load(open(os.path.join(out, "synflow_early", "run", "summary.json")))["rows"]
    assert [(r["name"], r["steps"]) for r in summary] == [("level_0", 2), ("level_1", 2)]  # 4 steps: k=2, then 2


def test_lottery_levels_and_ticket(case):
    _, out = case
    res = result(out, "lottery")
    assert res["procedure"] == "lottery"
    assert res["method_info"]["level_sparsities"] == {"0": 0.0, "1": 0.5, "2": 0.75}
    run_dir = os.path.join(out, "lottery", "run")
    assert_same_arrays(masks(os.path.join(out, "lottery", "ticket.npz")),
                       masks(os.path.join(run_dir, "level_2", "mask.npz")))
    assert_same_arrays(load_npz(os.path.join(out, "lottery", "init_weights.npz")),
                       load_npz(os.path.join(run_dir, "level_2", "rewind_weights.npz")))  # θ1, masked


@pytest.mark.parametrize("backend", [
    "tensorflow", pytest.param("jax", marks=pytest.mark.slow), pytest.param("torch", marks=pytest.mark.slow)])
def test_lottery_killed_after_level_1_resumes_to_the_uninterrupted_result(backend, tmp_path, tmp_path_factory):
    pytest.importorskip(backend)
    reference = os.path.join(driver(backend, str(tmp_path_factory.getbasetemp())), "lottery")
    out = str(tmp_path / "killed")
    command = [sys.executable, os.path.join(ROOT, "examples", "train.py"), "--keras=3", f"--backend={backend}",
               *LOTTERY, f"--out_dir={out}"]
    killed = subprocess.run(command + ["--plugin=keras3_kill_plugin"], env=env(TFPRUNE_TEST_KILL_PHASE="level_2"),
                            capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert killed.returncode == -9, killed.stderr[-3000:]
    assert os.path.exists(os.path.join(out, "run", "level_1", "metrics.json"))
    assert os.path.exists(os.path.join(out, "run", "level_2", "checkpoint.npz"))
    assert not os.path.exists(os.path.join(out, "result.json"))
    resumed = subprocess.run(command, env=env(), capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for level in ("level_1", "level_2"):
        assert_same_arrays(masks(os.path.join(out, "run", level, "mask.npz")),
                           masks(os.path.join(reference, "run", level, "mask.npz")))
    assert_same_arrays(load_npz(os.path.join(out, "run", "level_2", "trained_weights.npz")),
                       load_npz(os.path.join(reference, "run", "level_2", "trained_weights.npz")))
    assert result(str(tmp_path), "killed")["test_accuracy"] == result(os.path.dirname(reference), "lottery")[
        "test_accuracy"]


# ------------------------------------------------------------------------ flags and config (this process)
def parse(argv):
    FLAGS.unparse_flags()
    FLAGS(["prog"] + list(argv))


@pytest.mark.parametrize("argv, message", [
    (["--keras=4"], "--keras=4: --keras must be 2 (tf_keras) or 3 (Keras 3)"),
    (["--keras=3", "--backend=mxnet"], "--backend=mxnet: value should be one of <tensorflow|jax|torch>"),
    (["--backend=jax"], "--backend=jax needs keras=3"),
    (["--keras=3", "--method=tfmot_gradual", "--sparsity=0.9"],
     "--method=tfmot_gradual runs on keras=2 only, not keras=3: TF-MOT"),
    (["--keras=3", "--tensorboard", "--out_dir=/tmp/x"], "--tensorboard needs keras=2"),
])
def test_bad_keras_flags_give_one_line_naming_the_flag(argv, message):
    with flagsaver.flagsaver():
        with pytest.raises(flags.IllegalFlagValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
            parse(argv)
    assert "\n" not in str(err.value)


def test_a_backend_that_is_not_installed_says_what_to_pip_install(monkeypatch):
    monkeypatch.setattr(flavor, "_installed", lambda package: package != "torch")
    assert config_problems(Config(keras=3, backend="torch")) == [
        "backend=torch: the torch package is not installed; pip install torch (CPU only: pip install torch "
        "--index-url https://download.pytorch.org/whl/cpu)."]
    assert config_problems(Config(keras=3, backend="jax")) == []


def test_select_keras_reads_the_command_line_before_keras_is_imported(monkeypatch):
    monkeypatch.setattr(flavor, "process_backend", lambda: None)  # as in a binary, before any import
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    cli.select_keras(["train.py", "--keras", "3", "--backend", "torch"])
    assert os.environ["KERAS_BACKEND"] == "torch"
    cli.select_keras(["train.py", "--keras=2", "--backend=jax"])  # keras=2: left alone
    cli.select_keras(["train.py", "--keras=3", "--backend=mxnet"])  # a bad value: for the flag parser
    assert os.environ["KERAS_BACKEND"] == "torch"
    cli.select_keras(["train.py", "-keras=3"])  # the default backend
    assert os.environ["KERAS_BACKEND"] == "tensorflow"


def test_a_process_on_another_backend_is_refused_in_one_line():
    import keras

    current = keras.backend.backend()  # this process's
    assert flavor.process_backend() == current
    other = next(b for b in BACKENDS if b != current)
    with pytest.raises(ValueError, match=rf"^backend={other}: this process's Keras 3 already runs on {current} "):
        flavor.select(3, other)
    flavor.select(3, current)
    flavor.select(2, "tensorflow")


def test_checking_the_flags_leaves_the_quiet_tensorflow_import_hook_in_place():
    code = ("import sys; import tfprune; from tfprune.experiment import flavor; flavor.problems(3, 'tensorflow'); "
            "print(any(type(f).__name__ == '_QuietTensorFlow' for f in sys.meta_path), 'tensorflow' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert run.stdout.split() == ["True", "False"], run.stderr[-2000:]


def test_a_keras_file_loads_after_tensorflow_asked_where_keras_is():
    # TensorFlow (and flag checks) call importlib.util.find_spec("keras"/"tensorflow") before importing them:
    # tfprune's import hooks must still run on the real import (classes registered, start-up lines filtered)
    code = ("import importlib.util, sys; import tfprune; importlib.util.find_spec('tensorflow'); "
            "importlib.util.find_spec('keras'); import tensorflow, keras; "
            "print('tfprune>MaskedLayer' in keras.saving.get_custom_objects())")
    run = subprocess.run([sys.executable, "-c", code], env=env(), capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert run.stdout.split() == ["True"], run.stderr[-2000:]
    assert "oneDNN" not in run.stderr


def test_results_written_before_the_keras_flag_existed_are_keras2_runs(tmp_path):
    config = Config(dataset="synthetic", out_dir=str(tmp_path))
    stored = {k: v for k, v in config.to_dict().items() if k not in ("keras", "backend")}
    (tmp_path / "result.json").write_text(json.dumps({"config": stored}))
    assert result_conflict(config) is None
    assert "keras=2" in result_conflict(config.replace(keras=3))


def test_results_written_before_a_procedure_gained_a_setting_ran_with_its_default(tmp_path):
    # ScorerSettings gained the mask searches' settings: a finished SynFlow cell of an older sweep
    # is the same run (they are not part of a SynFlow run at all), and a search's result that
    # predates one of them ran with its default.
    config = Config(dataset="synthetic", method="synflow", sparsity=0.9, out_dir=str(tmp_path / "s"))
    os.makedirs(config.out_dir)
    stored = config.to_dict()
    assert "search_epochs" not in stored["settings"] and "per_class" in stored["settings"]
    stored["settings"]["search_epochs"] = 10  # written by a version that kept it for every scorer
    (tmp_path / "s" / "result.json").write_text(json.dumps({"config": stored}))
    assert result_conflict(config) is None
    assert result_conflict(config.replace(settings={"search_epochs": 3})) is None  # not part of this run...
    assert any("search_epochs=3 applies to the scorers edge_popup, gem_miner only" in p
               for p in config_problems(config.replace(settings={"search_epochs": 3})))  # ...and refused
    search = Config(dataset="synthetic", method="gem_miner", sparsity=0.9, out_dir=str(tmp_path / "g"))
    os.makedirs(search.out_dir)
    stored = search.to_dict()
    del stored["settings"]["prune_every"]
    (tmp_path / "g" / "result.json").write_text(json.dumps({"config": stored}))
    assert result_conflict(search) is None
    assert "settings=" in result_conflict(search.replace(settings={"search_epochs": 3}))


def test_the_sweeps_default_methods_on_keras3_leave_out_tf_keras_only_ones():
    from tfprune.experiment import grid

    assert "tfmot_gradual" in grid.default_methods() and "tfmot_gradual" not in grid.default_methods(3)
    assert [m for m in grid.default_methods() if m != "tfmot_gradual"] == grid.default_methods(3)


def test_default_out_dir_names_the_keras_and_backend():
    assert train.default_out_dir(Config(keras=3, backend="jax", method="snip", sparsity=0.9)).endswith(
        "-snip-s0.9-seed0-keras3_jax")
    assert train.default_out_dir(Config()).endswith("-dense-s0-seed0")


# ------------------------------------------------------------------------ the zoo in Keras 3
def test_the_zoo_builds_the_same_architectures_in_keras3():
    import keras  # Keras 3, this process's backend

    from tfprune._keras import keras as tf_keras

    for name in models.names():
        a = models.build(name, (16, 16, 1), 4, seed=3, width=0.25)
        b = models.build(name, (16, 16, 1), 4, seed=3, width=0.25, keras=keras)
        assert isinstance(a, tf_keras.Model) and isinstance(b, keras.Model), name
        assert [l.name for l in a.layers] == [l.name for l in b.layers], name
        assert [w.shape for w in a.get_weights()] == [w.shape for w in b.get_weights()], name
        families = {l.name: type(l.kernel_initializer).__name__ for l in a.layers if hasattr(l, "kernel_initializer")}
        assert families == {l.name: type(l.kernel_initializer).__name__ for l in b.layers
                            if hasattr(l, "kernel_initializer")}, name
        assert_same_arrays(dict(enumerate(b.get_weights())),
                           dict(enumerate(models.build(name, (16, 16, 1), 4, seed=3, width=0.25,
                                                       keras=keras).get_weights())))
    seed3, seed4 = (models.build("lenet_300_100", (16, 16, 1), 4, seed=seed, width=0.25, keras=keras) for seed in (3, 4))
    assert not np.array_equal(seed3.get_layer("fc1").kernel.numpy(), seed4.get_layer("fc1").kernel.numpy())
    with pytest.raises(TypeError, match="keras: expected a Keras module"):
        models.build("conv2", (16, 16, 1), 4, keras=np)
