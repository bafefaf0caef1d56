"""Element allocation's threshold search (a strided sample bounds it, then a partition of the few
keys above the bound): exact against a stable sort, also where the sample misleads it."""
import numpy as np
import pytest

from tfprune.allocation import allocate
from tfprune.allocation._top import SAMPLE, top


def by_sort(keys, budget, lowest=False):
    """The reference: the ``budget`` highest (lowest) keys, ties by position, from a stable sort."""
    flat = np.concatenate(keys)
    chosen = np.zeros(len(flat), bool)
    chosen[np.argsort(flat if lowest else -flat, kind="stable")[:max(budget, 0)]] = True
    return np.split(chosen, np.cumsum([len(k) for k in keys])[:-1])


def check(keys, budget, lowest=False):
    for dtype in (bool, np.float32):
        for got, want in zip(top(keys, budget, lowest, dtype), by_sort(keys, budget, lowest)):
            assert got.dtype == dtype
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("lowest", [False, True])
@pytest.mark.parametrize("budget", [0, 1, 7, 4_000, 100_000, 399_999, 400_000])
def test_sampled_threshold_equals_a_stable_sort_with_ties(budget, lowest):
    rng = np.random.default_rng(0)
    keys = [rng.integers(0, 50, 250_000).astype(np.float32), rng.normal(size=150_000).astype(np.float32)]
    assert sum(map(len, keys)) > 4 * SAMPLE  # the sampled path
    check(keys, budget, lowest)


def test_a_sample_that_overestimates_the_threshold_falls_back_to_every_key():
    """High keys exactly on the sample's stride: its bound is too high to find ``budget`` keys."""
    total = 400_000
    stride = total // SAMPLE
    keys = np.random.default_rng(1).random(total).astype(np.float32)
    keys[::stride] = 10.0
    budget = 100_000  # more than the ~66,700 keys at 10.0
    assert np.count_nonzero(keys == 10.0) < budget
    check([keys[:123_457], keys[123_457:]], budget)
    check([-keys[:123_457], -keys[123_457:]], budget, lowest=True)


def test_float32_scores_rank_as_their_float64_values():
    rng = np.random.default_rng(2)
    s32 = {"a": rng.normal(size=(600, 500)).astype(np.float32), "b": rng.integers(-3, 3, (50, 40)).astype(np.float32)}
    s64 = {n: v.astype(np.float64) for n, v in s32.items()}
    for keep in ("highest", "lowest"):
        for scope in ("global", "layerwise"):
            a = allocate(s32, 0.97, keep=keep, scope=scope)
            b = allocate(s64, 0.97, keep=keep, scope=scope)
            for n in a:
                np.testing.assert_array_equal(a[n], b[n])
