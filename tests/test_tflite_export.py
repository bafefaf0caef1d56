"""tflite_export.export: parity per quantization, the five known-wrong combinations, -0.0,
atomic writes and argument errors.  Models are tiny and built with numpy masks."""

import dataclasses
import json
import os
import stat

import numpy as np
import pytest

import tflite_export
from tflite_export import _runtime, arguments, rules, verification
from tflite_helpers import (cnn, float_buffers, inputs, mlp, op_names, rel_err, run_tflite,
                            sparsify)

# In-dims 64, 48, 32 are multiples of 16, so (16, 1) blocks never leave a partial block.
DIMS = (64, 48, 32, 16)
SHAPES = {"fc0": (48, 64), "fc1": (32, 48), "fc2": (16, 32)}  # TFLite [out, in]
RESOLVERS = ("default", "builtin")
# Calibration samples for the int8 tests whose models, calibrated on the 16 or 32 random samples
# used before, are outside the 0.1 bound on fresh inputs of the same distribution (p99 0.17-0.22
# on the exporter's in-range inputs; 0.13-0.37 on 1,000 fresh normals), which export now
# verifies and refuses (issue 11, item 4).  200 is the exporter's calibration maximum.
CALIBRATION = 200


def encodings_by_shape(path):
    return {t.shape: t.encoding for t in tflite_export.inspect(path, min_elements=64).tensors
            if len(t.shape) == 2}


def weight_bytes(path):
    """Bytes of the 2-D (FC weight) tensors, values plus sparse indices."""
    return sum(t.bytes for t in tflite_export.inspect(path).tensors if len(t.shape) == 2)


def weight_bytes_dense(quantization):
    n = sum(a * b for a, b in SHAPES.values())
    return n * {"none": 4, "float16": 2, "dynamic": 1, "int8": 1}[quantization]


def export_ok(model, path, **kw):
    report = tflite_export.export(model, path, **kw)
    assert report.written and os.path.isfile(path)
    assert len(report.verification) >= 2
    return report


@pytest.fixture(scope="module")
def block16_model():
    return sparsify(mlp(DIMS), 0.9, block=(16, 1))


# Expected encoding of each weight after export, per quantization, for (16, 1) masks.
EXPECTED = {
    "none": {"fc0": "block 1x4", "fc1": "block 1x4", "fc2": "block 1x4"},
    # converter bug fixed by inserting DENSIFY in front of DEQUANTIZE
    "float16": {"fc0": "block 1x4", "fc1": "block 1x4", "fc2": "block 1x4"},
    # any block-sparse FC in a dynamic-range model is wrong under XNNPACK -> dense (fc2 has
    # < 1024 weights, so the converter keeps it float32 1x4: NaN under XNNPACK as well)
    "dynamic": {"fc0": "dense", "fc1": "dense", "fc2": "dense"},
    "int8": {"fc0": "block 1x16", "fc1": "block 1x16", "fc2": "block 1x16"},
}


@pytest.mark.parametrize("quantization", ["none", "float16", "dynamic", "int8"])
def test_every_quantization_round_trips_with_parity(block16_model, tmp_path, quantization):
    x = inputs(block16_model, CALIBRATION)
    path = tmp_path / f"m_{quantization}.tflite"
    report = export_ok(block16_model, path, quantization=quantization, representative_data=x,
                       block="auto")
    assert report.encoding == ("dense" if quantization == "dynamic" else "sparse")
    ref = block16_model.predict(x, verbose=0)
    tol = tflite_export.TOLERANCES[quantization][0]
    for resolver in RESOLVERS:  # measured here, independently of the report
        err = rel_err(run_tflite(path, x, resolver), ref)
        assert err <= tol, (resolver, err)
        if quantization == "none":
            assert err < 1e-5
    assert all(v.passed for v in report.verification)
    got = encodings_by_shape(path)
    assert {layer: got[shape] for layer, shape in SHAPES.items()} == EXPECTED[quantization]
    assert report.size_bytes == os.path.getsize(path) <= report.dense_twin_bytes
    if quantization != "dynamic":  # weights: ~10% kept (+ block indices) of 5120
        assert weight_bytes(path) < 0.3 * weight_bytes_dense(quantization)
    assert [l.block for l in report.layers] == ["(16,1)"] * 3


def test_float16_block_gets_densify_instead_of_nan(block16_model, tmp_path):
    path = tmp_path / "f16.tflite"
    report = export_ok(block16_model, path, quantization="float16")
    assert report.fired_rules() == {"fp16_block_dequantize"}
    ops = op_names(path)
    assert ops.count("DENSIFY") == 3 and ops.count("DEQUANTIZE") >= 3
    # the converter wrote 1.15.0 (float16 DEQUANTIZE); DENSIFY needs a 2.2.0 runtime
    assert tflite_export.inspect(path).min_runtime_version == "2.2.0"
    for resolver in RESOLVERS:
        assert np.isfinite(run_tflite(path, inputs(block16_model), resolver)).all()
    assert weight_bytes(path) < 0.3 * weight_bytes_dense("float16")


def test_case1_partial_block_float_is_stored_dense(tmp_path):
    # Dense with input dim 6 and (4, 1) blocks: the converter drops rows 4..5 of every block row.
    model = sparsify(mlp((6, 32, 16)), 0.5, block=(4, 1), seed=3)
    path = tmp_path / "p.tflite"
    report = export_ok(model, path, block=(4, 1))
    rules = {t.layer: t.rule for t in report.tensors}
    assert rules == {"fc0": "partial_block", "fc1": None}
    assert "dim 1 = 6 is not a multiple of 4" in next(t.reason for t in report.tensors if t.rule)
    assert report.layers[0].partial_block_rows == 2
    assert encodings_by_shape(path)[(32, 6)] == "dense"
    assert encodings_by_shape(path)[(16, 32)] == "block 1x4"
    x = inputs(model)
    for resolver in RESOLVERS:
        assert rel_err(run_tflite(path, x, resolver), model.predict(x, verbose=0)) < 1e-5


def test_case1_partial_block_int8(tmp_path):
    model = sparsify(mlp((40, 32, 16)), 0.6, block=(16, 1), seed=1)
    x = inputs(model, CALIBRATION)
    path = tmp_path / "p8.tflite"
    report = export_ok(model, path, quantization="int8", representative_data=x)
    assert {t.layer: t.rule for t in report.tensors} == {"fc0": "partial_block", "fc1": None}
    enc = encodings_by_shape(path)
    assert enc[(32, 40)] == "dense" and enc[(16, 32)] == "block 1x16"
    for resolver in RESOLVERS:
        assert rel_err(run_tflite(path, x, resolver), model.predict(x, verbose=0)) < 0.1


def test_case3_dynamic_range_block_is_stored_dense(block16_model, tmp_path):
    path = tmp_path / "drq.tflite"
    report = export_ok(block16_model, path, quantization="dynamic")
    assert {t.layer: t.rule for t in report.tensors} == {
        "fc0": "drq_block_xnnpack", "fc1": "drq_block_xnnpack", "fc2": "drq_block_xnnpack"}
    assert {t.layer: t.dtype for t in report.tensors} == {
        "fc0": "int8", "fc1": "int8", "fc2": "float32"}
    x = inputs(block16_model)
    assert rel_err(run_tflite(path, x, "default"), block16_model.predict(x, verbose=0)) < 0.05


def test_case4_int8_element_sparse_never_written_behind_densify(tmp_path):
    model = sparsify(mlp(DIMS), 0.9)  # element-wise: CSR + DENSIFY from the converter
    x = inputs(model, 32)
    path = tmp_path / "csr8.tflite"
    report = export_ok(model, path, quantization="int8", representative_data=x)
    assert {t.rule for t in report.tensors} == {"int8_densify_xnnpack"}
    assert report.encoding == "dense"
    assert "DENSIFY" not in op_names(path)
    run_tflite(path, x, "default")  # prepares under XNNPACK


def test_case5_sparse_int8_larger_than_dense_is_not_written(tmp_path):
    model = sparsify(mlp(DIMS), 0.5)  # 50% element-wise: int8 CSR costs value + index per weight
    x = inputs(model, 32)
    path = tmp_path / "big8.tflite"
    report = export_ok(model, path, quantization="int8", representative_data=x)
    assert {t.rule for t in report.tensors if t.shape != (16, 32)} == {"larger_than_dense"}
    assert report.size_bytes <= report.dense_twin_bytes
    assert all(e == "dense" for e in encodings_by_shape(path).values())


def test_float_csr_is_kept(tmp_path):
    model = sparsify(mlp(DIMS), 0.9)
    path = tmp_path / "csr.tflite"
    report = export_ok(model, path)
    assert report.encoding == "sparse" and not report.fired_rules()
    assert set(encodings_by_shape(path).values()) == {"CSR"}
    assert op_names(path).count("DENSIFY") == 3


# --- the same cases with the rules switched off: verification alone must refuse them ---------

def _case(name, tmp_path):
    if name == "partial_block":
        model = sparsify(mlp((6, 32, 16)), 0.5, block=(4, 1), seed=3)
        return model, {}
    if name == "fp16_block":
        return sparsify(mlp(DIMS), 0.9, block=(16, 1)), {"quantization": "float16"}
    if name == "drq_block":
        return sparsify(mlp(DIMS), 0.9, block=(16, 1)), {"quantization": "dynamic"}
    model = sparsify(mlp(DIMS), 0.9)
    return model, {"quantization": "int8", "representative_data": inputs(model, 32)}


@pytest.mark.parametrize("case", ["partial_block", "fp16_block", "drq_block", "int8_densify"])
def test_verification_alone_catches_known_bad_cases(case, tmp_path, monkeypatch):
    monkeypatch.setattr(rules, "known_issue_rules_enabled", lambda: False)
    model, kw = _case(case, tmp_path)
    path = tmp_path / "m.tflite"
    report = tflite_export.export(model, path, **kw)
    assert report.encoding == "dense", str(report)
    assert any("failed verification" in f for f in report.fallbacks)
    sparse = {v.resolver: v for v in report.verification if v.model == "sparse"}
    if case == "partial_block":
        assert not sparse["default"].passed and not sparse["builtin"].passed
        assert sparse["builtin"].rel_err_twin > 1e-2
    elif case == "fp16_block":
        assert all(v.error == "NaN/Inf in the outputs" for v in sparse.values())
    elif case == "drq_block":
        assert not sparse["default"].passed and sparse["builtin"].passed
    else:
        assert "prepare" in sparse["default"].error and sparse["builtin"].passed
    # what was written is the verified dense twin
    assert report.size_bytes == report.dense_twin_bytes == os.path.getsize(path)


def test_size_guard_catches_larger_sparse_file(tmp_path, monkeypatch):
    monkeypatch.setattr(rules, "known_issue_rules_enabled", lambda: False)
    monkeypatch.setattr(_runtime, "RESOLVERS", ("builtin",))  # so the int8 CSR model verifies
    model = sparsify(mlp(DIMS), 0.5)
    x = inputs(model, 32)
    report = tflite_export.export(model, tmp_path / "m.tflite", quantization="int8",
                                  representative_data=x)
    assert any("larger than its dense twin" in f for f in report.fallbacks)
    assert report.encoding == "dense" and report.size_bytes == report.dense_twin_bytes


# --- -0.0 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("quantization,sparse", [("none", True), ("none", False), ("float16", True)])
def test_no_negative_zero_in_exported_weights(tmp_path, quantization, sparse):
    model = sparsify(mlp(DIMS), 0.9, block=(4, 1), negative_zeros=True)
    w = model.layers[1].get_weights()
    w[1][:5] = -0.0
    model.layers[1].set_weights(w)
    before = [v.copy() for v in model.get_weights()]
    n_neg = sum(int(((v == 0) & np.signbit(v)).sum()) for v in before)
    assert n_neg > 200
    path = tmp_path / "z.tflite"
    report = export_ok(model, path, quantization=quantization, sparse=sparse)
    assert report.negative_zeros_fixed == n_neg
    buffers = float_buffers(path)
    assert sum(v.size for _, v in buffers) > 300
    for name, values in buffers:
        assert not ((values == 0) & np.signbit(values)).any(), name
    assert tflite_export.inspect(path).negative_zeros == 0
    # the caller's model is untouched, -0.0 included
    for a, b in zip(before, model.get_weights()):
        assert np.array_equal(np.signbit(a), np.signbit(b)) and np.array_equal(a, b)


# --- pruning wrappers ---------------------------------------------------------------------

def test_tfmot_wrappers_are_stripped_and_masks_applied(tmp_path):
    import tensorflow_model_optimization as tfmot

    plain = mlp(DIMS, seed=4)
    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        plain, pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.9, 0))
    rng = np.random.default_rng(0)
    expected = mlp(DIMS, seed=4)
    for layer in pruned.layers:
        for weight, mask_var, _ in getattr(layer, "pruning_vars", []):
            m = (rng.random(mask_var.shape) >= 0.9).astype(np.float32)
            mask_var.assign(m)
            target = expected.get_layer(layer.layer.name)
            target.set_weights([weight.numpy() * m, target.get_weights()[1]])
    path = tmp_path / "w.tflite"
    report = export_ok(pruned, path)
    assert report.stripped and report.encoding == "sparse"
    x = inputs(expected)
    for resolver in RESOLVERS:
        assert rel_err(run_tflite(path, x, resolver), expected.predict(x, verbose=0)) < 1e-5
    for _, values in float_buffers(path):
        assert not ((values == 0) & np.signbit(values)).any()


# --- atomic write ------------------------------------------------------------------------

def _leftovers(directory):
    return sorted(p for p in os.listdir(directory) if p.endswith(".tmp") or p.startswith("."))


def test_failed_verification_writes_nothing(block16_model, tmp_path, monkeypatch):
    def failing(label, model_bytes, inputs_, keras_out, twin_outs, tols):
        rows = [tflite_export.VerifyResult(label, r, 1.0, 1.0, tols[0], None, tols[1], False,
                                           "outside tolerance") for r in RESOLVERS]
        return rows, {r: None for r in RESOLVERS}

    monkeypatch.setattr(verification, "verify", failing)
    path = tmp_path / "never.tflite"
    with pytest.raises(tflite_export.ExportError, match="nothing written") as info:
        tflite_export.export(block16_model, path)
    assert not path.exists()
    assert _leftovers(tmp_path) == []
    assert info.value.report is not None and not info.value.report.written
    assert any("failed verification" in f for f in info.value.report.fallbacks)


def test_refused_export_keeps_existing_file(block16_model, tmp_path, monkeypatch):
    path = tmp_path / "old.tflite"
    path.write_bytes(b"previous")
    monkeypatch.setattr(verification, "verify", lambda label, *a: (
        [tflite_export.VerifyResult(label, "default", None, None, 0, None, 0, False, "boom")], {}))
    with pytest.raises(tflite_export.ExportError):
        tflite_export.export(block16_model, path)
    assert path.read_bytes() == b"previous"
    assert _leftovers(tmp_path) == []


def test_crash_during_write_leaves_no_partial_file(block16_model, tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    path = tmp_path / "m.tflite"
    with pytest.raises(OSError, match="disk full"):
        tflite_export.export(block16_model, path)
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_written_file_has_mode_0644(block16_model, tmp_path):
    path = tmp_path / "m.tflite"
    tflite_export.export(block16_model, path, sparse=False)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # not mkstemp's 0600


def test_read_only_target_is_replaced_only_with_overwrite(block16_model, tmp_path):
    path = tmp_path / "ro.tflite"
    path.write_bytes(b"previous")
    os.chmod(path, 0o444)
    with pytest.raises(FileExistsError) as info:
        tflite_export.export(block16_model, path, sparse=False)
    message = str(info.value)
    for w in ("path", repr(str(path)), "read-only", "overwrite=True"):
        assert w in message, (w, message)
    assert "\n" not in message
    assert path.read_bytes() == b"previous" and _leftovers(tmp_path) == []
    report = tflite_export.export(block16_model, path, sparse=False, overwrite=True)
    assert report.written and path.read_bytes() != b"previous"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


# --- arguments ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,words", [
    ({"quantization": "int4"}, ["quantization", "'int4'", "'none'", "'float16'", "'dynamic'", "'int8'"]),
    ({"quantization": "int8"}, ["quantization='int8'", "representative_data"]),
    ({"block": (8, 1)}, ["block", "(8, 1)", "'auto'", "(4, 1)", "(16, 1)"]),
    ({"block": "4x1"}, ["block", "'4x1'", "'auto'"]),
    ({"sparse": "yes"}, ["sparse", "'yes'", "True, False"]),
    ({"overwrite": 1}, ["overwrite", "1", "True, False"]),
    ({"tolerance": -1.0}, ["tolerance", "-1.0", "positive float"]),
    ({"verify_with": np.zeros((4, 3), np.float32)}, ["verify_with", "(4, 3)", "(n_samples,)"]),
    ({"representative_data": np.zeros((4, 64, 1), np.float32), "quantization": "int8"},
     ["representative_data", "(4, 64, 1)"]),
])
def test_bad_arguments_raise_clear_errors(block16_model, tmp_path, kwargs, words):
    path = tmp_path / "m.tflite"
    with pytest.raises(ValueError) as info:
        tflite_export.export(block16_model, path, **kwargs)
    for w in words:
        assert w in str(info.value), (w, str(info.value))
    assert not path.exists()


def test_bad_paths_and_models(block16_model, tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        tflite_export.export(block16_model, tmp_path / "missing" / "m.tflite")
    with pytest.raises(ValueError, match="is a directory"):
        tflite_export.export(block16_model, tmp_path)
    with pytest.raises(ValueError, match="tf_keras Model"):
        tflite_export.export(object(), tmp_path / "m.tflite")


# --- block argument ----------------------------------------------------------------------

def test_block_argument_checks_the_masks(tmp_path):
    four = sparsify(mlp(DIMS), 0.9, block=(4, 1))
    element = sparsify(mlp(DIMS), 0.9)
    with pytest.raises(ValueError, match=r"block=\(16, 1\).*fc0.*structure \(4,1\)"):
        tflite_export.export(four, tmp_path / "a.tflite", block=(16, 1))
    with pytest.raises(ValueError, match=r"block=\(4, 1\).*fc0.*structure none"):
        tflite_export.export(element, tmp_path / "b.tflite", block=(4, 1))
    assert not any(p.endswith(".tflite") for p in os.listdir(tmp_path))
    report = export_ok(four, tmp_path / "c.tflite", block=(4, 1))
    assert [l.block for l in report.layers] == ["(4,1)"] * 3
    report = export_ok(element, tmp_path / "d.tflite", block="auto")
    assert [l.block for l in report.layers] == ["none"] * 3


def test_block_4_with_int8_notes_the_missing_fast_path(tmp_path):
    model = sparsify(mlp(DIMS), 0.9, block=(4, 1))
    x = inputs(model, CALIBRATION)
    report = export_ok(model, tmp_path / "m.tflite", quantization="int8", representative_data=x,
                       block=(4, 1))
    assert any("needs (16, 1) blocks" in n for n in report.notes)


# --- inputs, outputs, report -------------------------------------------------------------

def test_verification_inputs_default_and_multi_io(tmp_path):
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    a, b = keras.Input((16,), name="a"), keras.Input((8,), name="b")
    h = keras.layers.Dense(32, activation="relu", name="h")(keras.layers.Concatenate()([a, b]))
    model = keras.Model([a, b], [keras.layers.Dense(3, name="z")(h), keras.layers.Dense(5, name="y")(h)])
    sparsify(model, 0.8, block=(4, 1))
    report = export_ok(model, tmp_path / "multi.tflite")
    assert report.verify_samples == 16 and "random" in report.verify_source
    assert all(v.passed and v.rel_err_keras < 1e-5 for v in report.verification)
    with pytest.raises(ValueError, match="missing inputs"):
        tflite_export.export(model, tmp_path / "x.tflite", verify_with={"a": np.zeros((2, 16))})
    data = {"a": np.ones((5, 16), np.float32), "b": np.ones((5, 8), np.float32)}
    report = export_ok(model, tmp_path / "multi2.tflite", verify_with=data)
    assert report.verify_samples == 5 and report.verify_source == "verify_with"


def test_report_prints_and_serialises(block16_model, tmp_path):
    x = inputs(block16_model, 40)
    report = export_ok(block16_model, tmp_path / "m.tflite", quantization="int8",
                       representative_data=x, block="auto")
    assert report.verify_samples == 16 and "representative_data" in report.verify_source
    d = json.loads(json.dumps(report.to_dict()))
    assert d["written"] and d["encoding"] == "sparse" and d["quantization"] == "int8"
    assert 0 < d["size_ratio_vs_dense_twin"] < 1
    assert {v["resolver"] for v in d["verification"]} == set(RESOLVERS)
    text = str(report)
    for part in ("WRITTEN", "Verification", "block 1x16", "dense twin", "fc0"):
        assert part in text


# --- errors the user can cause (issue 11, item 12) ---------------------------------------

@pytest.mark.parametrize("argname", ["representative_data", "verify_with"])
def test_non_finite_data_is_reported_as_the_input(block16_model, tmp_path, argname):
    x = inputs(block16_model, 32)
    x[3, 5] = np.nan
    x[7, 0], x[7, 1] = np.inf, -np.inf
    kw = {argname: x, "quantization": "int8" if argname == "representative_data" else "none"}
    path = tmp_path / "m.tflite"
    with pytest.raises(ValueError) as info:
        tflite_export.export(block16_model, path, **kw)
    message = str(info.value)
    for w in (argname, "'x'", "3 non-finite values", "2 of 32 samples", "allowed: finite"):
        assert w in message, (w, message)
    assert "\n" not in message and not path.exists()


def _model_with_op(op):
    import tensorflow as tf
    import tf_keras as keras

    fn = {"Igamma": lambda t: tf.math.igamma(t, t),  # no TFLite kernel at all (custom op)
          "MatrixDeterminant": lambda t: tf.reshape(tf.linalg.det(tf.reshape(t, (-1, 4, 4))),
                                                    (-1, 1))}[op]  # TF Select only
    inp = keras.Input((16,), name="x")
    h = keras.layers.Dense(16, name="fc0")(inp)
    h = keras.layers.Lambda(fn, name="odd_op")(h)
    return keras.Model(inp, keras.layers.Dense(4, name="fc1")(h))


@pytest.mark.parametrize("op", ["Igamma", "MatrixDeterminant"])
def test_unsupported_op_is_an_export_error_naming_layer_and_op(tmp_path, op):
    path = tmp_path / "m.tflite"
    with pytest.raises(tflite_export.ExportError) as info:
        tflite_export.export(_model_with_op(op), path)
    message = str(info.value)
    for w in (f"op {op}", "layer 'odd_op'", "nothing written", "TFLite builtin"):
        assert w in message, (w, message)
    assert "\n" not in message and len(message) < 600
    error = info.value  # no chained TensorFlow traceback
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    assert op in info.value.converter_message
    assert not path.exists() and _leftovers(tmp_path) == []


def _fail_in(directory, original, error):
    """A stand-in for ``original`` that raises ``error`` for files in ``directory`` only."""
    def fake(*args, **kwargs):
        target = kwargs.get("dir") or (args[0] if args and isinstance(args[0], str) else None)
        if isinstance(args[0] if args else None, int) or target == str(directory):
            raise error
        return original(*args, **kwargs)
    return fake


@pytest.mark.parametrize("failure", ["disk full", "unwritable directory"])
def test_write_errors_name_the_file_and_leave_nothing(block16_model, tmp_path, monkeypatch, failure):
    import errno
    import tempfile

    path = tmp_path / "m.tflite"
    model = block16_model
    if failure == "disk full":  # ENOSPC when the bytes are flushed to disk
        error = OSError(errno.ENOSPC, "No space left on device")
        real_fsync = os.fsync
        monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(error)
                            if os.path.dirname(os.readlink(f"/proc/self/fd/{fd}")) == str(tmp_path)
                            else real_fsync(fd))
    else:  # a directory this process may not create files in (root ignores chmod, so simulated)
        error = PermissionError(errno.EACCES, "Permission denied")
        monkeypatch.setattr(tempfile, "mkstemp", _fail_in(tmp_path, tempfile.mkstemp, error))
    with pytest.raises(OSError) as info:
        tflite_export.export(model, path, sparse=False)
    message = str(info.value)
    assert repr(str(path)) in message and error.strerror in message, message
    assert isinstance(info.value, type(error)) and info.value.errno == error.errno
    assert "\n" not in message
    assert os.listdir(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_is_refused_before_any_work(block16_model, tmp_path):
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(ValueError, match="not writable"):
            tflite_export.export(block16_model, tmp_path / "m.tflite")
    finally:
        os.chmod(tmp_path, 0o755)


# --- an honest error bound: a few hundred verification samples (issue 11, item 4) ----------

def _twin_feature_model():
    """Branch "diff" is relu(x[:8] - x[8:]), branch "pos" relu(x[:8]); the output sums both."""
    import tf_keras as keras

    inp = keras.Input((16,), name="x")
    eye = np.eye(8, dtype=np.float32)
    diff = keras.layers.Dense(8, activation="relu", name="diff")
    pos = keras.layers.Dense(8, activation="relu", name="pos")
    out = keras.layers.Dense(4, name="out")
    model = keras.Model(inp, out(keras.layers.Concatenate()([diff(inp), pos(inp)])))
    diff.set_weights([np.concatenate([eye, -eye]), np.zeros(8, np.float32)])
    pos.set_weights([np.concatenate([eye, 0 * eye]), np.zeros(8, np.float32)])
    out.set_weights([np.random.default_rng(0).uniform(0.5, 1, (16, 4)).astype(np.float32),
                     np.zeros(4, np.float32)])
    return model


def test_int8_error_beyond_the_bound_on_fresh_inputs_is_refused(tmp_path):
    # The data has x[8:] == x[:8]: the "diff" branch is 0 on it, so int8 calibrates a zero range
    # there; inputs that break the correlation (every element still in the data's range) get
    # that branch clipped away.
    model = _twin_feature_model()
    z = np.random.default_rng(0).standard_normal((200, 8)).astype(np.float32)
    x = np.concatenate([z, z], axis=1)
    # what 16 verification samples saw: well inside the bound
    converted = tflite_export.conversion.convert(model, "int8", {"x": x})
    ref = model.predict(x[:16], verbose=0)
    first16 = rel_err(next(iter(_runtime.run_samples(converted, {"x": x[:16]}, "builtin").values())), ref)
    assert first16 < 0.05
    path = tmp_path / "m.tflite"
    with pytest.raises(tflite_export.ExportError, match="nothing written") as info:
        tflite_export.export(model, path, quantization="int8", representative_data=x)
    assert not path.exists()
    report = info.value.report
    assert report.verify_samples == 16 and report.verify_total >= 256
    for v in report.verification:
        assert not v.passed and v.rel_err_keras > 0.1 and v.samples == report.verify_total
        assert v.p99_rel_err_keras <= v.rel_err_keras
    assert "p99" in str(report) and f"{report.verify_total} samples" in str(report)


def test_report_gives_max_and_p99_error_over_a_few_hundred_samples(block16_model, tmp_path):
    x = inputs(block16_model, CALIBRATION)
    report = export_ok(block16_model, tmp_path / "m.tflite", quantization="int8",
                       representative_data=x)
    assert report.verify_samples == 16 and report.verify_total >= 256
    assert sum(n for _, n in report.verify_parts) == report.verify_total
    for v in report.verification:  # int8: the bound is on the 99th percentile (KERAS_BOUND)
        assert v.samples == report.verify_total and v.bound_on == "p99"
        assert 0 < v.p99_rel_err_keras <= v.tol_keras and v.p99_rel_err_keras <= v.rel_err_keras
    d = json.loads(json.dumps(report.to_dict()))
    written = [v for v in report.verification if v.model == "sparse"]
    assert d["max_rel_err_keras"] == max(v.rel_err_keras for v in written)
    assert d["p99_rel_err_keras"] == max(v.p99_rel_err_keras for v in written)
    text = str(report)
    assert f"on {report.verify_total} samples" in text and "p99" in text
    assert f"max {d['max_rel_err_keras']:.3g}" in text


def test_verification_set_adds_calibration_held_out_and_fresh_in_range_inputs(block16_model):
    from tflite_export import samples

    rep, ver = inputs(block16_model, 300), inputs(block16_model, 10, seed=7)
    calibration, vset = samples.build(block16_model, rep, ver)
    assert np.array_equal(calibration["x"], rep[:200])
    got = vset.inputs["x"]
    assert vset.primary == 10 and vset.source == "verify_with" and len(got) >= 256
    assert np.array_equal(got[:10], ver) and np.array_equal(got[10:310], rep)  # 100 held out
    assert [label for label, _ in vset.parts][:3] == [
        "verify_with", "representative_data (calibration)",
        "representative_data beyond the 200 calibration samples"]
    fresh = got[310:]
    assert len(fresh) == dict(vset.parts)["fresh random, in range"] >= 64
    real = np.concatenate([ver, rep])
    assert (fresh >= real.min(0)).all() and (fresh <= real.max(0)).all()
    assert not any((real == row).all(axis=1).any() for row in fresh)  # new inputs
    again = samples.build(block16_model, rep, ver)[1].inputs["x"]
    assert np.array_equal(got, again)  # deterministic
    # without data: the 16 seeded normal samples as before, then more of them
    _, vset = samples.build(block16_model, None, None)
    assert vset.primary == 16 and len(vset.inputs["x"]) >= 256
    assert np.array_equal(vset.inputs["x"][:16], arguments.random_inputs(block16_model, 16)["x"])


def test_float_bound_stays_on_the_maximum_over_all_samples(block16_model, tmp_path):
    report = export_ok(block16_model, tmp_path / "m.tflite")
    assert report.verify_total >= 256 and dict(report.verify_parts)["fresh random, standard normal"]
    for v in report.verification:
        assert v.bound_on == "max" and v.passed and v.rel_err_keras <= v.tol_keras == 1e-4


# --- dense fallbacks said loudly; quantization="smallest" (issue 11, item 16) ---------------

def _kib(n):
    from tfprune.table import human_bytes

    return human_bytes(n)


@pytest.mark.parametrize("quantization,fallen", [("int8", None), ("dynamic", ["conv1", "fc0"])])
def test_dense_fallback_is_one_prominent_line_naming_the_smaller_verified_option(
        tmp_path, quantization, fallen):
    # int8: every conv / FC weight is int8 behind DENSIFY (XNNPACK cannot prepare it) -> dense
    # file; dynamic: conv1 and fc0 (int8 CSR) go dense, the small ones stay float32 CSR.
    model = sparsify(cnn(), 0.9)
    x = inputs(model, CALIBRATION)
    report = export_ok(model, tmp_path / "m.tflite", quantization=quantization,
                       representative_data=x)
    line = str(report).splitlines()[1]
    assert line == report.fallback_line()
    if fallen is None:
        assert report.encoding == "dense"
        head = f"sparse encoding fell back to dense: {_kib(report.size_bytes)}"
    else:
        assert report.encoding == "sparse"
        assert sorted(t.layer for t in report.tensors if t.final_encoding == "dense") == fallen
        head = (f"sparse encoding fell back to dense for {len(fallen)} of {len(report.tensors)} "
                f"weights ({', '.join(fallen)}): {_kib(report.size_bytes)}")
    verified = [c for c in report.candidates if c.verified and c.quantization != quantization]
    best = min(verified, key=lambda c: c.size_bytes)
    assert best.quantization == "float16" and best.encoding == "sparse"
    assert best.size_bytes < 0.7 * report.size_bytes
    assert line.startswith(head + f"; float16 sparse verified: {_kib(best.size_bytes)}"), line
    # the option named is real: exporting it writes that very file size
    direct = export_ok(model, tmp_path / "f16.tflite", quantization="float16")
    assert direct.encoding == "sparse" and direct.size_bytes == best.size_bytes


def test_no_fallback_line_when_nothing_fell_back(block16_model, tmp_path):
    report = export_ok(block16_model, tmp_path / "m.tflite")
    assert report.fallback_line() is None and report.candidates == []
    assert "fell back" not in str(report)


def test_smallest_keeps_the_smallest_verified_option(block16_model, tmp_path):
    x = inputs(block16_model, CALIBRATION)
    path = tmp_path / "s.tflite"
    report = export_ok(block16_model, path, quantization="smallest", representative_data=x)
    assert report.quantization_requested == "smallest"
    by_q = {c.quantization: c for c in report.candidates}
    assert list(by_q) == ["none", "float16", "dynamic", "int8"]
    kept = by_q[report.quantization]
    assert report.quantization == "int8" and kept.kept and kept.verified
    assert kept.size_bytes == report.size_bytes == os.path.getsize(path)
    for c in by_q.values():
        if c is not kept:  # larger (verified or not: why it was not needed), with a reason
            assert not c.kept and c.reason and c.size_bytes > kept.size_bytes, c
    # verified smallest first: the others were already larger before verification
    assert not any(c.verified for c in by_q.values() if c is not kept)
    assert all("not verified" in c.reason for c in by_q.values() if c is not kept)
    direct = export_ok(block16_model, tmp_path / "d.tflite", quantization="int8",
                       representative_data=x)
    assert direct.size_bytes == report.size_bytes
    text = str(report)
    assert "quantization='smallest'" in text
    for c in report.candidates:
        assert c.quantization in text and _kib(c.size_bytes) in text
    assert json.loads(json.dumps(report.to_dict()))["candidates"][3]["quantization"] == "int8"


def test_smallest_rejects_an_option_that_fails_verification(block16_model, tmp_path, monkeypatch):
    real = verification.verify

    def int8_fails(label, model_bytes, vset, reference, twin_outs, tols):
        results, outs = real(label, model_bytes, vset, reference, twin_outs, tols)
        if tols[2] == "p99":  # int8's statistic
            results = [dataclasses.replace(r, passed=False, error="outside tolerance")
                       for r in results]
        return results, outs

    monkeypatch.setattr(verification, "verify", int8_fails)
    x = inputs(block16_model, CALIBRATION)
    report = export_ok(block16_model, tmp_path / "s.tflite", quantization="smallest",
                       representative_data=x)
    assert report.quantization == "float16" and report.encoding == "sparse"
    int8 = next(c for c in report.candidates if c.quantization == "int8")
    assert not int8.verified and not int8.kept and "failed verification" in int8.reason


def test_smallest_without_representative_data_does_not_try_int8(block16_model, tmp_path):
    report = export_ok(block16_model, tmp_path / "s.tflite", quantization="smallest")
    by_q = {c.quantization: c for c in report.candidates}
    assert report.quantization in ("none", "float16", "dynamic")
    assert by_q["int8"].size_bytes is None and not by_q["int8"].verified
    assert "representative_data" in by_q["int8"].reason


def test_smallest_is_a_listed_quantization_everywhere():
    from tfprune.experiment import config

    assert tflite_export.QUANTIZATIONS == ("none", "float16", "dynamic", "int8", "smallest")
    assert config.QUANTIZATIONS == tflite_export.QUANTIZATIONS
