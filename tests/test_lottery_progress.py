"""What a lottery run tells its user while it trains: progress lines by default, one warning for a
model that is not learning (issue 11, item 8)."""
import warnings

import numpy as np
import tf_keras as keras

from tfprune import lottery
from tfprune.spec import TrainingSpec

N, BATCH = 96, 32  # 3 steps per epoch


def make_data(classes=2, seed=0, n=N):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] - x[:, 2] > 0).astype("int32") if classes == 2 else rng.integers(0, classes, n).astype("int32")
    return x, y


def build(classes=2, bias=0.0):
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="a"),
                             keras.layers.Dense(classes, name="out",
                                                bias_initializer=keras.initializers.Constant(bias))])


def run(tmp_path, build_fn=build, data=None, levels=1, **spec):
    spec = {"epochs": 2, "batch_size": BATCH, "seed": 0,
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True), **spec}
    return lottery.LotteryTicket(build_fn, data or make_data(), make_data(seed=1, n=48), run_dir=str(tmp_path / "r"),
                                 levels=levels, training=TrainingSpec(**spec)).run()


def chance_warnings(record):
    return [w for w in record if issubclass(w.category, UserWarning) and "chance level" in str(w.message)]


def test_logits_with_a_probability_loss_warn_once_naming_from_logits(tmp_path):
    """The README mistake: a model that outputs logits, the loss string that expects probabilities.
    With every logit below 0 the clipped loss is exactly ln(4) and nothing learns."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run(tmp_path, lambda: build(4, bias=-20.0), make_data(4), levels=2, verbose=0,
            loss="sparse_categorical_crossentropy")
    found = chance_warnings(record)
    assert len(found) == 1, [str(w.message) for w in found]  # once per run, not per epoch or level
    message = str(found[0].message)
    assert "from_logits=True" in message and "ln(4) = 1.3863" in message and "\n" not in message


def test_a_learning_model_does_not_warn(tmp_path):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run(tmp_path, verbose=0, optimizer={"class_name": "Adam", "config": {"learning_rate": 0.01}})
    assert not chance_warnings(record)


def test_default_verbosity_prints_one_line_per_level(tmp_path, capsys):
    assert TrainingSpec().verbose == 1
    run(tmp_path, levels=2)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[tfprune.lottery]")]
    assert [line.split(":")[0] for line in lines] == [f"[tfprune.lottery] level_{n}" for n in range(3)]
    assert all("sparsity" in line and "val_accuracy" in line for line in lines)


def test_verbose_zero_is_silent(tmp_path, capsys):
    run(tmp_path, verbose=0)
    assert capsys.readouterr().out == ""


def test_long_levels_also_report_every_epoch(tmp_path, capsys, monkeypatch):
    from tfprune.lottery import _progress
    monkeypatch.setattr(_progress, "EPOCH_LINES_AFTER_S", 0.0)  # every level counts as long
    run(tmp_path, levels=1)
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("[tfprune.lottery]")]
    epochs = [line for line in lines if " epoch " in line]
    assert [line.split(" (")[0] for line in epochs] == [
        "[tfprune.lottery] level_0 epoch 1/2", "[tfprune.lottery] level_0 epoch 2/2",
        "[tfprune.lottery] level_1 epoch 1/2", "[tfprune.lottery] level_1 epoch 2/2"]
    assert "loss" in epochs[0] and "val_accuracy" in epochs[0]
