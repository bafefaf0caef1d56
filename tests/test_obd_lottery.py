"""OBD as a criterion of the lottery engine (tfprune.lottery.Criterion) and as the ``obd``
procedure (examples/train.py --method=obd, the sweep's grid)."""
import json

import numpy as np
import pytest
import tf_keras as keras

import tfprune
from tfprune import experiment as training
from tfprune import lottery
from tfprune.experiment import grid
from tfprune.spec import TrainingSpec

LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def make_data(n=128, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, (x[:, 0] + x[:, 1] > 0).astype("int32")


def build():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                             keras.layers.Dense(2, name="output")])


def finetune(run_dir, criterion=None, prune_fraction=0.5):
    x, y = make_data()
    spec = TrainingSpec(loss=LOSS, epochs=2, batch_size=32, seed=0, verbose=0, learning_rate=0.01)
    return lottery.LotteryTicket(build, (x, y), make_data(32, 1), training=spec, run_dir=run_dir, levels=1,
                                 strategy="finetune", prune_fraction=prune_fraction, criterion=criterion)


def test_each_level_keeps_the_highest_obd_saliencies_of_the_trained_weights(tmp_path):
    data = make_data(40, 2)
    criterion = lottery.Criterion("obd", data=data, options={"estimator": "fisher"})
    lt = finetune(tmp_path / "obd", criterion)
    lt.run()
    trained = lt.model(level=0)  # level 0's trained weights, dense
    saliency = tfprune.compute_scores(trained, "obd", data=data, loss=LOSS, estimator="fisher")
    masks = lt.masks(level=1)
    kept = np.concatenate([saliency[n][masks[n] == 1] for n in masks])
    pruned = np.concatenate([saliency[n][masks[n] == 0] for n in masks])
    assert len(kept) == len(pruned) == 8 * 16 + 16 * 2 - len(kept) and kept.min() >= pruned.max()
    by_magnitude = finetune(tmp_path / "mag")  # the same training ranked by magnitude keeps other weights
    by_magnitude.run()
    assert any((by_magnitude.masks(level=1)[n] != masks[n]).any() for n in masks)
    config = json.loads((tmp_path / "obd" / "config.json").read_text())["config"]
    assert config["criterion"] == "obd" and config["criterion_options"] == {"estimator": "fisher"}
    assert config["criterion_data"]["examples"] == 40
    # a run directory resumes only under its own criterion; the same one returns without training
    with pytest.raises(lottery.RunConfigError, match="criterion"):
        finetune(tmp_path / "obd", lottery.Criterion("obd", data=data)).run()
    assert lt.run() == finetune(tmp_path / "obd", criterion).run()


def test_the_default_criterion_keeps_the_magnitude_record_of_earlier_runs():
    assert lottery.Criterion().config() == {"criterion": "magnitude"}
    assert lottery.Criterion().keep == "highest"


@pytest.mark.parametrize("kwargs, error", [
    (dict(method="obd"), "criterion.data: method 'obd' needs scoring data"),
    (dict(method="obd", data=make_data(8), options={"temperature": 2.0}), "criterion.options: 'temperature'"),
    (dict(method="edge_popup", data=make_data(8)), "criterion.method: got 'edge_popup', a mask search"),
    (dict(method="obdd"), "method: unknown pruning method 'obdd'"),
])
def test_bad_criteria_are_refused_before_any_training(kwargs, error):
    with pytest.raises((ValueError, TypeError), match=error):
        lottery.Criterion(**kwargs)


def test_obd_procedure_runs_from_the_training_binary_and_is_a_trajectory_of_the_sweep(tmp_path):
    config = training.Config(dataset="synthetic", epochs=1, batch_size=64, max_train=256, max_test=64, verbose=0,
                             method="obd", sparsity=0.75, out_dir=str(tmp_path / "obd"),
                             settings={"prune_fraction": 0.5, "obd_per_class": 5})
    result = training.run(config, log=lambda *_: None)
    assert result["sparsity"] == pytest.approx(0.75, abs=1e-3) and result["method_info"]["level"] == 2
    assert "OBD saliency" in result["method_info"]["ranking"]
    stored = json.loads((tmp_path / "obd" / "run" / "config.json").read_text())["config"]
    assert stored["criterion"] == "obd" and stored["criterion_data"]["examples"] == 5 * 4  # 4 synthetic classes
    assert grid._grid_kind("obd") == "trajectory" and "obd" not in grid.default_methods()


def test_the_procedures_estimators_are_the_scorers():
    from tfprune.experiment.procedures import obd as procedure
    from tfprune.scoring import obd as scorer

    assert procedure.ESTIMATORS == scorer.ESTIMATORS


def test_samples_without_hutchinson_is_refused():
    config = training.Config(dataset="synthetic", method="obd", sparsity=0.5, settings={"samples": 10})
    with pytest.raises(ValueError, match="samples=10 applies to estimator=hutchinson only"):
        training.run(config, log=lambda *_: None)
