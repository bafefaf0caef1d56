"""tfprune.wann: weight-agnostic network search (Gaier & Ha 2019)."""
import math
import os

import numpy as np
import pytest

from tfprune import wann
from tfprune.wann import activations, evaluate, genome, mutation, ranking
from wann_genomes import W, grown


def test_activations_match_the_reference_definitions():
    import tensorflow as tf

    x = np.array([-1.0, -0.25, 0.0, 0.5, 2.0], np.float32)
    expected = {"linear": x, "step": [0, 0, 0, 1, 1], "sin": np.sin(math.pi * x), "cos": np.cos(math.pi * x),
                "gaussian": np.exp(-x * x / 2), "tanh": np.tanh(x), "sigmoid": 1 / (1 + np.exp(-x)),
                "inverse": -x, "abs": np.abs(x), "relu": np.maximum(x, 0)}
    for name in activations.ACTIVATIONS:
        np.testing.assert_allclose(activations.numpy_fn(name)(x), expected[name], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.asarray(activations.tf_fn(name)(tf.constant(x))), expected[name], rtol=1e-6,
                                   atol=1e-6)
    with pytest.raises(ValueError, match="activation: got 'swish'"):
        activations.index("swish")


def test_forward_on_a_hand_made_network():
    # inputs x0, x1; bias b; hidden h = gaussian(w * (x0 + b)); output o0 = w * (h + x1), o1 = w * b
    g = genome.minimal(2, 2, max_hidden=1, rng=np.random.default_rng(0), density=1.0)
    g.conn[:] = False
    h, o0, o1 = 3, 4, 5
    g.conn[0, h] = g.conn[2, h] = g.conn[h, o0] = g.conn[1, o0] = g.conn[2, o1] = True
    g.act[h], g.n_hidden = activations.index("gaussian"), 1
    x = np.array([[0.5, 2.0], [-1.0, 0.0]], np.float32)
    logits = evaluate.forward(genome.stack([g]), x, W, 2, 2)[0]         # [K, N, 2]
    for k, w in enumerate(W):
        hidden = np.exp(-(w * (x[:, 0] + 1)) ** 2 / 2)
        np.testing.assert_allclose(logits[k, :, 0], w * (hidden + x[:, 1]), rtol=1e-6)
        np.testing.assert_allclose(logits[k, :, 1], w, rtol=1e-6)
    s = evaluate.scores(logits[None], np.array([0, 1]))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(s["log_likelihood"][0], (log_p[:, 0, 0] + log_p[:, 1, 1]) / 2, rtol=1e-5)


def test_batched_evaluation_equals_a_keras_forward_pass_per_candidate():
    population = [grown(seed=s) for s in range(4)]
    assert max(g.n_hidden for g in population) >= 3 and max(len(g.depths()) and g.depths().max() for g in population) >= 2
    x = np.random.default_rng(1).random((16, 5), np.float32)
    logits = evaluate.forward(genome.stack(population), x, W, 5, 3)
    for p, g in enumerate(population):
        for k, w in enumerate(W):
            model = wann.build_model(g, shared_weight=w)
            np.testing.assert_allclose(logits[p, k], model(x).numpy(), rtol=2e-5, atol=2e-5)


def test_mutations_keep_the_network_acyclic_and_do_what_they_say():
    rng = np.random.default_rng(0)
    g = genome.minimal(4, 2, max_hidden=10, rng=rng, density=0.5)
    choices = np.arange(len(activations.ACTIVATIONS))
    seen = set()
    for _ in range(300):
        before = g
        g, name = mutation.mutate(g, rng, choices)
        seen.add(name)
        assert genome.is_acyclic(g.conn)
        assert not g.conn[:, :g.first_hidden].any() and not g.conn[g.first_output:].any()
        assert not g.conn[g.first_hidden + g.n_hidden:g.first_output].any()
        grew = g.n_connections - before.n_connections
        assert grew == {"add_connection": 1, "insert_node": 1, "change_activation": 0, None: 0}[name]
        if name == "change_activation":
            assert (g.act != before.act).sum() == 1
    assert seen >= {"add_connection", "insert_node", "change_activation"}
    assert g.n_hidden == g.max_hidden                    # inserting stops when the slots are full


def test_add_connection_never_closes_a_cycle():
    g = genome.minimal(1, 1, max_hidden=3, rng=np.random.default_rng(0), density=1.0)
    h1, h2, h3 = g.first_hidden, g.first_hidden + 1, g.first_hidden + 2
    g.n_hidden = 3
    g.conn[h1, h2] = g.conn[h2, h3] = True                               # h1 -> h2 -> h3
    allowed = mutation.allowed_connections(g)
    assert not allowed[h3, h1] and not allowed[h2, h1] and not allowed[h3, h2] and not allowed[h1, h2]
    assert allowed[h1, h3] and allowed[0, h2] and allowed[h3, g.first_output]
    assert not allowed[g.first_output, h1] and not allowed[h1, 0]


def test_pareto_fronts_and_ranking_on_hand_made_fronts():
    objectives = np.array([[3, 1], [1, 3], [2, 2], [1, 1], [2, 1], [0, 0], [3, 1]], float)
    fronts = ranking.pareto_fronts(objectives)
    assert [f.tolist() for f in fronts] == [[0, 1, 2, 6], [4], [3], [5]]
    assert ranking.dominates(objectives)[2, 3] and not ranking.dominates(objectives)[0, 6]
    # crowding in front 0: ends (0, 6 share x=3 / 1 has y=3) are infinite; 2 is in between
    crowd = ranking.crowding_distance(objectives[[0, 1, 2, 6]])
    assert np.isinf(crowd[1]) and np.isfinite(crowd[2])
    np.testing.assert_allclose(crowd[2], (3 - 1) / 2 + (3 - 1) / 2)
    order = ranking.rank(objectives)
    assert set(order[:4]) == {0, 1, 2, 6} and order[4:].tolist() == [4, 3, 5]
    with pytest.raises(ValueError, match="objectives"):
        ranking.pareto_fronts(np.array([[np.nan, 1.0]]))


def test_objectives_alternate_between_connections_and_max():
    rng = np.random.default_rng(0)
    drawn = [ranking.wann_objectives([1.0], [2.0], [4], rng)[0, 1] for _ in range(2000)]
    share = np.mean(np.isclose(drawn, 0.25))
    assert 0.77 < share < 0.83 and set(np.round(drawn, 2)) == {0.25, 2.0}


def test_random_baseline_keeps_connections_and_activations():
    g = grown(steps=60)
    r = genome.random_like(g, np.random.default_rng(0))
    assert r.n_connections == g.n_connections and r.n_hidden == g.n_hidden
    assert sorted(r.act[r.hidden]) == sorted(g.act[g.hidden]) and genome.is_acyclic(r.conn)
    assert not np.array_equal(r.conn, g.conn)


def _data(n=120, seed=0):
    x = np.random.default_rng(seed).random((n, 6), np.float32)
    return x, (x[:, 0] + x[:, 1] > 1).astype(np.int32)


def test_same_seed_same_search_and_resume_is_bit_identical(tmp_path):
    x, y = _data()
    config = wann.SearchConfig(population=12, generations=6, batch_size=50, max_hidden=8, seed=3)
    a = wann.search(x, y, config, progress=False)
    b = wann.search(x, y, config, progress=False)
    for name in a.history:
        np.testing.assert_array_equal(a.history[name], b.history[name])
    assert np.array_equal(a.best.conn, b.best.conn) and np.array_equal(a.best.act, b.best.act)
    assert a.history["connections"].shape == (6, 12)
    assert max(g.n_hidden for g in a.population) > 0
    # interrupted after 3 generations, then resumed to 6: the same search
    directory = str(tmp_path / "run")
    wann.search(x, y, wann.SearchConfig(**{**config.__dict__, "generations": 3}), directory=directory, progress=False)
    c = wann.search(x, y, config, directory=directory, progress=False)
    for name in a.history:
        np.testing.assert_array_equal(a.history[name], c.history[name])
    assert np.array_equal(a.best.conn, c.best.conn)
    other = wann.SearchConfig(**{**config.__dict__, "tournament": 4})
    with pytest.raises(ValueError, match="another search configuration .differs in tournament"):
        wann.search(x, y, other, directory=directory, progress=False)
    with pytest.raises(ValueError, match="other data"):
        wann.search(x + 1, y, config, directory=directory, progress=False)
    d = wann.search(x, y, wann.SearchConfig(**{**config.__dict__, "seed": 4}), progress=False)
    assert not np.array_equal(a.history["connections"], d.history["connections"])


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="population: got 1"):
        wann.SearchConfig(population=1)
    with pytest.raises(ValueError, match="shared_weights: got"):
        wann.SearchConfig(shared_weights=(0.0, 1.0))
    with pytest.raises(ValueError, match="activation: got 'swish'"):
        wann.SearchConfig(activations=("relu", "swish"))
    with pytest.raises(ValueError, match="fitness: got 'mse'"):
        wann.SearchConfig(fitness="mse")


def test_the_ticket_keeps_its_mask_when_trained_and_exports_to_tflite(tmp_path):
    import tf_keras

    import tflite_export
    import tfprune

    g = grown(n_inputs=6, n_outputs=2, steps=30, seed=2,
              choices=np.array([activations.index(a) for a in activations.ACTIVATIONS if a != "step"]))
    assert g.n_hidden > 0
    x, y = _data()
    ticket = wann.build_ticket(g, shared_weight=0.5)
    masks = wann.masks(g)
    kept = tfprune.get_masks(ticket)
    assert set(kept) == set(masks) and all(np.array_equal(kept[k], masks[k]) for k in masks)
    np.testing.assert_allclose(ticket(x).numpy(), evaluate.forward(genome.stack([g]), x, [0.5], 6, 2)[0, 0],
                               rtol=2e-5, atol=2e-5)
    ticket.compile(tf_keras.optimizers.Adam(0.05), tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ticket.fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=tfprune.callbacks())
    plain = tfprune.strip(ticket)
    for name, mask in masks.items():
        kernel = plain.get_layer(name).kernel.numpy()
        assert (kernel[mask == 0] == 0).all() and (kernel[mask == 1] != 0.5).any()   # trained, mask kept
    report = tflite_export.export(plain, str(tmp_path / "wann.tflite"), verify_with=x[:32])
    assert os.path.exists(tmp_path / "wann.tflite") and report is not None


def test_plots_write_pngs(tmp_path):
    x, y = _data()
    result = wann.search(x, y, wann.SearchConfig(population=8, generations=3, batch_size=0, max_hidden=4),
                         progress=False)
    assert os.path.getsize(wann.plot_pareto(result.history, str(tmp_path / "front.png"))) > 0
    assert os.path.getsize(wann.draw_network(grown(), str(tmp_path / "net.png"))) > 0
