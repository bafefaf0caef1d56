"""Lottery tickets with rewinding: densities, rewinding bit for bit, resuming, bad input."""
import os

import numpy as np
import pytest
import tf_keras as keras

import tfprune
from lottery_helpers import FailAt, Interrupt
from tfprune import lottery
from tfprune.io import load_json, load_npz
from tfprune.spec import TrainingSpec

EPOCHS, BATCH, N = 2, 32, 160  # 5 steps per epoch, 10 steps per level


def make_data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, 0] - x[:, 1] + 0.5 * x[:, 2] > 0).astype("int32")
    return x, y


def build():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                             keras.layers.Dense(12, activation="relu", name="hidden2"),
                             keras.layers.Dense(2, name="output")])


def build_unnamed():
    """Auto-named layers, and a Dropout layer (its random masks must also replay after a resume)."""
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dropout(0.3),
                             keras.layers.Dense(2)])


LOSS = "sparse_categorical_crossentropy"


def lottery_args(run_dir, training=(), **overrides):
    """The LotteryTicket arguments of these tests; ``training``: changes to their TrainingSpec."""
    spec = TrainingSpec(epochs=EPOCHS, batch_size=BATCH, seed=7, deterministic=True,
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        optimizer={"class_name": "Adam", "config": {"learning_rate": 0.01}})
    args = dict(run_dir=str(run_dir), levels=3, rewind_step=3, training=spec.replace(**dict(training)))
    args.update(overrides)
    return args


def weights_equal_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted 3-level run (shared by several tests)."""
    run_dir = tmp_path_factory.mktemp("lottery") / "ref"
    x, y = make_data()
    lt = lottery.LotteryTicket(build, (x, y), make_data(1, 64), **lottery_args(run_dir))
    results = lt.run()
    return lt, results, run_dir


def test_three_levels_reach_density_0_8_cubed_exactly(reference_run):
    lt, results, run_dir = reference_run
    assert [r.level for r in results] == [0, 1, 2, 3]
    sizes = {"hidden": 8 * 16, "hidden2": 16 * 12, "output": 12 * 2}
    total = sum(sizes.values())
    for level in range(4):
        masks = lt.masks(level)
        kept = sum(int(m.sum()) for m in masks.values())
        # global ranking keeps exactly round(N * 0.8^level) weights (no accumulated rounding)
        assert kept == round(total * 0.8 ** level)
        assert results[level].kept == kept
        assert results[level].sparsity == pytest.approx(1 - kept / total)
    assert abs(results[3].density - 0.8 ** 3) <= 1 / total
    # levels are nested: a weight pruned once stays pruned
    for level in range(1, 4):
        before, after = lt.masks(level - 1), lt.masks(level)
        for name in before:
            assert np.all(after[name] <= before[name])


def test_each_level_prunes_the_smallest_trained_weights(reference_run):
    lt, _, run_dir = reference_run
    for level in range(1, 4):
        trained = load_npz(run_dir / f"level_{level - 1}" / "trained_weights.npz")
        before, after = lt.masks(level - 1), lt.masks(level)
        kept_mag = np.concatenate([np.abs(trained[f"{n}::0"])[after[n] == 1] for n in after])
        pruned_now = np.concatenate([np.abs(trained[f"{n}::0"])[(before[n] == 1) & (after[n] == 0)] for n in after])
        assert pruned_now.size > 0 and kept_mag.min() >= pruned_now.max()


def test_rewound_weights_equal_step_k_weights_bit_for_bit(reference_run):
    lt, _, run_dir = reference_run
    point = load_npz(run_dir / "level_0" / "rewind_point.npz")
    theta_k = {k[2:]: v for k, v in point.items() if k.startswith("w/")}
    theta_0 = load_npz(run_dir / "init_weights.npz")
    assert not np.array_equal(theta_k["hidden::0"], theta_0["hidden::0"])  # k=3: really trained 3 steps
    # the optimizer state at step k was captured too (iterations == 3)
    assert int(point["opt/0"]) == 3
    for level in range(1, 4):
        masks = lt.masks(level)
        rewound = load_npz(run_dir / f"level_{level}" / "rewind_weights.npz")
        assert set(rewound) == set(theta_k)
        for key, value in theta_k.items():
            layer, index = key.split("::")
            expected = value if not (layer in masks and index == "0") else np.where(masks[layer] == 1, value, 0)
            assert weights_equal_bits(rewound[key], expected.astype(value.dtype)), (level, key)


def test_model_actually_starts_from_rewound_weights(tmp_path):
    """A callback sees, at the start of level 1's training, θk ⊙ m bit for bit (and a fresh optimizer)."""
    seen = {}

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if "kernel" not in seen and float(tfprune.sparsity_report(self.model, check_paths=False).sparsity) > 0:
                seen["kernel"] = self.model.layers[0].layer.kernel.numpy().copy()
                seen["iterations"] = int(self.model.optimizer.iterations.numpy())

    x, y = make_data()
    lt = lottery.LotteryTicket(build, (x, y), None,
                               **lottery_args(tmp_path / "r", levels=1, training={"callbacks": [Spy()]}))
    lt.run()
    point = load_npz(tmp_path / "r" / "level_0" / "rewind_point.npz")
    mask = lt.masks(1)["hidden"]
    assert weights_equal_bits(seen["kernel"], np.where(mask == 1, point["w/hidden::0"], 0).astype(np.float32))
    assert seen["iterations"] == 0  # optimizer recreated


def test_rewind_step_zero_resets_to_initialization(tmp_path):
    x, y = make_data()
    lt = lottery.LotteryTicket(build_unnamed, (x, y), None, **lottery_args(tmp_path / "r0", levels=1, rewind_step=0))
    lt.run()
    theta_0 = load_npz(tmp_path / "r0" / "init_weights.npz")
    rewound = load_npz(tmp_path / "r0" / "level_1" / "rewind_weights.npz")
    masks = lt.masks(1)
    for key, value in theta_0.items():
        layer, index = key.split("::")
        expected = np.where(masks[layer] == 1, value, 0).astype(value.dtype) if index == "0" else value
        assert weights_equal_bits(rewound[key], expected)


def test_layerwise_scope_and_output_at_half_rate(tmp_path):
    x, y = make_data()
    lt = lottery.LotteryTicket(build, (x, y), None, **lottery_args(
        tmp_path / "half", levels=2, scope="layerwise", layer_prune_fractions={"output": 0.1}, training={"epochs": 1}))
    lt.run()
    masks = lt.masks(2)
    assert int(masks["hidden"].sum()) == round(128 * 0.8 ** 2)
    assert int(masks["hidden2"].sum()) == round(192 * 0.8 ** 2)
    assert int(masks["output"].sum()) == round(24 * 0.9 ** 2)


def strip_time(metrics):
    return {k: v for k, v in metrics.items() if k != "wall_time_s"}


def assert_same_run(dir_a, dir_b, levels=4):
    for level in range(levels):
        a, b = dir_a / f"level_{level}", dir_b / f"level_{level}"
        assert strip_time(load_json(a / "metrics.json")) == strip_time(load_json(b / "metrics.json")), level
        for name in ("mask.npz", "rewind_weights.npz", "trained_weights.npz"):
            fa, fb = load_npz(a / name), load_npz(b / name)
            assert set(fa) == set(fb)
            for key in fa:
                assert np.array_equal(fa[key], fb[key]), (level, name, key)


@pytest.mark.parametrize("fail_at", [5, 8])
def test_interrupted_run_resumes_to_identical_results(reference_run, tmp_path, fail_at):
    """Epoch ends: level 0 has 3 (split at the rewind step 3), then 2 per level: #5 is level 1's
    2nd epoch (after level 1's 1st-epoch checkpoint), #8 is level 3's 1st epoch end."""
    _, ref_results, ref_dir = reference_run
    x, y = make_data()
    run_dir = tmp_path / "resumed"
    # an unnamed-layer factory would get new layer names on the second build in this process:
    # the named one checks the plain path; test_resume_with_auto_generated_names the other.
    with pytest.raises(Interrupt):
        lottery.LotteryTicket(build, (x, y), make_data(1, 64),
                              **lottery_args(run_dir, training={"callbacks": [FailAt(fail_at)]})).run()
    complete = [lvl for lvl in range(4) if (run_dir / f"level_{lvl}" / "metrics.json").exists()]
    assert complete == list(range(1 if fail_at == 5 else 3))
    assert (run_dir / f"level_{len(complete)}" / "checkpoint.npz").exists() == (fail_at == 5)
    assert not (run_dir / ".lock").exists()
    results = lottery.LotteryTicket(build, (x, y), make_data(1, 64), **lottery_args(run_dir)).run()
    assert_same_run(ref_dir, run_dir)
    assert [r.val_accuracy for r in results] == [r.val_accuracy for r in ref_results]
    assert not any(p.name == "checkpoint.npz" for p in run_dir.rglob("*"))


def test_resume_with_auto_generated_names(tmp_path):
    """Re-building with a factory in the same process gives new auto names (dense_5...); the run
    maps the stored names by position and continues identically."""
    x, y = make_data()
    kwargs = lottery_args(tmp_path / "a", levels=2, training={"epochs": 1}, rewind_step=0)
    lottery.LotteryTicket(build_unnamed, (x, y), None, **kwargs).run()
    with pytest.raises(Interrupt):
        lottery.LotteryTicket(build_unnamed, (x, y), None, **dict(
            kwargs, run_dir=str(tmp_path / "b"), training=kwargs["training"].replace(callbacks=[FailAt(2)]))).run()
    lottery.LotteryTicket(build_unnamed, (x, y), None, **dict(kwargs, run_dir=str(tmp_path / "b"))).run()
    stored = load_json(tmp_path / "a" / "config.json")["layer_names"]
    for level in range(3):
        a = load_json(tmp_path / "a" / f"level_{level}" / "metrics.json")
        b = load_json(tmp_path / "b" / f"level_{level}" / "metrics.json")
        assert a["history"] == b["history"] and a["kept"] == b["kept"]
        ma, mb = load_npz(tmp_path / "a" / f"level_{level}" / "mask.npz"), load_npz(tmp_path / "b" / f"level_{level}" / "mask.npz")
        # pair the layers by position (auto names differ between the runs; sorting "dense_10" and
        # "dense_9" as strings would pair different layers)
        layers_a = [k for k in ma if not k.startswith("__")]
        layers_b = [k for k in mb if not k.startswith("__")]
        assert len(layers_a) == len(layers_b)
        for ka, kb in zip(layers_a, layers_b):
            assert np.array_equal(ma[ka], mb[kb])
    assert stored  # names were recorded


def test_finished_run_does_nothing_and_returns_results(reference_run):
    lt, results, run_dir = reference_run
    stamps = {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()}
    x, y = make_data()
    again = lottery.LotteryTicket(build, (x, y), make_data(1, 64), **lottery_args(run_dir)).run()
    assert [r.metrics for r in again] == [r.metrics for r in results]
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("*") if p.is_file()} == stamps
    table = lt.summary()
    assert "level" in table and "sparsity" in table and table.count("*") == 1
    assert len(lt.results()) == 4 and lt.results().best is not None


def test_model_accessor_rebuilds_a_level(reference_run):
    lt, results, run_dir = reference_run
    model = lt.model(2)
    assert tfprune.get_masks(model)["hidden"].tolist() == lt.masks(2)["hidden"].tolist()
    trained = load_npz(run_dir / "level_2" / "trained_weights.npz")
    assert np.array_equal(model.layers[0].layer.kernel.numpy(), trained["hidden::0"])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    xv, yv = make_data(1, 64)
    assert model.evaluate(xv, yv, verbose=0)[1] == pytest.approx(results[2].val_accuracy, abs=1e-6)


def test_target_sparsity_sets_number_of_levels(tmp_path):
    x, y = make_data()
    lt = lottery.LotteryTicket(build_unnamed, (x, y), None, **lottery_args(
        tmp_path / "t", levels=None, target_sparsity=0.7, prune_fraction=0.5, training={"steps": 3, "epochs": None},
        rewind_step=0))
    results = lt.run()
    assert lt.num_levels == 2 and len(results) == 3  # 0.5^2 = 0.25 <= 0.3
    assert results[-1].sparsity >= 0.7 - 1e-9
    assert lottery.levels_for_sparsity(0.98, 0.2) == 18


# ----------------------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.2, float("nan")])
def test_prune_fraction_outside_open_interval(tmp_path, fraction):
    x, y = make_data()
    with pytest.raises(ValueError, match=r"prune_fraction: got .*allowed: .*strictly between 0 and 1"):
        lottery.LotteryTicket(build, (x, y), **lottery_args(tmp_path, prune_fraction=fraction))


def test_rewind_step_larger_than_steps_per_level(tmp_path):
    x, y = make_data()
    with pytest.raises(ValueError, match=r"rewind_step: got 11; allowed: an integer step in \[0, 10\)"):
        lottery.LotteryTicket(build, (x, y), **lottery_args(tmp_path, rewind_step=11))
    with pytest.raises(ValueError, match=r"rewind_step: got 10"):
        lottery.LotteryTicket(build, (x, y), **lottery_args(tmp_path, rewind_step=10))


def test_levels_and_target_are_exclusive(tmp_path):
    x, y = make_data()
    with pytest.raises(ValueError, match="exactly one"):
        lottery.LotteryTicket(build, (x, y), **lottery_args(tmp_path, levels=2, target_sparsity=0.9))
    with pytest.raises(ValueError, match="exactly one"):
        lottery.LotteryTicket(build, (x, y), **lottery_args(tmp_path, levels=None))


def test_unknown_layer_in_layer_prune_fractions(tmp_path):
    x, y = make_data()
    lt = lottery.LotteryTicket(build, (x, y), **lottery_args(tmp_path / "u", layer_prune_fractions={"outptu": 0.1}))
    with pytest.raises(ValueError, match=r"layer_prune_fractions: no prunable layer named \['outptu'\]"):
        lt.run()


def test_existing_run_dir_with_other_configuration_is_refused(reference_run):
    _, _, run_dir = reference_run
    x, y = make_data()
    with pytest.raises(lottery.RunConfigError, match=r"prune_fraction: stored 0.2, now 0.5") as info:
        lottery.LotteryTicket(build, (x, y), make_data(1, 64), **lottery_args(run_dir, prune_fraction=0.5)).run()
    assert "refusing to mix runs" in str(info.value)
    with pytest.raises(lottery.RunConfigError, match=r"train_data\.x"):
        lottery.LotteryTicket(build, (x + 1, y), make_data(1, 64), **lottery_args(run_dir)).run()
    # the refused call changed nothing and left no lock behind
    assert not (run_dir / ".lock").exists()
    assert load_json(run_dir / "config.json")["config"]["prune_fraction"] == 0.2


def test_other_architecture_is_refused(reference_run):
    _, _, run_dir = reference_run
    x, y = make_data()

    def wider():
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu", name="hidden"),
                                 keras.layers.Dense(12, activation="relu", name="hidden2"),
                                 keras.layers.Dense(2, name="output")])

    with pytest.raises(lottery.RunConfigError, match=r"architecture\.layers\[0\]\.config\.units: stored 16, now 32"):
        lottery.LotteryTicket(wider, (x, y), make_data(1, 64), **lottery_args(run_dir)).run()


def test_run_dir_in_use_by_a_live_process(tmp_path):
    run_dir = tmp_path / "busy"
    run_dir.mkdir()
    (run_dir / ".lock").write_text(str(os.getppid()))  # a live process that is not us
    x, y = make_data()
    with pytest.raises(lottery.RunInUseError, match="is in use by process"):
        lottery.LotteryTicket(build, (x, y), **lottery_args(run_dir)).run()
