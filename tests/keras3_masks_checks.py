"""Every check of tfprune's Keras 3 masks on one backend, in one process.

``KERAS_BACKEND`` is fixed per process, so tests/test_keras3_masks.py runs this script once per
backend: ``KERAS_BACKEND=jax python tests/keras3_masks_checks.py [check ...]``. It prints
``ok <check>`` for each check and exits non-zero at the first failure (with its traceback).
The ``.keras`` round trip loads the file in a fresh interpreter that never imported tfprune.
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import warnings
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # tests/: checks_main

import checks_main  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

import tfprune  # noqa: E402
from tfprune._keras3 import layers as k3layers  # noqa: E402
from tfprune._keras3 import masked  # noqa: E402

BACKEND = keras.backend.backend()
RNG = np.random.default_rng(0)


def exact_masks(kernels, density=0.3, seed=0):
    """Masks keeping exactly round(density * size) entries of each kernel."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, variable in kernels.items():
        size = int(np.prod(variable.shape))
        flat = np.zeros(size, np.float32)
        flat[rng.permutation(size)[: int(round(density * size))]] = 1
        out[key] = flat.reshape(tuple(variable.shape))
    return out


def ops_numpy(x):
    return keras.ops.convert_to_numpy(x)


def kernel_values(model):
    return {k: np.array(v.numpy()) for k, v in k3layers.prunable_kernels(model).items()}


def assert_enforced(model, masks, before=None):
    """Masks bit-identical, masked entries exactly +0.0; with ``before``, kept entries trained (in
    every kernel; overall more than a quarter of them: a kept weight whose unit lost all its
    outgoing weights has no gradient)."""
    got = tfprune.get_masks(model)
    for key, mask in masks.items():
        assert got[key].dtype == np.float32 and np.array_equal(got[key], mask), key
    values = kernel_values(model)
    changed = total = 0
    for key, mask in masks.items():
        pruned = values[key][mask == 0]
        assert (pruned == 0).all() and not np.signbit(pruned).any(), f"{key}: masked entries not +0.0"
        if before is not None:
            moved = int((values[key][mask == 1] != before[key][mask == 1]).sum())
            assert moved > 0, f"{key}: no kept weight trained"
            changed += moved
            total += int(mask.sum())
    if before is not None:
        assert changed > 0.25 * total, f"only {changed}/{total} kept weights trained"


def one_line_error(fn, *words, kind=ValueError):
    try:
        fn()
    except kind as e:
        text = str(e)
        assert "\n" not in text, text
        for word in words:
            assert word in text, (word, text)
        return text
    raise AssertionError(f"no {kind.__name__}")


def build_functional(name="net"):
    inputs = keras.Input((6, 8), name="tokens")
    x = keras.layers.Dense(8, activation="tanh", name="fc1")(inputs)
    x = keras.layers.MultiHeadAttention(2, 4, name="mha")(x, x)
    x = keras.layers.Reshape((6, 8, 1), name="to_image")(x)
    x = keras.layers.Conv2D(3, 3, name="conv", kernel_constraint=keras.constraints.MaxNorm(3.0))(x)
    x = keras.layers.Flatten(name="flat")(x)
    sub = keras.Sequential([keras.Input((72,)), keras.layers.Dense(8, activation="tanh", name="inner")], name="sub")
    x = sub(x)
    outputs = keras.layers.Dense(2, name="out")(x)
    return keras.Model(inputs, outputs, name=name)


def data(shape=(6, 8), n=32, out=2, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n,) + shape).astype("float32"), rng.normal(size=(n, out)).astype("float32")


FUNCTIONAL_KEYS = ["fc1", "mha/query", "mha/key", "mha/value", "mha/attention_output", "conv", "sub/inner", "out"]


# ---------------------------------------------------------------------------------------------

def check_functional_fit_and_sparsity():
    model = build_functional()
    kernels = k3layers.prunable_kernels(model)
    assert list(kernels) == FUNCTIONAL_KEYS, list(kernels)
    masks = exact_masks(kernels)
    pruned = tfprune.apply_masks(model, masks)
    assert pruned is not model and [type(l).__name__ for l in pruned.layers].count("MaskedLayer") == 5
    assert pruned.layers[0].name == "tokens"
    kept = sum(int(m.sum()) for m in masks.values())
    size = sum(m.size for m in masks.values())
    report = tfprune.sparsity_report(pruned)
    assert [r.name for r in report.rows] == FUNCTIONAL_KEYS and report.kept == kept and report.params == size
    assert abs(report.sparsity - (1 - kept / size)) < 1e-12 and report.not_prunable == ()
    assert_enforced(pruned, masks)
    x, y = data()
    pruned.compile(keras.optimizers.Adam(0.01), "mse")
    before = kernel_values(pruned)
    pruned.fit(x, y, batch_size=16, epochs=2, verbose=0)
    assert_enforced(pruned, masks, before)
    assert pruned.predict(x, verbose=0).shape == (32, 2)
    # the user's constraint is kept and composed (its first, then the mask)
    constraint = kernels["conv"].constraint
    assert type(constraint).__name__ == "MaskConstraint" and isinstance(constraint.constraint, keras.constraints.MaxNorm)


def check_masks_at_every_density_train_alike():
    """Masks of 5%, 60% and 100% density (on PyTorch: the in-place sparse re-masking, torch.where,
    and nothing to enforce) are enforced after ``fit``, and training gives bit-identical weights
    whichever way a mask is re-applied (on PyTorch, the same run with the sparse path turned off)."""
    def run(sparse_below=None):
        keras.utils.set_random_seed(3)
        model = build_functional()
        kernels = k3layers.prunable_kernels(model)
        densities = dict(zip(FUNCTIONAL_KEYS, [0.05, 0.6, 1.0, 0.05, 0.6, 0.05, 1.0, 0.6]))
        masks = {key: exact_masks({key: kernels[key]}, density=densities[key], seed=i)[key] for i, key in enumerate(kernels)}
        pruned = tfprune.apply_masks(model, masks)
        x, y = data()
        pruned.compile(keras.optimizers.Adam(0.01), "mse")
        before = kernel_values(pruned)
        if sparse_below is not None:
            from tfprune._keras3 import eager_mask
            saved, eager_mask.SPARSE_BELOW = eager_mask.SPARSE_BELOW, sparse_below
        try:
            pruned.fit(x, y, batch_size=16, epochs=2, verbose=0, shuffle=False)
        finally:
            if sparse_below is not None:
                eager_mask.SPARSE_BELOW = saved
        assert_enforced(pruned, {k: m for k, m in masks.items() if m.min() == 0}, before)
        return [np.array(ops_numpy(w)) for w in pruned.weights]

    first = run()
    for a, b in zip(first, run(sparse_below=None if BACKEND != "torch" else -1.0)):
        assert a.dtype == b.dtype and np.array_equal(a.view(np.uint8), b.view(np.uint8))


def _grads(model, loss_fn, x, y):
    """One backend's gradients of ``loss_fn(y, model(x))`` w.r.t. model.trainable_variables."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        return tape.gradient(loss, model.trainable_variables)
    if BACKEND == "jax":
        import jax

        trainable = [v.value for v in model.trainable_variables]
        frozen = [v.value for v in model.non_trainable_variables]

        def f(trainable):
            pred, _ = model.stateless_call(trainable, frozen, x, training=True)
            return loss_fn(y, pred)

        return jax.grad(f)(trainable)
    if BACKEND == "torch":
        for v in model.trainable_variables:
            v.value.grad = None
        loss = loss_fn(y, model(x, training=True))
        loss.backward()
        return [v.value.grad for v in model.trainable_variables]
    raise AssertionError(BACKEND)


def check_custom_loop_with_optimizer_apply():
    model = build_functional("loop")
    masks = exact_masks(k3layers.prunable_kernels(model), density=0.5, seed=3)
    pruned = tfprune.apply_masks(model, masks)
    optimizer = keras.optimizers.Adam(0.01)
    loss_fn = keras.losses.MeanSquaredError()
    x, y = data()
    before = kernel_values(pruned)
    for _ in range(3):
        grads = _grads(pruned, loss_fn, x, y)
        optimizer.apply(grads, pruned.trainable_variables)
    assert_enforced(pruned, masks, before)


def check_keras_file_round_trip_in_a_fresh_process():
    model = build_functional("saved")
    masks = exact_masks(k3layers.prunable_kernels(model), density=0.4, seed=5)
    pruned = tfprune.apply_masks(model, masks)
    x, y = data()
    pruned.compile(keras.optimizers.Adam(0.01), "mse")
    pruned.fit(x, y, epochs=1, verbose=0)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "pruned.keras")
        pruned.save(path)
        with zipfile.ZipFile(path) as archive:  # the masks are in the weights, never in the config
            layers = json.loads(archive.read("config.json"))["config"]["layers"]
        wrappers = [l["config"] for l in layers if l["class_name"] == "MaskedLayer"]
        assert len(wrappers) == 5 and all(set(c) == {"name", "trainable", "dtype", "layer", "mask_paths", "mask_shapes"}
                                          for c in wrappers), wrappers
        assert wrappers[1]["mask_paths"] == ["query", "key", "value", "attention_output"]
        np.savez(os.path.join(tmp, "expected.npz"), x=x, y=y, out=pruned.predict(x, verbose=0),
                 keys=np.array(list(masks)), **{f"mask{i}": m for i, m in enumerate(masks.values())})
        code = textwrap.dedent(f"""
            import sys
            import tfprune                                       # before keras: registers on keras' import
            assert "keras" not in sys.modules
            import keras, numpy as np
            model = keras.saving.load_model({path!r})            # no custom_objects, no scope
            from tfprune._keras3 import layers, masked
            e = np.load({os.path.join(tmp, "expected.npz")!r})
            keys = [str(k) for k in e["keys"]]
            got = masked.get_masks(model)
            assert list(got)[:len(keys)] == keys, list(got)
            for i, key in enumerate(keys):
                assert np.array_equal(got[key], e[f"mask{{i}}"]), key
            assert np.array_equal(model.predict(e["x"], verbose=0), e["out"])
            model.compile(keras.optimizers.Adam(0.01), "mse")
            model.fit(e["x"], e["y"], epochs=2, verbose=0)
            got = masked.get_masks(model)
            kernels = layers.prunable_kernels(model)
            for i, key in enumerate(keys):
                mask = e[f"mask{{i}}"]
                assert np.array_equal(got[key], mask), key
                value = np.array(kernels[key].numpy())
                assert (value[mask == 0] == 0).all() and not np.signbit(value[mask == 0]).any(), key
            print("child ok", "tensorflow" in sys.modules)
        """)
        env = dict(os.environ, PYTHONPATH=ROOT, KERAS_BACKEND=BACKEND)
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp, env=env,
                                timeout=120)
        assert result.returncode == 0 and "child ok" in result.stdout, result.stderr[-3000:]
        # and in this process: same masks, same outputs
        again = keras.saving.load_model(path)
        assert_enforced(again, masks)
        assert np.array_equal(again.predict(x, verbose=0), pruned.predict(x, verbose=0))


def check_strip():
    model = build_functional("to_strip")
    masks = exact_masks(k3layers.prunable_kernels(model), density=0.3, seed=7)
    pruned = tfprune.apply_masks(model, masks)
    x, y = data()
    pruned.compile(keras.optimizers.Adam(0.01), "mse")
    pruned.fit(x, y, epochs=1, verbose=0)
    plain = tfprune.strip(pruned)
    assert type(plain) is type(model) and [l.name for l in plain.layers] == [l.name for l in model.layers]
    for layer in plain._flatten_layers(include_self=True, recursive=True):
        assert not type(layer).__module__.startswith("tfprune"), layer
    for variable in plain.weights:
        assert not type(variable.constraint).__module__.startswith("tfprune"), variable.path
        value = np.array(variable.numpy())
        if value.dtype.kind == "f":
            assert not np.signbit(value[value == 0]).any(), variable.path
    assert isinstance(k3layers.prunable_kernels(plain)["conv"].constraint, keras.constraints.MaxNorm)
    got = tfprune.get_masks(plain)
    assert all(np.array_equal(got[k], m) for k, m in masks.items())
    assert np.array_equal(plain.predict(x, verbose=0), pruned.predict(x, verbose=0))
    shared = {id(v) for v in pruned.weights} & {id(v) for v in plain.weights}
    assert not shared


def check_sequential_and_reapply():
    model = keras.Sequential([keras.Input((8,), name="features"), keras.layers.Dense(16, activation="tanh", name="h"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(2, name="out")], name="seq")
    kernels = k3layers.prunable_kernels(model)
    assert list(kernels) == ["h", "out"]
    masks = exact_masks(kernels, density=0.25)
    pruned = tfprune.apply_masks(model, masks)
    assert isinstance(pruned, keras.Sequential) and pruned.layers[0].name == "masked_h"
    x, y = data((8,))
    pruned.compile(keras.optimizers.Adam(0.01), "mse")
    before = kernel_values(pruned)
    pruned.fit(x, y, epochs=2, verbose=0)
    assert_enforced(pruned, masks, before)
    # re-applying replaces the masks in place: same model, no double wrapping, new masks enforced
    new = exact_masks(kernels, density=0.5, seed=11)
    again = tfprune.apply_masks(pruned, {"h": new["h"]})
    assert again is pruned and [type(l).__name__ for l in again.layers] == ["MaskedLayer", "Dropout", "MaskedLayer"]
    assert not any(k3layers.is_masked_layer(l.layer) for l in again.layers if k3layers.is_masked_layer(l))
    expected = {"h": new["h"], "out": masks["out"]}
    pruned.fit(x, y, epochs=1, verbose=0)  # compiled functions were dropped: the new masks hold on JAX too
    assert_enforced(pruned, expected)
    plain = tfprune.strip(pruned)
    assert type(plain) is keras.Sequential and [type(l).__name__ for l in plain.layers] == ["Dense", "Dropout", "Dense"]


class Net(keras.Model):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fc1 = keras.layers.Dense(8, activation="tanh", name="fc1")
        self.head = keras.layers.Dense(2, name="head")

    def call(self, x):
        return self.head(self.fc1(x))


def check_subclassed_model_is_masked_in_place_with_a_warning():
    model = Net(name="net")
    model(np.zeros((1, 8), np.float32))
    kernels = k3layers.prunable_kernels(model)
    assert list(kernels) == ["fc1", "head"] and k3layers.dense_matrices(model) == {}
    masks = exact_masks(kernels, density=0.4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pruned = tfprune.apply_masks(model, masks)
    assert pruned is model
    found = [w for w in caught if issubclass(w.category, masked.MasksNotSavedWarning)]
    assert found and "model.save() does NOT keep its masks" in str(found[0].message)
    x, y = data((8,))
    model.compile(keras.optimizers.Adam(0.01), "mse")
    before = kernel_values(model)
    model.fit(x, y, epochs=2, verbose=0)
    assert_enforced(model, masks, before)
    stripped = tfprune.strip(model)
    assert stripped is model and all(v.constraint is None for v in kernels.values())
    assert all(np.array_equal(m, tfprune.get_masks(model)[k]) for k, m in masks.items())


def check_mixed_precision():
    for policy in ("mixed_float16", "mixed_bfloat16"):
        keras.mixed_precision.set_global_policy(policy)
        try:
            inputs = keras.Input((8,))
            x = keras.layers.Dense(16, activation="tanh", name="h")(inputs)
            outputs = keras.layers.Dense(2, name="out", dtype="float32")(x)
            model = keras.Model(inputs, outputs)
            kernels = k3layers.prunable_kernels(model)
            assert all(str(v.dtype) == "float32" for v in kernels.values())
            masks = exact_masks(kernels, density=0.5, seed=2)
            pruned = tfprune.apply_masks(model, masks)
            assert pruned.layers[1].compute_dtype == policy.split("_")[1]
            x, y = data((8,))
            pruned.compile(keras.optimizers.Adam(0.01), "mse")
            before = kernel_values(pruned)
            pruned.fit(x, y, epochs=3, verbose=0)
            assert_enforced(pruned, masks, before)
            assert str(pruned.predict(x, verbose=0).dtype) == "float32"
        finally:
            keras.mixed_precision.set_global_policy("float32")


class Mystery(keras.layers.Layer):
    """A layer type tfprune does not know, holding a kernel: reported, never skipped."""

    def build(self, input_shape):
        self.kernel = self.add_weight(shape=(input_shape[-1], 3), name="kernel")

    def call(self, x):
        return keras.ops.matmul(x, self.kernel)


def check_embedding_report_and_include():
    inputs = keras.Input((5,), dtype="int32")
    x = keras.layers.Embedding(20, 8, name="emb")(inputs)
    x = keras.layers.LSTM(4, name="lstm")(x)
    x = Mystery(name="mystery")(x)
    x = keras.layers.Dense(3, name="fc")(x)
    model = keras.Model(inputs, x)
    assert list(k3layers.prunable_kernels(model)) == ["fc"]
    assert list(k3layers.prunable_kernels(model, include=("embedding",))) == ["emb", "fc"]
    dense = k3layers.dense_matrices(model)
    assert {k: r for k, (_, r) in dense.items()} == {
        "emb": "Embedding: pass include=('embedding',)", "lstm/lstm_cell": "LSTMCell: not supported",
        "lstm/lstm_cell/recurrent_kernel": "LSTMCell recurrent kernel: not supported",
        "mystery": "Mystery: unknown layer type, not supported"}, dense
    masks = exact_masks(k3layers.prunable_kernels(model), density=0.5)
    pruned = tfprune.apply_masks(model, masks)
    report = tfprune.sparsity_report(pruned)
    assert [r.name for r in report.rows] == ["fc"]
    assert [(r.name, r.why_not_pruned) for r in report.not_prunable] == [(k, r) for k, (_, r) in dense.items()]
    assert report.overall_params == 9 + 160 + 8 * 16 + 4 * 16 + 12
    assert report.overall_kept == 4 + 160 + 8 * 16 + 4 * 16 + 12 and report.overall_sparsity < report.sparsity
    text = str(report)
    assert "Embedding: pass include=('embedding',)" in text and "all weight matrices" in text
    assert report.to_dict()["not_prunable"][0]["why_not_pruned"] == "Embedding: pass include=('embedding',)"
    # an Embedding given a mask is masked (the explicit mask is the opt-in), and reported as pruned
    emb = exact_masks(k3layers.prunable_kernels(model, include=("embedding",)), density=0.5, seed=4)
    both = tfprune.apply_masks(model, emb)
    assert list(tfprune.get_masks(both)) == ["emb", "fc"]
    assert [r.name for r in tfprune.sparsity_report(both).rows] == ["emb", "fc"]
    assert "emb" not in [r.name for r in tfprune.sparsity_report(both).not_prunable]


def check_wrapper_calls_plain_layers_directly_and_keeps_keras_masks_and_losses():
    """A MaskedLayer calls a built Dense/Conv's ``call`` itself (one Keras ``__call__`` saved per
    layer and step); what the skipped ``__call__`` would add is kept: Keras masks (padding) reach
    the next layer, and a layer with an activity regularizer goes through its own ``__call__``."""
    inputs = keras.Input((6,), dtype="int32")
    x = keras.layers.Embedding(30, 8, mask_zero=True, name="emb")(inputs)
    x = keras.layers.Dense(8, activation="relu", name="fc1")(x)
    x = keras.layers.Dense(8, activity_regularizer=keras.regularizers.L2(0.1), name="fc2")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)  # averages over unmasked steps only
    outputs = keras.layers.Dense(3, name="out")(x)
    model = keras.Model(inputs, outputs)
    pruned = tfprune.apply_masks(model, exact_masks(k3layers.prunable_kernels(model), density=0.5, seed=5))
    wrappers = {layer.layer.name: layer for layer in pruned.layers if k3layers.is_masked_layer(layer)}
    assert sorted(wrappers) == ["fc1", "fc2", "out"], sorted(wrappers)
    assert wrappers["fc1"]._direct() and wrappers["out"]._direct() and not wrappers["fc2"]._direct()
    tokens = np.array([[3, 5, 7, 0, 0, 0], [1, 2, 3, 4, 5, 6]], np.int32)
    np.testing.assert_allclose(ops_numpy(pruned(tokens)), ops_numpy(tfprune.strip(pruned)(tokens)), rtol=1e-6, atol=1e-6)
    # the padding mask reaches the pooling through the wrappers: it averages the 3 real steps only
    def numpy_layer(name, x, relu=False):
        layer = wrappers[name].layer
        y = x @ np.asarray(ops_numpy(layer.kernel)) + np.asarray(ops_numpy(layer.bias))
        return np.maximum(y, 0) if relu else y
    embedded = np.asarray(ops_numpy(pruned.get_layer("emb").embeddings))[tokens[0, :3]]
    want = numpy_layer("out", numpy_layer("fc2", numpy_layer("fc1", embedded, relu=True)).mean(axis=0))
    np.testing.assert_allclose(ops_numpy(pruned(tokens[:1]))[0], want, rtol=1e-5, atol=1e-5)
    # the activity regularizer's loss is still recorded (fc2 goes through its own __call__)
    pruned(tokens)
    assert len(pruned.losses) == 1 and float(ops_numpy(pruned.losses[0])) > 0, pruned.losses
    # a Sequential model passes each layer's output mask on by itself: the wrapper computes it
    sequential = keras.Sequential([keras.Input((6,), dtype="int32")] + [
        layer.__class__.from_config(layer.get_config())
        for layer in model.layers[1:]])
    sequential.set_weights(model.get_weights())
    masked_sequential = tfprune.apply_masks(sequential, tfprune.get_masks(pruned))
    np.testing.assert_allclose(ops_numpy(masked_sequential(tokens[:1]))[0], want, rtol=1e-5, atol=1e-5)


def check_keras_hub_encoder_and_auto_named_sublayers():
    import keras_hub

    inputs = keras.Input((5, 16))
    x = keras_hub.layers.TransformerEncoder(32, 2, name="encoder")(inputs)
    outputs = keras.layers.Dense(2, name="out")(x)
    model = keras.Model(inputs, outputs)
    keys = list(k3layers.prunable_kernels(model))
    assert keys == ["encoder/self_attention_layer/query", "encoder/self_attention_layer/key",
                    "encoder/self_attention_layer/value", "encoder/self_attention_layer/attention_output",
                    "encoder/feedforward_intermediate_dense", "encoder/feedforward_output_dense", "out"], keys
    masks = exact_masks(k3layers.prunable_kernels(model), density=0.3)
    pruned = tfprune.apply_masks(model, masks)
    x, y = data((5, 16), out=2)
    y = np.repeat(y[:, None, :], 5, axis=1)
    pruned.compile(keras.optimizers.Adam(0.01), "mse")
    before = kernel_values(pruned)
    pruned.fit(x, y, epochs=2, verbose=0)
    assert_enforced(pruned, masks, before)
    with tempfile.TemporaryDirectory() as tmp:
        pruned.save(os.path.join(tmp, "m.keras"))
        again = keras.saving.load_model(os.path.join(tmp, "m.keras"))
    assert_enforced(again, masks)


@keras.saving.register_keras_serializable(package="tfprune_tests")
class Block(keras.layers.Layer):
    """Two auto-named Dense sublayers: their names (and so keys) change when the layer is remade."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.a = keras.layers.Dense(units)
        self.b = keras.layers.Dense(units)

    def build(self, input_shape):
        self.a.build(input_shape)
        self.b.build(tuple(input_shape[:-1]) + (self.units,))

    def call(self, x):
        return self.b(self.a(x))

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def check_keys_are_the_layer_names_and_auto_named_sublayers_match_by_position():
    keras.layers.Dense(3)  # advance Keras' name counters: default names depend on the process history
    inputs = keras.Input((4,))
    model = keras.Model(inputs, Block(4, name="block")(keras.layers.Dense(4)(inputs)))
    kernels = k3layers.prunable_kernels(model)
    names = [l.name for l in model.layers[1:]]
    block = model.layers[2]
    assert list(kernels) == [names[0], f"block/{block.a.name}", f"block/{block.b.name}"], (list(kernels), names)
    masks = exact_masks(kernels, density=0.5)
    pruned = tfprune.apply_masks(model, masks)
    with tempfile.TemporaryDirectory() as tmp:
        pruned.save(os.path.join(tmp, "m.keras"))
        again = keras.saving.load_model(os.path.join(tmp, "m.keras"))
    got = tfprune.get_masks(again)
    assert list(got)[0] == names[0]  # a top-level name is in the config: the same key
    assert list(got)[1:] != list(masks)[1:]  # the block's sublayers got new default names...
    assert all(np.array_equal(a, b) for a, b in zip(got.values(), masks.values()))  # ...their masks by position


def check_bad_input_gives_one_line_errors():
    model = build_functional("bad")
    kernels = k3layers.prunable_kernels(model)
    good = exact_masks(kernels)
    one_line_error(lambda: tfprune.apply_masks(model, {"nope": good["fc1"]}), "'nope'", "allowed keys", "mha/query")
    one_line_error(lambda: tfprune.apply_masks(model, {"fc1": np.ones((3, 3))}), "'fc1'", "(3, 3)", "(8, 8)")
    half = np.full((8, 8), 0.5, np.float32)
    one_line_error(lambda: tfprune.apply_masks(model, {"fc1": half}), "'fc1'", "0.5", "64 entries", "allowed: 0/1")
    one_line_error(lambda: tfprune.apply_masks(model, [good["fc1"]]), "expected a dict", kind=TypeError)
    one_line_error(lambda: k3layers.prunable_kernels(model, include=("lstm",)), "'lstm'", "allowed")
    # a damaged file: a mask value other than 0/1 is refused on load
    pruned = tfprune.apply_masks(model, good)
    pruned.layers[1].masks[0].assign(np.full((8, 8), 2.0, np.float32))
    one_line_error(lambda: tfprune.get_masks(pruned), "'fc1'", "2.0", "tfprune.apply_masks")
    with tempfile.TemporaryDirectory() as tmp:
        pruned.save(os.path.join(tmp, "bad.keras"))
        try:
            with warnings.catch_warnings():  # Keras' own notes about the rest of a load it abandoned
                warnings.simplefilter("ignore")
                keras.saving.load_model(os.path.join(tmp, "bad.keras"))
        except ValueError as e:
            assert "mask 'fc1' holds values other than 0 and 1 (2.0, 64 entries)" in str(e), str(e)
        else:
            raise AssertionError("a damaged file loaded")

    # a tf_keras layer inside a Keras 3 model
    import tf_keras

    class Mixed(keras.Model):
        def __init__(self):
            super().__init__(name="mixed")
            self.fc = keras.layers.Dense(2, name="fc")
            self.legacy = tf_keras.layers.Dense(2, name="legacy_dense")

        def call(self, x):
            return self.fc(x)

    mixed = Mixed()
    mixed(np.zeros((1, 4), np.float32))
    one_line_error(lambda: tfprune.apply_masks(mixed, {}), "'mixed'", "'legacy_dense'", "tf_keras")
    one_line_error(lambda: tfprune.sparsity_report(mixed), "'legacy_dense'")
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    one_line_error(lambda: tfprune.get_masks(unbuilt), "not built")


if __name__ == "__main__":
    checks_main.run(globals(), sys.argv[1:], BACKEND)
