"""The mask searches at initialization (edge-popup, Gem-Miner) on tf_keras: the straight-through
gradient against finite differences, the search invariants, determinism, resume, and that a
learned mask on frozen random weights classifies far above chance (where a random mask does not)."""
import numpy as np
import pytest

import tfprune
from tfprune._keras import keras
from tfprune.scoring import _mask_search, gem_miner
from tfprune.scoring.snip import mean_loss


def mlp(in_dim=6, hidden=5, out=3, dtype="float32", seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((in_dim,), dtype=dtype),
                             keras.layers.Dense(hidden, activation="relu", name="l1", dtype=dtype),
                             keras.layers.Dense(out, name="l2", dtype=dtype)])


def toy_data(n=40, in_dim=6, classes=3, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, in_dim)), rng.integers(0, classes, n).astype("int32")


LOSS = keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def numpy_loss(model, kernels, x, y):
    """Mean softmax cross-entropy of the 2-layer ReLU MLP, by hand, in float64."""
    b1, b2 = (model.get_layer(n).bias.numpy().astype(np.float64) for n in ("l1", "l2"))
    z = np.maximum(x @ kernels["l1"] + b1, 0) @ kernels["l2"] + b2
    z = z - z.max(axis=1, keepdims=True)
    return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y]))


def test_straight_through_gradient_is_the_derivative_in_the_mask_times_theta0():
    # ∂L/∂s := ∂L(θ0 ⊙ m)/∂m at the current 0/1 mask (m relaxed to reals), = ∂L/∂(θ0 ⊙ m) ⊙ θ0.
    model = mlp(dtype="float64")
    x, y = toy_data()
    search = _mask_search.Search(model, [(x, y)], LOSS, _mask_search.SearchOptions(), "test")
    rng = np.random.default_rng(3)
    masks = {n: (rng.random(v.shape) < 0.6).astype(np.float64) for n, v in search.base.items()}
    got = _mask_search.straight_through(search.net, search.base, masks, mean_loss(LOSS), (x, y))
    eps = 1e-6
    for name in ("l1", "l2"):
        numeric = np.zeros_like(masks[name])
        for index in np.ndindex(masks[name].shape):
            values = []
            for sign in (1, -1):
                m = {n: v.copy() for n, v in masks.items()}
                m[name][index] += sign * eps
                values.append(numpy_loss(model, {n: search.base[n] * m[n] for n in m}, x, y))
            numeric[index] = (values[0] - values[1]) / (2 * eps)
        np.testing.assert_allclose(got[name], numeric, rtol=1e-6, atol=1e-9)
        assert np.abs(got[name]).max() > 1e-3  # not trivially zero


def test_minibatches_cover_every_example_once_in_a_seeded_order():
    x, y = np.arange(10.0)[:, None], np.arange(10)
    first = [b[1].tolist() for b in _mask_search.minibatches((x, y), 4, seed=0, epoch=0)]
    assert [len(b) for b in first] == [4, 4, 2] and sorted(sum(first, [])) == list(range(10))
    assert first == [b[1].tolist() for b in _mask_search.minibatches((x, y), 4, seed=0, epoch=0)]
    assert first != [b[1].tolist() for b in _mask_search.minibatches((x, y), 4, seed=0, epoch=1)]


def _record_saves(monkeypatch):
    saved = []
    real = _mask_search.Search._save

    def save(self, next_epoch):
        saved.append(({n: s.copy() for n, s in self.scores.items()}, {n: v.copy() for n, v in self.extra.items()}))
        real(self, next_epoch)

    monkeypatch.setattr(_mask_search.Search, "_save", save)
    return saved


def test_gem_miner_scores_stay_in_unit_interval_the_pruned_set_only_grows_and_the_sparsity_is_exact(monkeypatch):
    model = mlp(in_dim=8, hidden=12, out=3)
    x, y = toy_data(n=60, in_dim=8)
    saved = _record_saves(monkeypatch)
    masks = tfprune.compute_masks(model, "gem_miner", 0.8, data=(x, y), loss=LOSS, seed=0, epochs=4, batch_size=16,
                                  prune_every=2)
    total = 8 * 12 + 12 * 3
    assert sum(int(m.sum()) for m in masks.values()) == round(0.2 * total)
    assert len(saved) == 4
    previous = None
    alive_counts = []
    for scores, extra in saved:
        alive = {n[len("alive:"):]: a for n, a in extra.items()}
        for n, s in scores.items():
            assert s.min() >= 0.0 and s.max() <= 1.0
            assert (s[~alive[n]] == 0).all()
        if previous is not None:
            for n in alive:
                assert not (alive[n] & ~previous[n]).any(), "a weight pruned for good came back"
        previous = alive
        alive_counts.append(sum(int(a.sum()) for a in alive.values()))
    # prune events after epochs 1 and 3 (prune_every=2): densities 0.2^(1/2), then 0.2
    assert alive_counts == [total, round(total * 0.2 ** 0.5), round(total * 0.2 ** 0.5), round(0.2 * total)]
    final_alive = {n[len("alive:"):]: a for n, a in saved[-1][1].items()}
    for n, m in masks.items():
        np.testing.assert_array_equal(m != 0, final_alive[n])


def test_gem_miner_keeps_alive_weights_whose_score_the_penalty_pushed_below_one_half():
    # A huge penalty drives every score to 0 (so the mask s > 0.5 is empty): the final mask is
    # still exactly the target sparsity, made of the highest-scored alive weights.
    model = mlp(in_dim=8, hidden=12, out=3)
    x, y = toy_data(n=60, in_dim=8)
    masks = tfprune.compute_masks(model, "gem_miner", 0.75, data=(x, y), loss=LOSS, seed=1, epochs=2, batch_size=30,
                                  penalty=100.0)
    assert sum(int(m.sum()) for m in masks.values()) == round(0.25 * (8 * 12 + 12 * 3))


def test_gem_miner_breaks_ties_of_saturated_scores_at_random_not_by_layer_order():
    # A huge learning rate clips almost every score to 0 or 1: far more than the budget tie at 1.
    # Ranked by position, the first layer would take the whole budget and the others collapse.
    model = mlp(in_dim=8, hidden=12, out=3)
    x, y = toy_data(n=60, in_dim=8)
    masks = tfprune.compute_masks(model, "gem_miner", 0.8, data=(x, y), loss=LOSS, seed=0, epochs=1, batch_size=60,
                                  lr=1e6, penalty=0.0)
    assert sum(int(m.sum()) for m in masks.values()) == round(0.2 * (8 * 12 + 12 * 3))
    assert all(m.sum() > 0 for m in masks.values()), {n: int(m.sum()) for n, m in masks.items()}


@pytest.mark.parametrize("method", ["edge_popup", "gem_miner"])
def test_same_seed_same_mask_and_other_seed_other_mask(method):
    x, y = toy_data(n=48, in_dim=8)
    run = lambda seed: tfprune.compute_masks(mlp(in_dim=8, hidden=12), method, 0.7, data=(x, y), loss=LOSS,  # noqa: E731
                                             seed=seed, epochs=2, batch_size=16)
    a, b, c = run(0), run(0), run(1)
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert any(not np.array_equal(a[n], c[n]) for n in a)


@pytest.mark.parametrize("method", ["edge_popup", "gem_miner"])
def test_an_interrupted_search_resumes_to_the_same_mask(method, tmp_path, monkeypatch):
    x, y = toy_data(n=48, in_dim=8)
    options = dict(data=(x, y), loss=LOSS, seed=2, epochs=3, batch_size=16)
    whole = tfprune.compute_masks(mlp(in_dim=8, hidden=12), method, 0.7, **options)
    real = _mask_search.Search._save

    def save_then_stop(self, next_epoch):
        real(self, next_epoch)
        if next_epoch == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(_mask_search.Search, "_save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        tfprune.compute_masks(mlp(in_dim=8, hidden=12), method, 0.7, state_dir=str(tmp_path), **options)
    monkeypatch.setattr(_mask_search.Search, "_save", real)
    resumed = tfprune.compute_masks(mlp(in_dim=8, hidden=12), method, 0.7, state_dir=str(tmp_path), **options)
    assert all(np.array_equal(whole[n], resumed[n]) for n in whole)
    with pytest.raises(ValueError, match="another search"):
        tfprune.compute_masks(mlp(in_dim=8, hidden=12), method, 0.7, state_dir=str(tmp_path), **{**options, "epochs": 4})
    with pytest.raises(ValueError, match="another search"):  # other initial weights
        tfprune.compute_masks(mlp(in_dim=8, hidden=12, seed=9), method, 0.7, state_dir=str(tmp_path), **options)
    with pytest.raises(ValueError, match="another search"):  # other data
        tfprune.compute_masks(mlp(in_dim=8, hidden=12), method, 0.7, state_dir=str(tmp_path),
                              **{**options, "data": (x + 1, y)})


def test_edge_popup_mask_is_the_top_k_of_each_layer_with_layerwise_scope():
    x, y = toy_data(n=48, in_dim=8)
    masks = tfprune.compute_masks(mlp(in_dim=8, hidden=12), "edge_popup", 0.75, data=(x, y), loss=LOSS, scope="layerwise",
                                  epochs=1, batch_size=16)
    assert int(masks["l1"].sum()) == round(0.25 * 96) and int(masks["l2"].sum()) == round(0.25 * 36)


def _digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return x[:1400], y[:1400].astype("int32"), x[1400:], y[1400:].astype("int32")


@pytest.mark.parametrize("method", ["edge_popup", "gem_miner"])
def test_a_learned_mask_on_frozen_random_weights_classifies_far_above_chance(method):
    xt, yt, xe, ye = _digits()

    def accuracy(masks):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(256, activation="relu", name="l1"),
                                  keras.layers.Dense(10, name="l2")])
        pruned = tfprune.apply_masks(model, masks) if masks else model
        return float(np.mean(np.argmax(pruned.predict(xe, verbose=0), axis=1) == ye)), model

    _, model = accuracy(None)
    learned = tfprune.compute_masks(model, method, 0.5, data=(xt, yt), loss=LOSS, seed=0, epochs=6, batch_size=32)
    random = tfprune.compute_masks(model, "random", 0.5, seed=0)
    learned_acc, random_acc = accuracy(learned)[0], accuracy(random)[0]
    assert learned_acc > 0.7 and learned_acc > random_acc + 0.4, (learned_acc, random_acc)


def test_bad_options_give_one_line_errors():
    x, y = toy_data()
    model = mlp()
    for kwargs, text in [(dict(epochs=0), "epochs: got 0"), (dict(momentum=1.0), "momentum: got 1.0"),
                         (dict(lr=-1.0), "lr: got -1.0"), (dict(n_m=(2, 4)), "does not take n_m"),
                         (dict(min_density=0.1), "does not take min_density"),
                         (dict(rounds=3), "does not take rounds=3")]:
        with pytest.raises((ValueError, TypeError), match=text) as error:
            tfprune.compute_masks(model, "gem_miner", None if "n_m" in kwargs else 0.5, data=(x, y), loss=LOSS, **kwargs)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="penalty: got -1"):
        tfprune.compute_masks(model, "gem_miner", 0.5, data=(x, y), loss=LOSS, penalty=-1)
    assert gem_miner.prune_events(5, 2) == [1, 3, 4] and gem_miner.prune_events(4, 1) == [0, 1, 2, 3]


# ------------------------------------------------------------------ in the training binaries
def _tiny(method, out_dir, **settings):
    from tfprune import experiment

    config = experiment.Config(dataset="synthetic", epochs=1, batch_size=64, max_train=256, max_test=64, verbose=0,
                               method=method, sparsity=0.9, seed=3, out_dir=out_dir,
                               settings={"search_epochs": 2, **settings})
    return experiment.run(config, log=lambda *_: None)


def test_a_search_runs_from_the_binaries_records_accuracy_before_training_and_is_deterministic(tmp_path):
    result = _tiny("gem_miner", str(tmp_path / "a"))
    info = result["method_info"]
    assert result["sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert 0.0 <= info["test_accuracy_before_training"] <= 1.0 and info["epochs_spent"] == 2 + 1
    assert info["epochs"] == 2 and info["batch_size"] == 64 and info["penalty"] == 1e-4
    state = tmp_path / "a" / "search" / "search.npz"
    assert state.exists()  # resumable (tested with compute_masks above); the same config, the same run:
    again = _tiny("gem_miner", str(tmp_path / "b"))
    assert again["test_accuracy"] == result["test_accuracy"]
    assert again["method_info"]["test_accuracy_before_training"] == info["test_accuracy_before_training"]


def test_the_sanity_checks_run_on_a_learned_mask(tmp_path):
    shuffled = _tiny("edge_popup", str(tmp_path / "s"), sanity="shuffle")
    assert shuffled["method_info"]["phase"] == "shuffle" and shuffled["sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert (tmp_path / "s" / "search" / "search.npz").exists()
