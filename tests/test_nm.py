"""N:M sparsity in the core allocation: groups of M along the input-channel axis, exactly N
kept per full group, ceil(N·r/M) in a trailing partial group of r, and the N:M report."""
import numpy as np
import pytest
import tf_keras as keras

import tfprune
from tfprune.allocation import allocate, n_m_report, partial_group_keep

L = keras.layers


def _groups(mask, m):
    """(full groups, partial group) kept counts; the input axis is -2 (1-D: axis 0)."""
    axis = 0 if mask.ndim == 1 else mask.ndim - 2
    rows = np.moveaxis(mask, axis, -1).reshape(-1, mask.shape[axis])
    full = (rows.shape[1] // m) * m
    return rows[:, :full].reshape(len(rows), -1, m).sum(-1), rows[:, full:].sum(-1)


@pytest.mark.parametrize("shape", [(3, 3, 1, 5), (3, 3, 2, 5), (3, 3, 3, 5), (3, 3, 6, 5), (3, 3, 8, 5),
                                   (1, 4), (2, 4), (3, 4), (6, 4), (16, 3), (6,)])
def test_exactly_n_per_full_group_and_ceil_rule_for_the_partial_group(shape):
    scores = {"w": np.random.default_rng(0).random(shape)}
    mask = allocate(scores, None, n_m=(2, 4))["w"]
    full, partial = _groups(mask, 4)
    assert np.all(full == 2)
    c_in = shape[0] if len(shape) == 1 else shape[-2]
    r = c_in % 4
    assert np.all(partial == partial_group_keep(2, 4, r)) if r else partial.size == 0 or np.all(partial == 0)
    report = n_m_report({"w": mask}, (2, 4))
    assert report.valid                          # never more than N in any (zero-padded) group
    assert report.exact == (r == 0)              # the report says where a group cannot keep exactly N
    if r:
        assert any(f"C_in={c_in}" in note for note in report.notes)


@pytest.mark.parametrize("c_in, sparsity", [(1, 0.0), (2, 0.5), (3, 1 / 3), (6, 0.5), (8, 0.5)])
def test_sparsity_for_small_input_channel_counts(c_in, sparsity):
    """TF-MOT pads with zeros that count as pruned (C_in = 1, 2 -> 0%, 3 -> 33%, issue #1182);
    here C_in = 2 reaches 50% and only C_in = 1 (a single input) stays dense."""
    mask = allocate({"conv": np.random.default_rng(1).random((3, 3, c_in, 4))}, None, n_m=(2, 4))["conv"]
    assert 1 - mask.mean() == pytest.approx(sparsity)
    assert mask.reshape(-1, c_in, 4).sum(axis=1).min() >= 1   # no output loses every input of a tap


def test_partial_group_rule_table():
    assert [partial_group_keep(2, 4, r) for r in range(1, 4)] == [1, 1, 2]
    assert [partial_group_keep(1, 4, r) for r in range(1, 4)] == [1, 1, 1]
    assert [partial_group_keep(4, 8, r) for r in range(1, 8)] == [1, 1, 2, 2, 3, 3, 4]
    for n, m in [(1, 2), (2, 4), (3, 4), (4, 8), (1, 16)]:
        for r in range(1, m):
            k = partial_group_keep(n, m, r)
            assert 1 <= k <= min(n, r) and k / r >= n / m


def test_keeps_the_best_n_along_the_input_axis_and_respects_keep_lowest():
    # Dense kernel [in=4, out=2]: per output column, the two largest inputs survive.
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.7, 0.3], [0.2, 0.8]])
    mask = allocate({"fc": scores}, None, n_m=(2, 4))["fc"]
    assert mask[:, 0].tolist() == [0, 1, 1, 0] and mask[:, 1].tolist() == [1, 0, 0, 1]
    low = allocate({"fc": scores}, None, n_m=(2, 4), keep="lowest")["fc"]
    np.testing.assert_array_equal(low, 1 - mask)
    ties = allocate({"fc": np.ones((4, 1))}, None, n_m=(2, 4))["fc"]
    assert ties[:, 0].tolist() == [1, 1, 0, 0]   # ties: lower input index first


def test_conv_groups_run_along_c_in_for_every_tap_and_output():
    rng = np.random.default_rng(2)
    scores = rng.random((3, 3, 8, 4))
    mask = allocate({"conv": scores}, None, n_m=(2, 4))["conv"]
    for i, j, o in [(0, 0, 0), (1, 2, 3), (2, 1, 1)]:
        for g in range(2):
            block = scores[i, j, 4 * g:4 * g + 4, o]
            kept = np.flatnonzero(mask[i, j, 4 * g:4 * g + 4, o])
            assert set(kept) == set(np.argsort(-block)[:2])


def test_exclude_within_and_argument_checks():
    rng = np.random.default_rng(3)
    s = {"a": rng.random((8, 3)), "b": rng.random((8, 3))}
    masks = allocate(s, 0.5, n_m=(2, 4), exclude=["b"])
    assert masks["b"].all() and masks["a"].mean() == 0.5
    within = {"a": np.ones((8, 3)), "b": np.ones((8, 3))}
    within["a"][:3, 0] = 0                       # only one weight alive in the first group of output 0
    masks = allocate(s, None, n_m=(2, 4), within=within)
    assert masks["a"][:4, 0].sum() == 1 and masks["a"][:3, 0].sum() == 0
    report = n_m_report(masks, (2, 4))
    assert not report.exact and report.valid and any("do not keep exactly 2" in n for n in report.notes)
    with pytest.raises(ValueError, match="1 - N/M"):
        allocate(s, 0.9, n_m=(2, 4))
    with pytest.raises(ValueError, match="n_m"):
        allocate(s, None, n_m=(5, 4))
    with pytest.raises(ValueError, match="block"):
        allocate(s, None, n_m=(2, 4), block=(4, 1))
    with pytest.raises(ValueError, match="sparsity"):
        allocate(s, None)


def test_report_flags_invalid_masks():
    mask = np.ones((8, 2))
    report = n_m_report({"dense": mask}, (2, 4))
    assert not report.valid and "NOT a valid 2:4" in str(report)
    assert report.to_dict()["layers"][0]["over_n"] == 4


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6, 6, 3)), L.Conv2D(8, 3, name="c1"), L.ReLU(),
                             L.Conv2D(6, 3, name="c2"), L.Flatten(), L.Dense(10, name="d1"), L.Dense(3, name="out")])


@pytest.mark.parametrize("method", ["magnitude", "random", "snip", "synflow"])
def test_compute_masks_n_m_for_core_scorers(method):
    model = _model()
    rng = np.random.default_rng(0)
    data = (rng.normal(size=(6, 6, 6, 3)).astype("float32"), np.arange(6) % 3)
    kwargs = {"data": data, "loss": "sparse_categorical_crossentropy"} if method == "snip" else {}
    masks = tfprune.compute_masks(model, method, n_m=(2, 4), **kwargs)
    report = n_m_report(masks, (2, 4))
    assert report.valid
    # c1: C_in = 3 (one partial group of 3 keeping 2); out: C_in = 10 (a partial group of 2 keeping 1)
    assert [layer.name for layer in report.layers if not layer.exact] == ["c1", "out"]
    assert next(layer for layer in report.layers if layer.name == "c1").partial_kept == (2,)
    assert next(layer for layer in report.layers if layer.name == "out").partial_kept == (1,)
    for name in ("c2", "d1"):
        assert masks[name].mean() == 0.5
    if method == "magnitude":
        np.testing.assert_array_equal(masks["d1"], allocate({"d1": np.abs(model.get_layer("d1").kernel.numpy())},
                                                            None, n_m=(2, 4))["d1"])
    pruned = tfprune.apply_masks(model, masks)
    np.testing.assert_array_equal(tfprune.get_masks(pruned)["c2"], masks["c2"])


def test_compute_masks_n_m_iterative_rounds_end_at_n():
    masks = tfprune.compute_masks(_model(), "synflow", n_m=(2, 4), rounds=4)
    assert n_m_report(masks, (2, 4)).valid
    assert masks["c2"].mean() == 0.5
    with pytest.raises(ValueError, match="1 - N/M"):
        tfprune.compute_masks(_model(), "magnitude", 0.9, n_m=(2, 4))
    with pytest.raises(ValueError, match="sparsity"):
        tfprune.compute_masks(_model(), "magnitude")
