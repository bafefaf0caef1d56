"""Sanity checks (Frankle et al. 2021) and the pure mask transforms under them."""
import numpy as np
import pytest
import tf_keras as keras

import tfprune
from tfprune import lottery
from tfprune.io import load_npz
from tfprune.spec import TrainingSpec


def make_data(seed=0, n=96):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    y = (x[:, 0] + x[:, 3] > 0).astype("int32")
    return x, y


def build():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(10, activation="relu", name="a"),
                             keras.layers.Dense(8, activation="relu", name="b"), keras.layers.Dense(2, name="c")])


# ----------------------------------------------------------------------------------------------
# pure functions
# ----------------------------------------------------------------------------------------------

def random_masks(seed=0):
    rng = np.random.default_rng(seed)
    return {"a": (rng.random((6, 10)) < 0.3).astype(np.float32), "b": (rng.random((10, 8)) < 0.6).astype(np.float32),
            "c": np.ones((8, 2), np.float32)}


def test_shuffle_keeps_every_layer_count_and_changes_the_mask():
    masks = random_masks()
    shuffled = lottery.shuffle_masks(masks, seed=1)
    for name in masks:
        assert shuffled[name].shape == masks[name].shape and shuffled[name].dtype == np.float32
        assert int(shuffled[name].sum()) == int(masks[name].sum())
        assert set(np.unique(shuffled[name])) <= {0.0, 1.0}
    assert not np.array_equal(shuffled["a"], masks["a"]) and not np.array_equal(shuffled["b"], masks["b"])
    assert np.array_equal(shuffled["c"], masks["c"])  # all ones: nothing to move
    again = lottery.shuffle_masks(masks, seed=1)
    assert all(np.array_equal(again[n], shuffled[n]) for n in masks)  # seeded
    other = lottery.shuffle_masks(masks, seed=2)
    assert not np.array_equal(other["a"], shuffled["a"])
    assert masks["a"].sum() == random_masks()["a"].sum()  # input untouched


def test_invert_keep():
    assert lottery.invert_keep("highest") == "lowest" and lottery.invert_keep("lowest") == "highest"
    assert lottery.invert_keep(tfprune.get_scorer("snip").keep) == "lowest"
    assert lottery.invert_keep(tfprune.get_scorer("grasp").keep) == "highest"
    with pytest.raises(ValueError, match="keep: got 'top'"):
        lottery.invert_keep("top")


@pytest.mark.parametrize("method", ["magnitude", "grasp"])
def test_inverted_ranking_keeps_the_complement(method):
    keras.utils.set_random_seed(0)
    model = build()
    x, y = make_data()
    data = (x[:32], y[:32]) if method == "grasp" else None
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    scores = tfprune.compute_scores(model, method, data=data, loss=loss)
    normal = tfprune.compute_masks(model, method, 0.5, data=data, loss=loss)
    inverted = tfprune.compute_masks(model, method, 0.5, data=data, loss=loss,
                                     keep=lottery.invert_keep(tfprune.get_scorer(method).keep))
    flat_scores = np.concatenate([scores[n].ravel() for n in scores])
    flat_normal = np.concatenate([normal[n].ravel() for n in scores]) == 1
    flat_inverted = np.concatenate([inverted[n].ravel() for n in scores]) == 1
    assert flat_normal.sum() == flat_inverted.sum() == round(flat_scores.size * 0.5)
    assert np.array_equal(flat_inverted, ~flat_normal)  # N even, no ties: exactly the complement
    if tfprune.get_scorer(method).keep == "highest":  # magnitude: the inverted keeps the smallest |w|
        assert flat_scores[flat_inverted].max() <= flat_scores[~flat_inverted].min()
    else:  # GraSP keeps its lowest scores; inverted keeps the highest
        assert flat_scores[flat_inverted].min() >= flat_scores[~flat_inverted].max()


def test_prune_level_rule():
    scores = {"a": np.arange(40, dtype=float).reshape(4, 10), "b": np.arange(10, dtype=float)[::-1].reshape(2, 5)}
    ones = {n: np.ones_like(s, np.float32) for n, s in scores.items()}
    m1 = lottery.prune_level(scores, ones, 1, 0.2)
    assert lottery.count_kept(m1) == 40
    m2 = lottery.prune_level(scores, m1, 2, 0.2)
    assert lottery.count_kept(m2) == 32 and all(np.all(m2[n] <= m1[n]) for n in m1)
    own = lottery.prune_level(scores, ones, 2, 0.2, layer_fractions={"b": 0.5})
    assert int(own["b"].sum()) == round(10 * 0.25) and int(own["a"].sum()) == round(40 * 0.64)
    assert lottery.density(own) == pytest.approx((26 + 2) / 50)
    with pytest.raises(ValueError, match="layer_prune_fractions\\['b'\\]: got 1.0"):
        lottery.prune_level(scores, ones, 1, 0.2, layer_fractions={"b": 1.0})


# ----------------------------------------------------------------------------------------------
# the one call
# ----------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sanity_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("sanity") / "snip"
    x, y = make_data()
    training = TrainingSpec(epochs=1, batch_size=16, seed=11,
                            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    results = lottery.sanity_checks(build, (x, y), make_data(1, 48), method="snip", sparsity=0.5, run_dir=str(run_dir),
                                    train_dense=False, training=training)
    return results, run_dir


def test_sanity_checks_report_every_variant_side_by_side(sanity_run):
    results, _ = sanity_run
    assert [r.name for r in results] == list(lottery.VARIANTS)
    assert all(r.steps == 6 and r.val_accuracy is not None for r in results)
    table = str(results)
    for variant in lottery.VARIANTS:
        assert variant in table
    assert "snip" in results.title


def test_sanity_masks(sanity_run):
    _, run_dir = sanity_run
    masks = {v: lottery.load_ticket(run_dir / v / "mask.npz").masks for v in lottery.VARIANTS}
    original = masks["unmodified"]
    # shuffle: same count in every layer, different positions
    for name in original:
        assert masks["shuffle"][name].sum() == original[name].sum()
    assert any(not np.array_equal(masks["shuffle"][n], original[n]) for n in original)
    # reinit: the same mask
    assert all(np.array_equal(masks["reinit"][n], original[n]) for n in original)
    # invert at sparsity 0.5 (even number of weights): the complement of SNIP's choice
    total = sum(m.size for m in original.values())
    assert lottery.count_kept(masks["invert"]) == lottery.count_kept(original) == total // 2
    assert all(np.array_equal(masks["invert"][n], 1 - original[n]) for n in original)


def test_reinit_keeps_the_mask_and_changes_the_weights(sanity_run):
    _, run_dir = sanity_run
    theta0 = load_npz(run_dir / "init_weights.npz")
    unmodified = load_npz(run_dir / "unmodified" / "rewind_weights.npz")
    reinit = load_npz(run_dir / "reinit" / "rewind_weights.npz")
    mask = lottery.load_ticket(run_dir / "reinit" / "mask.npz").masks
    for name in mask:
        kernel = reinit[f"{name}::0"]
        assert np.all(kernel[mask[name] == 0] == 0)  # same mask applied
        kept = mask[name] == 1
        assert not np.allclose(kernel[kept], unmodified[f"{name}::0"][kept])  # new values...
        assert np.array_equal(unmodified[f"{name}::0"], np.where(kept, theta0[f"{name}::0"], 0))
        # ...from the same initializer (Glorot uniform: same bound)
        limit = np.sqrt(6.0 / sum(kernel.shape))
        assert np.abs(kernel).max() <= limit


def test_sanity_checks_bad_variants(tmp_path):
    x, y = make_data()
    with pytest.raises(ValueError, match=r"variants: got \['shufle'\]; allowed"):
        lottery.sanity_checks(build, (x, y), method="snip", sparsity=0.5, run_dir=str(tmp_path), variants=["shufle"],
                              training=TrainingSpec(epochs=1, loss="sparse_categorical_crossentropy"))
