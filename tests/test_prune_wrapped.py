"""An already-pruned (wrapped) model passed to the pruning entry points (issue 11, item 7):
pruning continues *within* its masks and never brings a pruned weight back."""
import numpy as np
import pytest

import tfprune
from tfprune._keras import keras


def mlp(seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((12,)),
        keras.layers.Dense(16, activation="relu", name="fc1"),
        keras.layers.Dense(8, activation="relu", name="fc2"),
        keras.layers.Dense(3, name="out"),
    ])


TOTAL = 12 * 16 + 16 * 8 + 8 * 3


def kept(masks, names=None):
    return sum(int(m.sum()) for n, m in masks.items() if names is None or n in names)


@pytest.mark.parametrize("method", ["random", "magnitude", "synflow"])
def test_prune_at_init_on_a_wrapped_model_prunes_within_its_masks(method):
    first = tfprune.prune_at_init(mlp(), "magnitude", 0.5)
    before = tfprune.get_masks(first)
    again = tfprune.prune_at_init(first, method, 0.8, seed=3)
    after = tfprune.get_masks(again)
    kernels = {l.layer.name: l.layer.kernel.numpy() for l in again.layers if tfprune.keras_utils.is_pruning_wrapper(l)}
    for name in before:
        assert not np.any((before[name] == 0) & (after[name] == 1)), f"{name}: a pruned weight came back"
        assert np.all(kernels[name][after[name] == 0] == 0)
    assert kept(after) == round(TOTAL * 0.2)  # sparsity counted over all the weights
    assert abs(tfprune.sparsity_report(again).sparsity - 0.8) < 1e-3


def test_compute_masks_on_a_wrapped_model_uses_its_masks_as_within():
    first = tfprune.prune_at_init(mlp(), "random", 0.5, seed=0)
    masks = tfprune.compute_masks(first, "random", 0.75, seed=1)
    explicit = tfprune.compute_masks(first, "random", 0.75, seed=1, within=tfprune.get_masks(first))
    for name in masks:
        np.testing.assert_array_equal(masks[name], explicit[name])


def test_a_lower_sparsity_than_the_masks_already_have_is_refused():
    first = tfprune.prune_at_init(mlp(), "magnitude", 0.5)
    with pytest.raises(ValueError, match=r"^sparsity: got 0\.3, but model '.*' already prunes 0\.500 of these weights "
                                         r"and pruning within its masks never revives one; allowed: a sparsity >= 0\.500, "
                                         r"or within=\{\} to score every weight again \(replacing the masks\)\.$"):
        tfprune.prune_at_init(first, "magnitude", 0.3)


def test_within_empty_dict_scores_from_scratch():
    first = tfprune.prune_at_init(mlp(), "random", 0.5, seed=0)
    fresh = tfprune.compute_masks(first, "random", 0.3, seed=7, within={})
    reference = tfprune.compute_masks(mlp(), "random", 0.3, seed=7)
    for name in fresh:
        np.testing.assert_array_equal(fresh[name], reference[name])


def test_excluded_layers_keep_their_existing_masks():
    first = tfprune.prune_at_init(mlp(), "magnitude", 0.5)
    before = tfprune.get_masks(first)
    masks = tfprune.compute_masks(first, "magnitude", 0.7, exclude=["out"])
    np.testing.assert_array_equal(masks["out"], before["out"])
    assert kept(masks, {"fc1", "fc2"}) == round((12 * 16 + 16 * 8) * 0.3)


def test_a_fully_dense_wrapped_model_prunes_as_before():
    # the lottery engine scores its all-ones wrapped model: the result is the plain model's
    wrapped = tfprune.apply_masks(mlp(), {})
    for method in ("magnitude", "synflow"):
        a = tfprune.compute_masks(wrapped, method, 0.9)
        b = tfprune.compute_masks(mlp(), method, 0.9)
        for name in a:
            np.testing.assert_array_equal(a[name], b[name])
