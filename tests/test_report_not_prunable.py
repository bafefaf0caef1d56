"""Weight matrices tfprune leaves dense (LSTM/GRU/SimpleRNN kernels, Embedding tables,
depthwise kernels): warned about when pruning and listed by the report, with the reason, which
never overstates sparsity (issue 11, item 2). MultiHeadAttention's kernels are pruned now
(tests/test_transformer_tfkeras.py): an attention model warns about nothing."""
import json
import warnings

import numpy as np
import pytest

import tfprune
from tfprune._keras import keras


def lstm_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((10,), dtype="int32"), keras.layers.Embedding(50, 8, name="emb"),
                             keras.layers.LSTM(16, name="lstm"), keras.layers.Dense(4, name="out")])


def attention_model():
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 8))
    a = keras.layers.MultiHeadAttention(2, 4, name="mha")(i, i)
    h = keras.layers.GlobalAveragePooling1D(name="pool")(a)
    return keras.Model(i, keras.layers.Dense(3, name="out")(h))


def rnn_model():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((5, 3)), keras.layers.GRU(8, return_sequences=True, name="gru"),
                             keras.layers.SimpleRNN(6, name="rnn"), keras.layers.Dense(8, name="fc"),
                             keras.layers.Dense(2, name="out")])


DENSE = {  # layer: weights in its matrices (kernels, recurrent kernels, embedding tables)
    "lstm_model": {"emb": 50 * 8, "lstm": 8 * 64 + 16 * 64},
    "rnn_model": {"gru": 3 * 24 + 8 * 24, "rnn": 8 * 6 + 6 * 6},
}
PRUNABLE = {"lstm_model": 16 * 4, "rnn_model": 6 * 8 + 8 * 2}
REASONS = {"emb": "embedding table", "lstm": "recurrent", "gru": "recurrent", "rnn": "recurrent"}


@pytest.mark.parametrize("build", [lstm_model, rnn_model])
def test_prune_at_init_warns_naming_the_layers_left_dense(build):
    with pytest.warns(tfprune.NotPrunedWarning) as caught:
        tfprune.prune_at_init(build(), "magnitude", 0.9)
    names = DENSE[build.__name__]
    message = str(caught[0].message)
    assert all(repr(name) in message for name in names), message
    assert "overall_sparsity" in message
    assert caught[0].filename == __file__  # points at the caller's line


def test_compute_masks_warns_too_and_a_plain_mlp_does_not():
    with pytest.warns(tfprune.NotPrunedWarning, match="'lstm'"):
        tfprune.compute_masks(lstm_model(), "random", 0.5, seed=0)
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"), keras.layers.Dense(2, name="b")])
    with warnings.catch_warnings():
        warnings.simplefilter("error", tfprune.NotPrunedWarning)
        tfprune.prune_at_init(mlp, "random", 0.5, seed=0)


def test_an_attention_model_is_pruned_whole_and_warns_about_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error", tfprune.NotPrunedWarning)
        pruned = tfprune.prune_at_init(attention_model(), "random", 0.5, seed=0)
    report = tfprune.sparsity_report(pruned)
    assert report.not_prunable == () and report.overall_sparsity == report.sparsity
    assert report.params == 3 * 8 * 2 * 4 + 2 * 4 * 8 + 8 * 3


@pytest.mark.parametrize("build", [lstm_model, rnn_model])
def test_report_lists_the_dense_matrices_and_never_overstates_sparsity(build):
    with pytest.warns(tfprune.NotPrunedWarning):
        pruned = tfprune.prune_at_init(build(), "magnitude", 0.9)
    report = tfprune.sparsity_report(pruned)
    dense = DENSE[build.__name__]
    prunable = PRUNABLE[build.__name__]
    # what the user asked for: the fraction of the prunable weights removed
    assert report.params == prunable and abs(report.sparsity - 0.9) < 0.02
    # and the truth over every weight matrix of the model
    assert {r.name: r.params for r in report.not_prunable} == dense
    assert all(r.kept == r.params and r.density == 1.0 and not r.collapsed for r in report.not_prunable)
    assert all(REASONS[r.name] in r.why_not_pruned for r in report.not_prunable)
    total = prunable + sum(dense.values())
    assert report.overall_params == total
    assert report.overall_kept == report.kept + sum(dense.values())
    assert report.overall_sparsity == pytest.approx(1 - report.overall_kept / total)
    assert report.overall_sparsity < report.sparsity
    text = str(report)
    assert "not prunable" in text
    assert f"sparsity {report.sparsity:.4f}" in text and f"sparsity {report.overall_sparsity:.4f}" in text
    assert "all weight matrices" in text
    d = report.to_dict()
    json.dumps(d)
    assert d["overall_sparsity"] == report.overall_sparsity
    assert [r["name"] for r in d["not_prunable"]] == list(dense)


def test_report_of_a_plain_model_with_an_embedding_counts_it():
    model = lstm_model()
    report = tfprune.sparsity_report(model)
    assert report.sparsity == 0.0 and report.overall_sparsity == 0.0
    assert [r.name for r in report.not_prunable] == ["emb", "lstm"]


def test_report_without_dense_matrices_is_unchanged():
    keras.utils.set_random_seed(0)
    mlp = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="a"), keras.layers.Dense(2, name="b")])
    report = tfprune.sparsity_report(tfprune.prune_at_init(mlp, "random", 0.5, seed=0))
    assert report.not_prunable == () and report.overall_sparsity == report.sparsity
    assert "all weight matrices" not in str(report) and "not prunable" not in str(report)


def test_depthwise_kernels_are_listed_as_not_prunable():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.DepthwiseConv2D(3, name="dw"),
                              keras.layers.Conv2D(4, 1, name="pw"), keras.layers.Flatten(),
                              keras.layers.Dense(2, name="out")])
    with pytest.warns(tfprune.NotPrunedWarning, match="'dw'"):
        pruned = tfprune.prune_at_init(model, "magnitude", 0.5)
    report = tfprune.sparsity_report(pruned)
    assert [(r.name, r.params) for r in report.not_prunable] == [("dw", 3 * 3 * 3)]
    assert "depthwise" in report.not_prunable[0].why_not_pruned and "not prunable: depthwise" in str(report)
    assert np.isclose(report.overall_params, report.params + 27)
