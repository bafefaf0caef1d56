"""benchmarks/ticket_densities.py: random masks with the per-layer densities of a saved ticket."""
import importlib

import numpy as np
import pytest

import tfprune
from tfprune import scoring
from tfprune._keras import keras
from tfprune.lottery.ticket import save_ticket


def mlp(hidden=20):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((30,)), keras.layers.Dense(hidden, activation="relu", name="l1"),
                             keras.layers.Dense(10, name="l2")])


@pytest.fixture
def plugin():
    module = importlib.import_module("benchmarks.ticket_densities")
    if "ticket_densities" not in scoring.scorer_names():  # (imported and unregistered by an earlier test)
        scoring.register_scorer("ticket_densities", module.make_ticket_densities, needs_data=False,
                                options=("seed", "include"))
    yield module
    scoring.unregister_scorer("ticket_densities")


def test_the_random_mask_keeps_each_layers_count_of_the_ticket_at_other_positions(plugin, tmp_path, monkeypatch):
    model = mlp()
    rng = np.random.default_rng(0)
    ticket = {"l1": (rng.random((30, 20)) < 0.05).astype(np.float32),   # 5% of 600 weights
              "l2": (rng.random((20, 10)) < 0.5).astype(np.float32)}    # 50% of 200
    path = save_ticket(str(tmp_path / "ticket.npz"), ticket, model)
    monkeypatch.setenv(plugin.ENV, path)
    kept = sum(int(m.sum()) for m in ticket.values())
    masks = tfprune.compute_masks(model, "ticket_densities", 1 - kept / 800, seed=3)
    assert {n: int(m.sum()) for n, m in masks.items()} == {n: int(m.sum()) for n, m in ticket.items()}
    assert int((masks["l2"] * ticket["l2"]).sum()) < int(ticket["l2"].sum())          # not the ticket's positions
    again = tfprune.compute_masks(model, "ticket_densities", 1 - kept / 800, seed=3)
    other = tfprune.compute_masks(model, "ticket_densities", 1 - kept / 800, seed=4)
    assert all(np.array_equal(masks[n], again[n]) for n in masks)
    assert not np.array_equal(masks["l1"], other["l1"])


def test_a_missing_variable_or_another_architecture_is_a_one_line_error(plugin, tmp_path, monkeypatch):
    monkeypatch.delenv(plugin.ENV, raising=False)
    with pytest.raises(ValueError, match="TFPRUNE_DENSITIES_OF: not set"):
        tfprune.compute_masks(mlp(), "ticket_densities", 0.9)
    path = save_ticket(str(tmp_path / "t.npz"), {"l1": np.ones((30, 8), np.float32),
                                                 "l2": np.ones((8, 10), np.float32)}, mlp(hidden=8))
    monkeypatch.setenv(plugin.ENV, path)
    with pytest.raises(ValueError, match=r"has the kernels .*'l1': \(30, 8\).*the model .*'l1': \(30, 20\)"):
        tfprune.compute_masks(mlp(), "ticket_densities", 0.9)
