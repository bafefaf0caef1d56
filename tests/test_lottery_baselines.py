"""Baselines (magnitude after training, Train-(Prune-Finetune)^n) and pruning early in training."""
import numpy as np
import pytest
import tf_keras as keras

import tfprune
from tfprune import lottery
from tfprune.io import load_json, load_npz
from tfprune.spec import TrainingSpec


def make_data(seed=0, n=160):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    y = (x[:, 0] - x[:, 1] > 0).astype("int32")
    return x, y


def build():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                             keras.layers.Dense(2, name="output")])


SPEC = TrainingSpec(batch_size=32, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    optimizer={"class_name": "Adam", "config": {"learning_rate": 0.01}}, seed=3)


def training(**changes):
    return SPEC.replace(**changes)
TOTAL = 8 * 16 + 16 * 2


def test_prune_finetune_continues_from_trained_weights(tmp_path):
    x, y = make_data()
    results = lottery.prune_finetune(build, (x, y), make_data(1, 64), run_dir=str(tmp_path / "ft"), levels=2,
                                     prune_fraction=0.5, finetune_steps=3, training=training(epochs=1))
    assert [r.steps for r in results] == [5, 3, 3]
    for level in (1, 2):
        trained_before = load_npz(tmp_path / "ft" / f"level_{level - 1}" / "trained_weights.npz")
        start = load_npz(tmp_path / "ft" / f"level_{level}" / "rewind_weights.npz")
        mask = load_npz(tmp_path / "ft" / f"level_{level}" / "mask.npz")["hidden"]
        assert np.array_equal(start["hidden::0"], np.where(mask == 1, trained_before["hidden::0"], 0))
        assert np.array_equal(start["hidden::1"], trained_before["hidden::1"])  # biases kept, not rewound
        assert results[level].kept == round(TOTAL * 0.5 ** level)
    config = load_json(tmp_path / "ft" / "config.json")["config"]
    assert config["strategy"] == "finetune" and config["finetune_steps"] == 3


def test_magnitude_after_training_one_shot(tmp_path):
    x, y = make_data()
    results = lottery.magnitude_after_training(build, (x, y), make_data(1, 64), sparsity=0.75,
                                               run_dir=str(tmp_path / "mag"), finetune_steps=0,
                                               training=training(epochs=1))
    assert len(results) == 2
    assert results[1].kept == round(TOTAL * 0.25) and results[1].steps == 0
    trained = load_npz(tmp_path / "mag" / "level_0" / "trained_weights.npz")
    mask = lottery.load_ticket(tmp_path / "mag" / "level_1" / "mask.npz").masks
    scores = np.concatenate([np.abs(trained[f"{n}::0"]).ravel() for n in mask])
    kept = np.concatenate([m.ravel() for m in mask.values()]) == 1
    assert scores[kept].min() >= scores[~kept].max()  # global magnitude of the trained weights
    # no fine-tuning: the pruned level is only evaluated; its weights are the masked trained ones
    final = load_npz(tmp_path / "mag" / "level_1" / "trained_weights.npz")
    assert np.array_equal(final["hidden::0"], np.where(mask["hidden"] == 1, trained["hidden::0"], 0))
    assert results[1].val_accuracy is not None and results[1].train_loss is None
    with pytest.raises(ValueError, match=r"sparsity: got 1.2; allowed: a sparsity strictly between 0 and 1"):
        lottery.magnitude_after_training(build, (x, y), sparsity=1.2, run_dir=str(tmp_path / "bad"),
                                         training=training(epochs=1))


def test_finetune_rejects_rewind_step(tmp_path):
    x, y = make_data()
    with pytest.raises(ValueError, match="rewind_step: got 2; allowed: 0 with strategy='finetune'"):
        lottery.prune_finetune(build, (x, y), run_dir=str(tmp_path), levels=1, rewind_step=2,
                               training=training(epochs=1))


@pytest.mark.parametrize("method", ["magnitude", "snip", "synflow"])
def test_prune_early_scores_theta_k_and_continues_from_it(tmp_path, method):
    x, y = make_data()
    seen = {}

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            if tfprune.get_masks(self.model)["hidden"].min() == 0 and "iterations" not in seen:
                seen["iterations"] = int(self.model.optimizer.iterations.numpy())

    results = lottery.prune_early(build, (x, y), make_data(1, 64), method=method, sparsity=0.8, prune_step=4,
                                  run_dir=str(tmp_path / method), train_dense=False,
                                  training=training(epochs=2, callbacks=[Spy()]))
    run = tmp_path / method
    assert [r.name for r in results] == ["level_0", "level_1"]
    assert results[0].steps == 4 and results[1].start_step == 4 and results[1].end_step == 10
    point = load_npz(run / "level_0" / "rewind_point.npz")
    theta_k = {k[2:]: v for k, v in point.items() if k.startswith("w/")}
    theta_0 = load_npz(run / "init_weights.npz")
    masks = lottery.load_ticket(run / "level_1" / "mask.npz").masks
    start = load_npz(run / "level_1" / "rewind_weights.npz")
    assert not np.array_equal(theta_k["hidden::0"], theta_0["hidden::0"])
    assert np.array_equal(start["hidden::0"], np.where(masks["hidden"] == 1, theta_k["hidden::0"], 0))
    assert results[1].kept == round(TOTAL * 0.2)
    assert seen["iterations"] == 4  # the optimizer state at step k was carried over
    # the masks are the core's compute_masks on θk
    model = build()
    for layer in model.layers:
        layer.set_weights([theta_k[f"{layer.name}::{i}"] for i in range(len(layer.weights))])
    expected = tfprune.compute_masks(model, method, 0.8, data=(x[:32], y[:32]) if method == "snip" else None,
                                     loss=SPEC.loss, seed=load_json(run / "config.json")["seed_used"])
    for name in expected:
        assert np.array_equal(expected[name], masks[name]), name


def test_prune_early_reset_optimizer_and_dense_reference(tmp_path):
    x, y = make_data()
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.append((tfprune.get_masks(self.model)["hidden"].min(), int(self.model.optimizer.iterations.numpy())))

    results = lottery.prune_early(build, (x, y), None, method="random", sparsity=0.5, prune_step=3,
                                  run_dir=str(tmp_path / "r"), reset_optimizer=True,
                                  training=training(steps=8, callbacks=[Spy()]))
    assert results[0].steps == 8 and results[0].sparsity == 0  # dense reference trained to T
    assert results[1].steps == 5
    pruned_starts = [it for low, it in seen if low == 0]
    assert pruned_starts[0] == 0
    with pytest.raises(ValueError, match=r"prune_step: got 8; allowed: an integer step in \[0, 8\)"):
        lottery.prune_early(build, (x, y), method="random", sparsity=0.5, prune_step=8,
                            run_dir=str(tmp_path / "bad"), training=training(steps=8))
    with pytest.raises(ValueError, match="method: unknown pruning method 'snipp'"):
        lottery.prune_early(build, (x, y), method="snipp", sparsity=0.5, prune_step=1,
                            run_dir=str(tmp_path / "bad"), training=training(steps=8))


def test_dataset_and_per_epoch_callable_as_training_data(tmp_path):
    import tensorflow as tf

    x, y = make_data()
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    results = lottery.lottery_ticket(build, dataset, make_data(1, 64), run_dir=str(tmp_path / "ds"), levels=1,
                                     training=training(epochs=2))
    assert [r.steps for r in results] == [10, 10] and results[1].kept == round(TOTAL * 0.8)

    def per_epoch(epoch):  # reshuffled per epoch, reproducibly
        return tf.data.Dataset.from_tensor_slices((x, y)).shuffle(160, seed=epoch).batch(32)

    results = lottery.lottery_ticket(build, per_epoch, None, run_dir=str(tmp_path / "fn"), levels=1, rewind_step=2,
                                     training=training(steps=7, steps_per_epoch=4))
    history = results[1].metrics["history"]
    assert [(h["start_step"], h["end_step"]) for h in history] == [(2, 4), (4, 7)]
    with pytest.raises(ValueError, match="steps_per_epoch: train_data has no known finite number of batches"):
        lottery.LotteryTicket(build, dataset.repeat(), run_dir=str(tmp_path / "inf"), levels=1,
                              training=training(epochs=1))


def test_legacy_optimizer_state_survives_a_resume(tmp_path):
    x, y = make_data()

    class Boom(keras.callbacks.Callback):
        count = 0

        def on_epoch_end(self, epoch, logs=None):
            Boom.count += 1
            if Boom.count == 4:  # level 1 epoch 2 (level 0 has 2 epoch ends; level 1 epoch 1 is checkpointed)
                raise KeyboardInterrupt

    spec = training(optimizer=keras.optimizers.legacy.SGD(0.05, momentum=0.9), epochs=2, deterministic=True)
    kwargs = dict(levels=1, training=spec)
    reference = lottery.lottery_ticket(build, (x, y), None, run_dir=str(tmp_path / "a"), **kwargs)
    with pytest.raises(KeyboardInterrupt):
        lottery.lottery_ticket(build, (x, y), None, run_dir=str(tmp_path / "b"), levels=1,
                               training=spec.replace(callbacks=[Boom()]))
    assert (tmp_path / "b" / "level_1" / "checkpoint.npz").exists()
    resumed = lottery.lottery_ticket(build, (x, y), None, run_dir=str(tmp_path / "b"), **kwargs)
    assert resumed[1].metrics["history"] == reference[1].metrics["history"]
    a = load_npz(tmp_path / "a" / "level_1" / "trained_weights.npz")
    b = load_npz(tmp_path / "b" / "level_1" / "trained_weights.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a)
