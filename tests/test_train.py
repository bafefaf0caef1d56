"""Training binaries: flags → Config → run; result.json, TensorBoard logs, determinism, bad flags."""
import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from examples import demo, train
from tfprune import experiment as training
from tfprune.experiment import flags as cli
from tfprune.experiment import registry
from tfprune.experiment.procedures import lottery as lottery_procedure
from tfprune.experiment.procedures.tfmot_gradual import TfmotSettings, tfmot_schedule

FLAGS = flags.FLAGS
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--dataset=synthetic", "--epochs=1", "--batch_size=64", "--max_train=256", "--max_test=64", "--verbose=0"]


def tiny_config(settings=None, **kw):
    base = dict(dataset="synthetic", epochs=1, batch_size=64, max_train=256, max_test=64, verbose=0)
    base.update(kw)
    return training.Config(settings=dict(settings or {}), **base)


def parse(argv):
    FLAGS.unparse_flags()
    FLAGS(["prog"] + list(argv))


def run_main(module, argv):
    with flagsaver.flagsaver():
        parse(argv)
        return module.main(["prog"])


# ------------------------------------------------------------------------------- flags, config
def test_every_config_field_has_a_flag_of_the_same_name_and_default():
    import dataclasses
    defaults = training.Config()
    for field in dataclasses.fields(training.Config):
        if field.name in ("dataset_options", "settings"):
            continue  # API only (synthetic shapes); settings: below
        assert field.name in FLAGS, field.name
        if field.name != "out_dir":
            assert FLAGS[field.name].default == getattr(defaults, field.name), field.name
    for name, (field, _) in registry.all_settings_fields().items():  # every procedure's settings
        assert name in FLAGS and FLAGS[name].default == field.default, name


def test_flags_map_onto_config():
    with flagsaver.flagsaver():
        parse(["--method=snip", "--sparsity=0.9", "--seed=3", "--lr=0.01", "--optimizer=momentum",
               "--out_dir=/tmp/x", "--scope=layerwise"])
        config = train.config_from_flags()
    assert (config.method, config.sparsity, config.seed, config.lr, config.optimizer, config.settings["scope"]) == (
        "snip", 0.9, 3, 0.01, "momentum", "layerwise")
    assert config.out_dir == "/tmp/x"


def test_default_out_dir_names_the_run():
    with flagsaver.flagsaver():
        parse(["--method=synflow", "--sparsity=0.98", "--seed=1"])
        assert train.config_from_flags().out_dir == os.path.join("runs", "fashion_mnist-lenet_300_100-synflow-s0.98-seed1")


@pytest.mark.parametrize("argv, message", [
    (["--sparsity=1.0"], "--sparsity must be < 1"),
    (["--sparsity=-0.1"], "--sparsity=-0.1: -0.1 is not a non-negative number"),
    (["--method=pruneit"], "value should be one of"),
    (["--dataset=cifar"], "value should be one of"),
    (["--epochs=0"], "--epochs=0"),
    (["--lr=0"], "--lr must be > 0"),
    (["--method=dense", "--sparsity=0.5"], "method=dense trains the unpruned model"),
    (["--method=synflow", "--sparsity=0.9", "--rewind_step=100"], "applies to method=lottery only"),
    (["--method=tfmot_gradual", "--sparsity=0.9", "--early_step=10"], "early_step=10 applies to"),
    (["--method=dense", "--sanity=shuffle"], "sanity=shuffle applies to"),
    (["--quantization=int8"], "needs export_tflite"),
    (["--quantization=int4", "--export_tflite"], "value should be one of"),
    (["--method=lottery"], "method=lottery needs sparsity > 0"),
    (["--method=synflow"], "method=synflow needs sparsity > 0"),  # a pruning method without a sparsity
    (["--method=lottery", "--sparsity=0.9", "--dataset=digits", "--epochs=1", "--rewind_step=12"],
     "rewind_step=12 must be smaller than the steps per level"),
    (["--method=snip", "--sparsity=0.9", "--dataset=digits", "--epochs=1", "--early_step=50"],
     "early_step=50 must be smaller than the training length"),
    (["--method=lottery", "--sparsity=0.9", "--sanity=reinit"], "sanity=reinit applies to the scoring methods"),
    (["--method=lottery", "--sparsity=0.9", "--prune_fraction=1"], "--prune_fraction must be in"),
])
def test_bad_flags_are_rejected_with_a_message_naming_the_flag(argv, message):
    with flagsaver.flagsaver():
        with pytest.raises(flags.IllegalFlagValueError, match=message.replace("(", r"\(")):
            parse(argv)


def test_check_config_lists_every_problem():
    with pytest.raises(ValueError) as err:
        training.check_config(training.Config(method="nope", sparsity=1.5, epochs=0))
    text = str(err.value)
    assert "method='nope'" in text and "sparsity=1.5" in text and "epochs=0" in text


def test_bad_flag_exits_nonzero_from_the_command_line():
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train.py"), "--sparsity=1.5"],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0
    assert "--sparsity must be < 1" in proc.stderr


# ------------------------------------------------------------------------------- runs
def test_train_main_writes_result_json_and_tensorboard_logs(tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main(train, TINY + ["--method=synflow", "--sparsity=0.9", f"--out_dir={out}", "--tensorboard"]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "fc1" in printed  # final line and the sparsity report
    result = json.loads((out / "result.json").read_text())
    assert result["config"]["method"] == "synflow" and result["config"]["dataset"] == "synthetic"
    assert result["sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert [row["name"] for row in result["report"]["layers"]] == ["fc1", "fc2", "output"]
    assert not [p for p in os.listdir(out) if p.endswith(".tmp")]  # atomic write left nothing behind
    # Per-layer density scalars in TensorBoard.
    from tensorboard.backend.event_processing import event_accumulator
    events = glob.glob(str(out / "tensorboard" / "sparsity" / "events.*"))
    assert events
    acc = event_accumulator.EventAccumulator(events[0], size_guidance={"tensors": 0})
    acc.Reload()
    tags = acc.Tags()["tensors"]
    assert {"density/fc1", "density/fc2", "density/output", "sparsity/global"} <= set(tags)
    assert glob.glob(str(out / "tensorboard" / "train" / "events.*"))


@pytest.mark.parametrize("method", ["synflow", "tfmot_gradual", "gem_miner"])
def test_a_run_saves_its_trained_model_and_ticket_for_the_exporter(tmp_path, method):
    import tfprune
    from tfprune import lottery

    out = tmp_path / method
    result = training.run(tiny_config(method=method, sparsity=0.75, out_dir=str(out)), log=lambda *_: None)
    ticket = lottery.load_ticket(str(out / "ticket.npz"))
    assert ticket.sparsity == pytest.approx(result["sparsity"], abs=1e-6)
    loaded = tfprune.load_model(str(out / "model.h5"))
    assert tfprune.sparsity_report(loaded).sparsity == pytest.approx(result["sparsity"], abs=1e-6)
    proc = subprocess.run([sys.executable, "-m", "tflite_export", f"--model={out / 'model.h5'}",
                           f"--out={tmp_path / 'm.tflite'}"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "m.tflite").stat().st_size > 0


def test_same_config_same_masks_and_metrics(tmp_path):
    config = tiny_config(method="random", sparsity=0.8, seed=5)
    m1, r1 = training.train(config, log=lambda *_: None)
    m2, r2 = training.train(config, log=lambda *_: None)
    assert r1["test_accuracy"] == r2["test_accuracy"] and r1["test_loss"] == r2["test_loss"]
    assert r1["history"] == r2["history"]
    import tfprune
    for name, mask in tfprune.get_masks(m1).items():
        np.testing.assert_array_equal(mask, tfprune.get_masks(m2)[name])


def test_snip_scores_a_balanced_batch_and_sgd_optimizer_runs():
    result = training.run(tiny_config(method="snip", sparsity=0.5, optimizer="sgd", lr=0.1), log=lambda *_: None)
    assert result["method_info"]["per_class"] == 10
    assert result["sparsity"] == pytest.approx(0.5, abs=1e-3)


def test_tfmot_gradual_reaches_the_target_with_a_schedule_ending_on_a_pruning_step():
    config = tiny_config(method="tfmot_gradual", sparsity=0.75, epochs=3)
    schedule = tfmot_schedule(config.sparsity, TfmotSettings(), total_steps=12)
    assert schedule.end_step % schedule.frequency == 0 and 0 < schedule.end_step <= 8
    big = tfmot_schedule(0.9, TfmotSettings(), total_steps=8 * 469)
    assert (big.frequency, big.end_step) == (100, 2500)
    result = training.run(config, log=lambda *_: None)
    assert result["method_info"]["schedule"] == "PolynomialDecay"
    for row in result["report"]["layers"]:  # TF-MOT prunes every layer to the target
        assert row["density"] == pytest.approx(0.25, abs=0.01)


def test_demo_prints_one_table_with_three_methods(tmp_path, capsys):
    assert run_main(demo, TINY + ["--method=synflow", "--sparsity=0.9", f"--out_dir={tmp_path}"]) == 0
    printed = capsys.readouterr().out
    table = printed[printed.index("method "):]
    for method in ("dense", "synflow", "tfmot_gradual"):
        assert f"\n{method} " in table
    assert ".tflite size" in table
    assert sorted(os.listdir(tmp_path)) == ["dense", "synflow", "tfmot_gradual"]


def test_cli_lists_are_in_sync_with_the_registries():
    import tfprune
    import tflite_export
    from tfprune.experiment.procedures import scorers
    assert scorers.SANITY_CHECKS == ("none",) + tuple(v for v in tfprune.lottery.VARIANTS if v != "unmodified")
    assert set(tfprune.scorer_names()) <= set(FLAGS["method"].parser.enum_values)
    assert set(training.procedure_names()) <= set(FLAGS["method"].parser.enum_values)
    assert set(cli.RUN_FLAGS) <= {f for f in FLAGS}
    assert cli.cfg.QUANTIZATIONS == tflite_export.QUANTIZATIONS


# ------------------------------------------------------------------------------- tfprune.lottery, tflite_export
def test_lottery_levels_land_exactly_on_the_target():
    levels, fraction = lottery_procedure.lottery_levels(0.98, 0.2)
    assert levels == 18 and fraction == pytest.approx(1 - 0.02 ** (1 / 18)) and 0.19 < fraction <= 0.2
    assert lottery_procedure.lottery_levels(0.75, 0.5) == (2, 0.5)


def test_lottery_run_with_rewinding_and_sparse_tflite_export(tmp_path, capsys):
    out = tmp_path / "lt"
    argv = TINY + ["--method=lottery", "--sparsity=0.75", "--prune_fraction=0.5", "--rewind_step=1",
                   "--export_tflite", "--tensorboard", f"--out_dir={out}"]
    assert run_main(train, argv) == 0
    printed = capsys.readouterr().out
    assert "Lottery ticket" in printed and "WRITTEN" in printed  # level table and export report
    result = json.loads((out / "result.json").read_text())
    assert result["sparsity"] == pytest.approx(0.75, abs=1e-3)
    assert result["method_info"]["level"] == 2 and result["method_info"]["rewind_step"] == 1
    assert sorted(result["method_info"]["level_sparsities"]) == ["0", "1", "2"]
    assert result["tflite"]["written"] and result["tflite"]["size_bytes"] == (out / "model.tflite").stat().st_size
    assert (out / "run" / "level_2" / "mask.npz").exists()
    assert glob.glob(str(out / "tensorboard" / "sparsity" / "events.*"))  # one step per level
    # Rerun: the engine finds every level complete and trains nothing.
    before = (out / "run" / "level_2" / "metrics.json").stat().st_mtime_ns
    again = training.run(training.Config(**{**result["config"], "export_tflite": False, "tensorboard": False}),
                         log=lambda *_: None)
    assert again["test_accuracy"] == result["test_accuracy"]
    assert (out / "run" / "level_2" / "metrics.json").stat().st_mtime_ns == before


def test_early_step_and_sanity_run_on_the_lottery_engine(tmp_path):
    early = training.run(tiny_config(method="snip", sparsity=0.9, settings={"early_step": 2},
                                     out_dir=str(tmp_path / "e")),
                         log=lambda *_: None)
    assert early["method_info"]["api"] == "tfprune.lottery.prune_early" and early["method_info"]["prune_step"] == 2
    assert early["sparsity"] == pytest.approx(0.9, abs=1e-3) and early["steps"] == 4 - 2
    shuffled = training.run(tiny_config(method="synflow", sparsity=0.9, settings={"sanity": "shuffle"},
                                        out_dir=str(tmp_path / "s")), log=lambda *_: None)
    assert shuffled["method_info"]["phase"] == "shuffle"
    assert shuffled["sparsity"] == pytest.approx(0.9, abs=1e-3)
