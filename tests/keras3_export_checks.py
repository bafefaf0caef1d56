"""Every check of tflite_export on pruned Keras 3 models, on one backend, in one process.

``KERAS_BACKEND`` is fixed per process, so tests/test_tflite_export_keras3.py runs this script
once per backend: ``KERAS_BACKEND=jax python tests/keras3_export_checks.py [check ...]``. It
prints ``ok <check>`` for each check and exits non-zero at the first failure (with its
traceback). On JAX and PyTorch every export goes through the TensorFlow-backend subprocess
(tflite_export.rebuild); the expected outputs are always this process's Keras outputs.
"""
import os
import sys
import tempfile
import time
import types
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras3_export_layers  # noqa: E402  (tests/, next to this script)
import tfprune  # noqa: E402
import tflite_export  # noqa: E402
from tflite_export import keras_side, rebuild  # noqa: E402

BACKEND = keras.backend.backend()
REBUILT = BACKEND != "tensorflow"
TOL = tflite_export.TOLERANCES["none"][0]
RESOLVERS = ("default", "builtin")
warnings.simplefilter("ignore")  # NotPrunedWarning etc.: not what is checked here


def keras_outputs(model, inputs):
    out = model(inputs, training=False)
    return np.asarray(keras.ops.convert_to_numpy(out))


def run_tflite(path, inputs: dict, resolver):
    """Runs the .tflite one sample at a time through its signature; the first output, stacked."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {}
    if resolver == "builtin":
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    runner = Interpreter(model_path=str(path), **kwargs).get_signature_runner()
    n = len(next(iter(inputs.values())))
    rows = []
    for i in range(n):
        out = runner(**{name: x[i:i + 1] for name, x in inputs.items()})
        assert list(out) == ["output_0"], list(out)
        rows.append(out["output_0"][0])
    return np.stack(rows)


def rel_err(y, ref):
    return float(np.abs(np.asarray(y, np.float64) - ref).max() / np.abs(ref).max())


def block_masks(model, block_layers, sparsity=0.9, seed=0):
    """Masks keeping ~10% of every prunable kernel: element-wise, or in (4, 1) blocks along the
    input axis for the Dense kernels named in ``block_layers``."""
    rng = np.random.default_rng(seed)
    masks = {}
    for key, mask in tfprune.get_masks(model).items():
        shape = mask.shape
        if key in block_layers:
            keep = rng.random((shape[0] // 4, shape[1])) >= sparsity
            masks[key] = np.repeat(keep, 4, axis=0).astype(np.float32)
        else:
            masks[key] = (rng.random(shape) >= sparsity).astype(np.float32)
    return masks


def mixed_model():
    """Two inputs: an image through Conv2D, tokens through MultiHeadAttention; then Dense."""
    keras.utils.set_random_seed(0)
    img = keras.Input((12, 12, 1), name="img")
    tokens = keras.Input((8, 16), name="tokens")
    h = keras.layers.Conv2D(8, 3, activation="relu", name="conv0")(img)
    h = keras.layers.Flatten(name="flat_img")(h)
    a = keras.layers.MultiHeadAttention(2, 8, name="mha")(tokens, tokens)
    a = keras.layers.Flatten(name="flat_tokens")(a)
    h = keras.layers.Concatenate(name="cat")([h, a])
    h = keras.layers.Dense(64, activation="relu", name="fc0")(h)
    return keras.Model([img, tokens], keras.layers.Dense(10, name="fc1")(h), name="mixed")


def sequential_model():
    keras.utils.set_random_seed(1)
    return keras.Sequential([keras.Input((12, 12, 1)),
                             keras.layers.Conv2D(8, 3, activation="relu", name="conv0"),
                             keras.layers.Flatten(name="flat"),
                             keras.layers.Dense(64, activation="relu", name="fc0"),
                             keras.layers.Dense(8, name="fc1")], name="seq")


def fresh_inputs(n=24, seed=5):
    rng = np.random.default_rng(seed)
    return {"img": rng.standard_normal((n, 12, 12, 1)).astype(np.float32),
            "tokens": rng.standard_normal((n, 8, 16)).astype(np.float32)}


def weights_of(model):
    return [np.array(keras.ops.convert_to_numpy(w)) for w in model.weights]


# ---------------------------------------------------------------------------------------------

def check_mixed_dense_conv_attention_exports_sparse_and_matches_keras(tmp):
    model = tfprune.prune_at_init(mixed_model(), "random", sparsity=0.9, seed=0)
    masks_before = tfprune.get_masks(model)
    weights_before = weights_of(model)
    path = os.path.join(tmp, "mixed.tflite")
    report = tflite_export.export(model, path, block="auto")
    assert report.written and report.encoding == "sparse" and report.stripped, str(report)
    assert BACKEND in report.keras and ("subprocess" in report.keras) == REBUILT, report.keras
    assert f"model: {report.keras}" in str(report)
    assert all(v.passed for v in report.verification) and len(report.verification) == 4
    # every kernel, the attention's included, is named and written sparse
    keys = ["conv0", "mha/query", "mha/key", "mha/value", "mha/attention_output", "fc0", "fc1"]
    assert [info.layer for info in report.layers] == keys, report.layers
    assert sorted(t.layer for t in report.tensors) == sorted(keys), report.tensors
    assert all(t.final_encoding != "dense" for t in report.tensors), report.tensors
    # smaller than the dense export of the same model (the dense twin: the same conversion
    # without EXPERIMENTAL_SPARSITY, verified too)
    assert report.size_bytes == os.path.getsize(path) < 0.4 * report.dense_twin_bytes
    # measured here, independently of the report: LiteRT vs this backend's Keras outputs
    x = fresh_inputs()
    ref = keras_outputs(model, [x["img"], x["tokens"]])
    for resolver in RESOLVERS:
        err = rel_err(run_tflite(path, x, resolver), ref)
        assert err <= TOL, (resolver, err)
    inspected = tflite_export.inspect(path)
    assert inspected.negative_zeros == 0 and len(inspected.sparse_tensors()) == len(keys)
    if REBUILT:
        assert any(n.startswith("rebuilt under the TensorFlow backend") for n in report.notes)
    # the caller's model is untouched: same masks (still enforced: its wrappers are there), same weights
    assert any(tfprune.keras_utils.is_pruning_wrapper(layer) for layer in model.layers)
    assert all(np.array_equal(tfprune.get_masks(model)[k], m) for k, m in masks_before.items())
    assert all(np.array_equal(a, b) for a, b in zip(weights_before, weights_of(model)))
    d = report.to_dict()
    assert d["keras"] == report.keras and d["size_ratio_vs_dense_twin"] < 0.4


def check_sequential_block_sparse_dense_smaller_than_dense_export(tmp):
    plain = sequential_model()
    model = tfprune.apply_masks(plain, block_masks(plain, {"fc0", "fc1"}))
    path = os.path.join(tmp, "seq.tflite")
    report = tflite_export.export(model, path, block=(4, 1))
    assert report.written and report.encoding == "sparse", str(report)
    assert [info.block for info in report.layers if info.kind == "Dense"] == ["(4,1)", "(4,1)"]
    encodings = {t.layer: t.final_encoding for t in report.tensors}
    assert encodings == {"conv0": "CSR", "fc0": "block 1x4", "fc1": "block 1x4"}, encodings
    # the file's energy: the block-sparse Dense layers priced sparse, the CSR conv (densified at load) dense
    rows = {r.name: r for r in report.energy.rows}
    dense = {r.name: r for r in tfprune.estimate_energy(sequential_model()).rows}  # plain holds zeros now
    assert rows["conv0"].stored == "dense" and rows["conv0"].macs == dense["conv0"].macs, report.energy
    assert all(rows[n].stored.startswith("block") and rows[n].macs < dense[n].macs for n in ("fc0", "fc1")), \
        report.energy
    x = np.random.default_rng(2).standard_normal((16, 12, 12, 1)).astype(np.float32)
    ref = keras_outputs(model, x)
    (name,) = tfprune.keras_utils.input_names(model)
    for resolver in RESOLVERS:
        assert rel_err(run_tflite(path, {name: x}, resolver), ref) <= TOL
    if REBUILT:  # the dense export: the dense twin (one conversion fewer through the subprocess)
        dense_size = report.dense_twin_bytes
    else:  # the dense export, written: it is the dense twin
        dense_path = os.path.join(tmp, "seq_dense.tflite")
        dense = tflite_export.export(model, dense_path, sparse=False)
        assert dense.encoding == "dense" and not dense.tensors
        dense_size = os.path.getsize(dense_path)
        assert dense_size == report.dense_twin_bytes
        for resolver in RESOLVERS:
            assert rel_err(run_tflite(dense_path, {name: x}, resolver), ref) <= TOL
    assert os.path.getsize(path) < 0.4 * dense_size, (os.path.getsize(path), dense_size)
    # the command line loads a masked Keras 3 .keras file as Keras 3 (masks kept) on this backend
    from tflite_export import __main__ as cli

    saved = os.path.join(tmp, "seq.keras")
    model.save(saved)
    assert cli.is_keras3_file(saved) and not cli.is_keras3_file(path)
    loaded = cli.load_model(saved)
    assert tfprune.keras_utils.is_keras3_model(loaded)
    assert all(np.array_equal(tfprune.get_masks(loaded)[k], m) for k, m in tfprune.get_masks(model).items())


def check_tflite_that_differs_from_keras_is_refused(tmp):
    """The verification inputs' expected outputs are tampered with (as if the .tflite computed
    something else than this backend's Keras model): nothing may be written."""
    plain = sequential_model()
    model = tfprune.apply_masks(plain, block_masks(plain, set()))
    path = os.path.join(tmp, "old.tflite")
    with open(path, "wb") as f:
        f.write(b"previous")
    original = keras_side.reference_outputs

    def tampered(m, inputs, *args, **kwargs):
        out = original(m, inputs, *args, **kwargs)
        return {k: v + np.float32(0.01) * np.abs(v).max() for k, v in out.items()}

    keras_side.reference_outputs = tampered
    try:
        try:
            tflite_export.export(model, path)
        except tflite_export.ExportError as e:
            error = e
        else:
            raise AssertionError("a .tflite that differs from Keras was written")
    finally:
        keras_side.reference_outputs = original
    message = str(error)
    assert "nothing written" in message and "dense twin failed verification" in message, message
    assert "\n" not in message
    report = error.report
    assert report is not None and not report.written and report.keras.startswith("Keras 3")
    assert not any(v.passed for v in report.verification)
    assert any("failed verification" in f for f in report.fallbacks)
    with open(path, "rb") as f:
        assert f.read() == b"previous"
    assert os.listdir(tmp) == ["old.tflite"]  # no temporary file left


def check_unsupported_op_names_layer_and_op(tmp):
    keras.utils.set_random_seed(0)
    inp = keras.Input((16,), name="x")
    h = keras.layers.Dense(16, activation="tanh", name="fc0")(inp)
    # a registered custom layer from an importable module: the TensorFlow subprocess imports it
    h = keras3_export_layers.Erfinv(name="odd_op")(h)
    model = keras.Model(inp, keras.layers.Dense(4, name="fc1")(h))
    path = os.path.join(tmp, "odd.tflite")
    try:
        tflite_export.export(model, path)
    except tflite_export.ExportError as e:
        error = e
    else:
        raise AssertionError("a model with an op TFLite has no kernel for was exported")
    message = str(error)
    for words in ("op Erfinv", "layer 'odd_op'", "nothing written", "TFLite builtin"):
        assert words in message, (words, message)
    assert "\n" not in message and len(message) < 600
    assert "Erfinv" in error.converter_message
    assert not os.path.exists(path)


class Net(keras.Model):
    """A subclassed model: no symbolic inputs."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fc0 = keras.layers.Dense(64, activation="relu", name="fc0")
        self.fc1 = keras.layers.Dense(8, name="fc1")

    def call(self, x):
        return self.fc1(self.fc0(x))


def check_subclassed_model_is_refused_and_exports_once_wrapped(tmp):
    keras.utils.set_random_seed(0)
    net = Net(name="net")
    net(np.zeros((1, 32), np.float32))
    net = tfprune.prune_at_init(net, "random", sparsity=0.9, seed=0)  # masked in place
    path = os.path.join(tmp, "net.tflite")
    try:
        tflite_export.export(net, path)
    except ValueError as e:
        message = str(e)
    else:
        raise AssertionError("a subclassed Keras 3 model was exported")
    for words in ("model: Keras 3 model 'net' (Net) has no symbolic inputs",
                  "keras.Model(inputs, model(inputs))"):
        assert words in message, (words, message)
    if REBUILT:  # Net lives in __main__: the subprocess cannot load it (checked below)
        return "the wrapped model's class is defined in __main__"
    inp = keras.Input((32,), name="x")
    report = tflite_export.export(keras.Model(inp, net(inp)), path)
    assert report.written and report.encoding == "sparse" and not report.stripped
    assert sorted(t.layer for t in report.tensors) == ["fc0", "fc1"]
    # exported as it is: the caller's model keeps its masks, enforced
    from tfprune._keras3 import masked

    assert all(masked.mask_variable(layer.kernel) is not None for layer in (net.fc0, net.fc1))
    return None


@keras.saving.register_keras_serializable(package="checks")
class Doubled(keras.layers.Layer):
    """A custom layer defined in this script (``__main__``): the subprocess cannot import it."""

    def call(self, x):
        return 2.0 * x


def check_subprocess_failures_are_one_line_errors_naming_why(tmp):
    if not REBUILT:
        return "no subprocess on the TensorFlow backend"
    inp = keras.Input((8,), name="x")
    model = keras.Model(inp, keras.layers.Dense(4, name="fc")(Doubled(name="doubled")(inp)))
    path = os.path.join(tmp, "custom.tflite")
    try:
        tflite_export.export(model, path)
    except tflite_export.ExportError as e:
        message = str(e)
    else:
        raise AssertionError("exported a model the subprocess cannot load")
    for words in ("nothing written", f"the {BACKEND} model, saved to .keras, could not be loaded "
                  "under the TensorFlow backend", "Doubled", "__main__", "importable module"):
        assert words in message, (words, message)
    assert "\n" not in message and not os.path.exists(path)
    # a subprocess that dies without a result: its exit status and last error line
    saved = rebuild.WORKER
    rebuild.WORKER = "tflite_export._no_such_worker"
    try:
        tflite_export.export(sequential_model(), path)
    except tflite_export.ExportError as e:
        message = str(e)
    else:
        raise AssertionError("exported without the subprocess")
    finally:
        rebuild.WORKER = saved
    for words in ("nothing written", f"subprocess that rebuilds the {BACKEND} model exited with "
                  "status 1 without a result", "No module named tflite_export._no_such_worker"):
        assert words in message, (words, message)
    assert "\n" not in message and not os.path.exists(path)
    return None


def check_experiment_harness_exports_a_keras3_model(tmp):
    if REBUILT:
        return "the harness trains tf_keras models; its export step is the same call (checked on tensorflow)"
    from tfprune.experiment import export

    plain = sequential_model()
    model = tfprune.apply_masks(plain, block_masks(plain, {"fc0", "fc1"}))
    x = np.random.default_rng(3).standard_normal((64, 12, 12, 1)).astype(np.float32)
    config = types.SimpleNamespace(out_dir=tmp, quantization="none")
    datasets = types.SimpleNamespace(x_train=x, x_test=x[:32])
    out = export.export_tflite(model, config, datasets, log=lambda *a: None)
    assert "error" not in out and out["written"] and out["encoding"] == "sparse", out
    assert os.path.isfile(os.path.join(tmp, export.TFLITE_FILE))
    return None


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items() if name.startswith("check_")}


def main(names):
    for name in names or list(CHECKS):
        start = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            skipped = CHECKS[name](tmp)
        print(f"ok {name} ({time.time() - start:.1f} s)" + (f" [part not run here: {skipped}]" if skipped else ""),
              flush=True)
    print(f"all {len(names or CHECKS)} checks passed on {BACKEND}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
