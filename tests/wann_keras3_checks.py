"""The weight-agnostic network's Keras 3 model (tfprune.wann, ``keras=``) on one backend.

``KERAS_BACKEND`` is fixed per process, so tests/test_wann_keras3.py runs this script once per
backend: ``KERAS_BACKEND=jax python tests/wann_keras3_checks.py``. It prints ``ok <check>`` for
each check and exits non-zero at the first failure (with its traceback).
"""
import os
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests/: checks_main

import checks_main  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfprune  # noqa: E402
from tfprune import wann  # noqa: E402
from tfprune._keras3 import layers as k3layers  # noqa: E402
from tfprune._keras3 import wann_layers  # noqa: E402
from tfprune.wann import activations, evaluate, genome  # noqa: E402
from wann_genomes import W, grown  # noqa: E402

BACKEND = keras.backend.backend()


def numpy_out(model, x):
    return keras.ops.convert_to_numpy(model(x))


def check_activations_equal_the_numpy_ones():
    names = list(activations.ACTIVATIONS)
    assert set(names) == set(wann_layers.OPS)
    x = np.array([[-1.0], [-0.25], [0.0], [0.5], [2.0]], np.float32) * np.ones((1, len(names)), np.float32)
    got = numpy_out(wann_layers.WannUnitActivations(names), x)
    for i, name in enumerate(names):
        np.testing.assert_allclose(got[:, i], activations.numpy_fn(name)(x[:, i]), rtol=1e-6, atol=1e-6,
                                   err_msg=name)
    try:
        wann_layers.WannUnitActivations(["relu", "swish"])
    except ValueError as e:
        assert str(e).startswith("names: got 'swish'; allowed: 'linear'") and "\n" not in str(e), e
    else:
        raise AssertionError("no error for an unknown activation")


def check_outputs_equal_the_batched_numpy_evaluation():
    population = [grown(seed=s) for s in range(4)]
    assert max(g.n_hidden for g in population) >= 3 and max(int(g.depths().max(initial=0)) for g in population) >= 2
    x = np.random.default_rng(1).random((16, 5), np.float32) * 2 - 1
    logits = evaluate.forward(genome.stack(population), x, W, 5, 3)
    for p, g in enumerate(population):
        for k, w in enumerate(W):
            model = wann.build_model(g, shared_weight=w, keras=keras)
            assert all(type(layer).__module__.split(".")[0] != "tf_keras" for layer in model.layers)
            np.testing.assert_allclose(logits[p, k], numpy_out(model, x), rtol=2e-5, atol=2e-5)
    images = wann.build_model(population[0], shared_weight=0.5, input_shape=(5, 1), softmax=True, keras=keras)
    probs = np.exp(logits[0, 3]) / np.exp(logits[0, 3]).sum(-1, keepdims=True)
    np.testing.assert_allclose(numpy_out(images, x.reshape(16, 5, 1)), probs, rtol=2e-5, atol=2e-6)


def _ticket_and_data():
    g = grown(n_inputs=6, n_outputs=2, steps=30, seed=2,
              choices=np.array([activations.index(a) for a in activations.ACTIVATIONS if a != "step"]))
    assert g.n_hidden > 0
    rng = np.random.default_rng(3)
    x = rng.normal(size=(128, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    return g, wann.build_ticket(g, shared_weight=0.5, keras=keras), x, y


def assert_masks_kept(model, masks, trained):
    got = tfprune.get_masks(model)
    assert set(got) == set(masks), (sorted(got), sorted(masks))
    kernels = k3layers.prunable_kernels(model)
    for key, mask in masks.items():
        assert np.array_equal(got[key], mask), key
        value = keras.ops.convert_to_numpy(kernels[key])
        assert (value[mask == 0] == 0).all() and not np.signbit(value[mask == 0]).any(), f"{key}: pruned not +0.0"
        if trained:
            assert (value[mask == 1] != 0.5).any(), f"{key}: no kept weight trained"
        else:
            assert (value[mask == 1] == 0.5).all(), key


def check_the_ticket_keeps_its_masks_through_fit_and_a_keras_round_trip():
    g, ticket, x, y = _ticket_and_data()
    masks = wann.masks(g)
    assert any(type(layer).__name__ == "MaskedLayer" for layer in ticket.layers)
    assert_masks_kept(ticket, masks, trained=False)
    np.testing.assert_allclose(numpy_out(ticket, x), evaluate.forward(genome.stack([g]), x, [0.5], 6, 2)[0, 0],
                               rtol=2e-5, atol=2e-5)
    ticket.compile(keras.optimizers.Adam(0.05), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ticket.fit(x, y, epochs=2, batch_size=32, verbose=0)
    assert_masks_kept(ticket, masks, trained=True)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "wann.keras")
        ticket.save(path)
        np.savez(os.path.join(tmp, "expected.npz"), x=x, out=numpy_out(ticket, x), keys=np.array(list(masks)),
                 **{f"mask{i}": m for i, m in enumerate(masks.values())})
        code = textwrap.dedent(f"""
            import sys
            import tfprune                                       # before keras: registers on keras' import
            assert "keras" not in sys.modules
            import keras, numpy as np
            model = keras.saving.load_model({path!r})            # no custom_objects, no scope
            e = np.load({os.path.join(tmp, "expected.npz")!r})
            got = tfprune.get_masks(model)
            for i, key in enumerate(str(k) for k in e["keys"]):
                assert np.array_equal(got[key], e[f"mask{{i}}"]), key
            assert sorted(got) == sorted(str(k) for k in e["keys"]), sorted(got)
            names = {{type(layer).__name__ for layer in model.layers}}
            assert {{"MaskedLayer", "WannAppendBias", "WannUnitActivations"}} <= names, names
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(e["x"])), e["out"])
            print("child ok")
        """)
        env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND=BACKEND)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp, env=env,
                                timeout=180)
        assert result.returncode == 0 and "child ok" in result.stdout, result.stderr[-3000:]
        again = keras.saving.load_model(path)
        assert_masks_kept(again, masks, trained=True)
        np.testing.assert_array_equal(numpy_out(again, x), numpy_out(ticket, x))


if __name__ == "__main__":
    checks_main.run(globals(), sys.argv[1:], BACKEND)
