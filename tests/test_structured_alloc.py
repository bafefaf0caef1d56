"""Channel scores (L1/L2 norms, pooled core scores) and channel-level allocation."""
import numpy as np
import pytest
import tf_keras as keras

from tfprune.allocation import allocate, allocate_channels
from tfprune.structured import channel_norms, channel_scores, channel_sizes, pool_channel_scores

L = keras.layers


def _model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5, 5, 2)), L.Conv2D(4, 3, name="c"), L.Flatten(), L.Dense(3, name="d")])


def test_channel_norms_closed_form():
    model = _model()
    kernel = model.get_layer("c").kernel.numpy().astype(np.float64)
    np.testing.assert_allclose(channel_norms(model, 1)["c"], np.abs(kernel).sum(axis=(0, 1, 2)))
    np.testing.assert_allclose(channel_norms(model, 2)["c"], np.sqrt((kernel ** 2).sum(axis=(0, 1, 2))))
    dense = model.get_layer("d").kernel.numpy().astype(np.float64)
    np.testing.assert_allclose(channel_scores(model, "l1")["d"], np.abs(dense).sum(axis=0))
    assert channel_sizes(model) == {"c": 18, "d": 36}
    with pytest.raises(ValueError, match="ord"):
        channel_norms(model, 3)


def test_pool_sums_over_every_axis_but_the_output():
    scores = {"c": np.arange(24.).reshape(2, 3, 4), "d": np.arange(6.).reshape(3, 2)}
    pooled = pool_channel_scores(scores)
    np.testing.assert_array_equal(pooled["c"], scores["c"].sum(axis=(0, 1)))
    np.testing.assert_array_equal(pooled["d"], [6., 9.])


def test_layerwise_keeps_round_c_density_with_a_floor():
    keep = allocate_channels({"a": np.array([3., 1., 2., 0.]), "b": np.array([5., 4.])}, 0.75)
    assert keep["a"].tolist() == [1, 0, 0, 0] and keep["b"].tolist() == [1, 0]   # round(0.5) = 0 -> floor of 1
    keep = allocate_channels({"a": np.array([3., 1., 2., 0.])}, 0.5, keep="lowest")
    assert keep["a"].tolist() == [0, 1, 0, 1]


def test_global_ranks_mean_scores_and_counts_channels():
    scores = {"narrow": np.array([9., 8., 7., 6.]), "wide": np.array([100., 90., 20., 10.])}
    sizes = {"narrow": 9, "wide": 100}        # per-weight importance: narrow 1.0..0.67, wide 1.0..0.1
    keep = allocate_channels(scores, 0.5, scope="global", sizes=sizes)
    assert sum(int(k.sum()) for k in keep.values()) == 4
    assert keep["narrow"].tolist() == [1, 1, 0, 0] and keep["wide"].tolist() == [1, 1, 0, 0]
    # Ranking raw sums would empty the narrow layer but for the floor of one channel.
    raw = allocate_channels(scores, 0.5, scope="global")
    assert raw["narrow"].tolist() == [1, 0, 0, 0] and raw["wide"].sum() == 3


def test_per_group_ratios_and_errors():
    scores = {"a": np.array([3., 1., 2., 0.]), "b": np.array([5., 4.])}
    keep = allocate_channels(scores, {"a": 0.5})
    assert keep["a"].sum() == 2 and keep["b"].sum() == 2
    with pytest.raises(ValueError, match="layerwise"):
        allocate_channels(scores, {"a": 0.5}, scope="global")
    with pytest.raises(ValueError, match="unknown group"):
        allocate_channels(scores, {"z": 0.5})
    with pytest.raises(ValueError, match="1-D"):
        allocate_channels({"a": np.ones((2, 2))}, 0.5)


def test_min_kept_in_the_core_allocate():
    scores = {"a": np.array([3., 2., 1.]), "b": np.array([0.1, 0.2])}
    masks = allocate(scores, 0.8, min_kept=1)   # round(5 * 0.2) = 1 weight, but each layer keeps its best one
    assert masks["a"].tolist() == [1, 0, 0] and masks["b"].tolist() == [0, 1]
    masks = allocate(scores, 0.4, min_kept=1)   # 3 kept: the two floors, then the best remaining score
    assert masks["a"].tolist() == [1, 1, 0] and masks["b"].tolist() == [0, 1]
    masks = allocate(scores, 0.8, scope="layerwise", min_kept=1)
    assert masks["a"].tolist() == [1, 0, 0] and masks["b"].tolist() == [0, 1]
    with pytest.raises(ValueError, match="min_kept"):
        allocate(scores, 0.5, min_kept=-1)
