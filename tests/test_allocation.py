"""Allocation: scores + sparsity + scope → masks (pure numpy)."""
import math

import numpy as np
import pytest

from tfprune.allocation import allocate


def scores(seed=0, shapes=None):
    rng = np.random.default_rng(seed)
    shapes = shapes or {"a": (30, 20), "b": (20, 10), "c": (3, 3, 2, 4)}
    return {name: rng.random(shape) for name, shape in shapes.items()}


@pytest.mark.parametrize("sparsity", [0.0, 0.1, 0.5, 0.9, 0.98, 0.999])
def test_global_keeps_exactly_round_n_density(sparsity):
    s = scores()
    masks = allocate(s, sparsity)
    total = sum(v.size for v in s.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(total * (1 - sparsity))
    for name in s:
        assert masks[name].shape == s[name].shape and masks[name].dtype == np.float32
        assert set(np.unique(masks[name])) <= {0.0, 1.0}


def test_global_keeps_the_highest_scores_across_layers():
    s = scores()
    masks = allocate(s, 0.7)
    kept = np.concatenate([s[n][masks[n] == 1] for n in s])
    pruned = np.concatenate([s[n][masks[n] == 0] for n in s])
    assert kept.min() >= pruned.max()


def test_keep_lowest():
    s = scores()
    masks = allocate(s, 0.7, keep="lowest")
    kept = np.concatenate([s[n][masks[n] == 1] for n in s])
    pruned = np.concatenate([s[n][masks[n] == 0] for n in s])
    assert kept.max() <= pruned.min()


def test_layerwise_keeps_round_density_in_each_layer():
    s = scores()
    masks = allocate(s, 0.75, scope="layerwise")
    for name in s:
        assert int(masks[name].sum()) == round(s[name].size * 0.25)
        kept, pruned = s[name][masks[name] == 1], s[name][masks[name] == 0]
        assert kept.min() >= pruned.max()


def test_global_and_layerwise_differ_when_layers_have_different_scales():
    s = scores()
    s["a"] = s["a"] + 10  # every score of layer a beats every other layer's
    g, l = allocate(s, 0.5), allocate(s, 0.5, scope="layerwise")
    assert g["a"].sum() == round(872 * 0.5) and g["b"].sum() == 0 and g["c"].sum() == 0
    assert l["b"].mean() == 0.5 and l["c"].mean() == 0.5


def test_ties_are_broken_by_position_deterministically():
    s = {"a": np.ones((2, 3)), "b": np.ones(4)}
    masks = allocate(s, 0.5)  # keep 5 of 10: the first 5 by (layer order, flat index)
    assert masks["a"].reshape(-1).tolist() == [1, 1, 1, 1, 1, 0]
    assert masks["b"].tolist() == [0, 0, 0, 0]
    again = allocate({"a": np.ones((2, 3)), "b": np.ones(4)}, 0.5)
    assert all(np.array_equal(masks[n], again[n]) for n in masks)


def test_exclude_keeps_layer_dense_and_out_of_the_count():
    s = scores()
    masks = allocate(s, 0.9, exclude=["c"])
    assert masks["c"].all()
    n = s["a"].size + s["b"].size
    assert int(masks["a"].sum() + masks["b"].sum()) == round(n * 0.1)


def test_min_density_floor_per_layer():
    s = scores()
    s["b"] = s["b"] * 1e-6  # would collapse under global ranking
    assert allocate(s, 0.9)["b"].sum() == 0
    masks = allocate(s, 0.9, min_density=0.05)
    assert masks["b"].sum() >= math.ceil(0.05 * s["b"].size)
    total = sum(v.size for v in s.values())
    assert sum(int(m.sum()) for m in masks.values()) == round(total * 0.1)
    with pytest.raises(ValueError, match="min_density"):
        allocate(s, 0.99, min_density=0.5)


@pytest.mark.parametrize("block", [(4, 1), (16, 1)])
def test_block_masks_are_block_structured_on_dense_kernels(block):
    s = scores(shapes={"fc": (64, 12), "fc2": (34, 5), "conv": (3, 3, 2, 4)})
    masks = allocate(s, 0.8, block=block)
    bh, _ = block
    for name in ("fc", "fc2"):
        m = masks[name]
        rows = m.shape[0]
        for start in range(0, rows, bh):
            chunk = m[start:start + bh]
            assert np.all(chunk == chunk[0:1]), f"{name} rows {start}: not a whole block"
    assert set(np.unique(masks["conv"])) <= {0.0, 1.0}
    total = sum(v.size for v in s.values())
    assert abs(sum(int(m.sum()) for m in masks.values()) - round(total * 0.2)) < bh


def test_within_restricts_to_survivors_and_density_is_absolute():
    s = scores()
    first = allocate(s, 0.5)
    rng = np.random.default_rng(9)
    second = allocate({n: rng.random(v.shape) for n, v in s.items()}, 0.8, within=first)
    total = sum(v.size for v in s.values())
    assert sum(int(m.sum()) for m in second.values()) == round(total * 0.2)
    for name in s:
        assert np.all(second[name] <= first[name])


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, float("nan")])
def test_sparsity_out_of_range_is_rejected(bad):
    with pytest.raises(ValueError, match=r"sparsity: got .*allowed"):
        allocate(scores(), bad)


def test_bad_arguments_name_the_argument():
    with pytest.raises(TypeError, match="sparsity"):
        allocate(scores(), "lots")
    with pytest.raises(ValueError, match="scope: got 'blockwise'; allowed: global, layerwise"):
        allocate(scores(), 0.5, scope="blockwise")
    with pytest.raises(ValueError, match=r"exclude: unknown layer name\(s\) \['zz'\]"):
        allocate(scores(), 0.5, exclude=["zz"])
    with pytest.raises(ValueError, match="block"):
        allocate(scores(), 0.5, block=(0, 1))
    bad = scores()
    bad["b"][0, 0] = np.nan
    with pytest.raises(FloatingPointError, match="layer 'b' has 1 NaN/inf"):
        allocate(bad, 0.5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(min_density="abc"), r"^min_density: expected a number in \[0, 1\], got 'abc'\.$"),
    (dict(exclude=5), r"^exclude: got 5; allowed: a layer name or a list of layer names\.$"),
])
def test_bad_argument_types_are_one_line_errors(kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        allocate({"a": np.array([3., 1.])}, 0.5, **kwargs)


def _reference_masks(scores, sparsity, scope, within):
    """Allocation spelled out: per ranking group, a stable sort of the oriented keys (dead weights
    last), the first round(n · density) kept, dead ones never."""
    density = 1.0 - sparsity
    groups = [[n] for n in scores] if scope == "layerwise" else [list(scores)]
    masks = {}
    for names in groups:
        keys = np.concatenate([np.where(within[n] != 0, scores[n], -np.inf).ravel() if within else scores[n].ravel()
                               for n in names])
        n_all = keys.size
        order = np.argsort(-keys, kind="stable")
        keep = np.zeros(n_all, bool)
        keep[order[:int(round(n_all * density))]] = True
        keep &= keys > -np.inf
        offset = 0
        for n in names:
            masks[n] = keep[offset:offset + scores[n].size].reshape(scores[n].shape).astype(np.float32)
            offset += scores[n].size
    return masks


@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("with_within", [False, True])
def test_element_allocation_equals_a_stable_sort_with_ties_and_survivors(scope, with_within):
    """The element path works on the surviving weights only; it must choose exactly what a plain
    stable sort over every weight chooses, ties (many: integer scores) by position included."""
    rng = np.random.default_rng(3)
    shapes = {"a": (40, 30), "b": (30, 20), "c": (20, 5)}
    for trial in range(20):
        scores = {n: rng.integers(0, 7, s).astype(np.float64) for n, s in shapes.items()}
        within = {n: (rng.random(s) < 0.6).astype(np.float32) for n, s in shapes.items()} if with_within else None
        sparsity = float(rng.uniform(0.45, 0.95)) if with_within else float(rng.uniform(0.0, 0.95))
        got = allocate(scores, sparsity, scope=scope, within=within)
        want = _reference_masks(scores, sparsity, scope, within)
        for n in shapes:
            np.testing.assert_array_equal(got[n], want[n], err_msg=f"trial {trial}, layer {n}")
            assert got[n].dtype == np.float32


# ---------------------------------------------------------------- Survivors (iterative pruning over alive weights)

@pytest.mark.parametrize("scope", ["global", "layerwise"])
@pytest.mark.parametrize("with_within", [False, True])
@pytest.mark.parametrize("sample", [None, 3])
@pytest.mark.parametrize("threads", [1, 3])
def test_survivors_choose_what_allocate_chooses_round_after_round(scope, with_within, sample, threads, monkeypatch):
    """Round after round (densities d^(r/R), integer keys: ties everywhere), the survivor state
    keeps exactly allocate(within=previous masks)'s choice. ``sample=3``: a tiny sample, so that
    the threshold bound often misses and the full-candidate path runs too. ``threads=3``: the
    layers are compacted on threads (as above 1M alive weights), and the keys are given as one
    flat array (as SynFlow gives them) instead of per layer."""
    from tfprune.allocation import survivors as module

    if sample:
        monkeypatch.setattr(module, "_SAMPLE", sample)
    monkeypatch.setattr(module, "THREADS", threads)
    monkeypatch.setattr(module, "_PARALLEL", 0)
    rng = np.random.default_rng(11)
    shapes = {"a": (40, 30), "b": (30, 20), "c": (3, 3, 2, 5)}
    within = {n: (rng.random(s) < 0.7).astype(np.float32) for n, s in shapes.items()} if with_within else None
    state = module.Survivors(shapes, within)
    masks, rounds, density = within, 6, 0.05
    for r in range(1, rounds + 1):
        keys = {n: rng.integers(0, 5, s).astype(np.float64) for n, s in shapes.items()}
        masks = allocate(keys, 1 - density ** (r / rounds), scope=scope, within=masks)
        alive_keys = {n: state.gather(n, keys[n]) for n in shapes}
        if threads > 1:
            alive_keys = state.each_layer(lambda name, index, out, scratch: np.take(keys[name].reshape(-1), index, out=out))
        state.keep(alive_keys, 1 - density ** (r / rounds), scope=scope)
        got = state.masks()
        for n in shapes:
            np.testing.assert_array_equal(got[n], masks[n], err_msg=f"round {r}, layer {n}")
    assert sum(int(m.sum()) for m in got.values()) == sum(int(m.sum()) for m in masks.values()) > 0


def test_survivors_report_what_each_round_dropped():
    from tfprune.allocation.survivors import Survivors

    state = Survivors({"a": (2, 3)}, {"a": np.array([[1, 1, 1], [1, 1, 1]])})
    assert state.dropped["a"].tolist() == []
    state = Survivors({"a": (2, 3)}, {"a": np.array([[1, 0, 1], [1, 1, 1]])})
    assert state.dropped["a"].tolist() == [1] and state.index["a"].tolist() == [0, 2, 3, 4, 5]  # within's pruned weights
    state = Survivors({"a": (2, 3)})
    state.keep({"a": np.array([6., 5., 4., 3., 2., 1.])}, sparsity=0.5)
    assert state.dropped["a"].tolist() == [3, 4, 5] and state.index["a"].tolist() == [0, 1, 2]
    state.keep({"a": np.array([1., 9., 9.])}, sparsity=5 / 6)  # ties at 9: the first by position stays
    assert state.dropped["a"].tolist() == [0, 2] and state.masks()["a"].reshape(-1).tolist() == [0, 1, 0, 0, 0, 0]
