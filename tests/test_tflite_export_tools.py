"""tflite_export.inspect / benchmark / compare and the `python -m tflite_export` binary."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import tflite_export
from tflite_export import _flatbuf
from tflite_helpers import inputs, mlp, sparsify

pytestmark = pytest.mark.filterwarnings("ignore:Statistics for quantized inputs")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def convert(model, quantization="none", rep=None):
    """Plain converter call (not tflite_export.export), to build files with known encodings."""
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY]
    if quantization == "int8":
        converter.optimizations.append(tf.lite.Optimize.DEFAULT)
        converter.representative_dataset = lambda: ([r[None]] for r in rep)
    return converter.convert()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    """fc0 element-wise 90% (CSR), fc1 (4, 1) blocks 90% (block 1x4), fc2 untouched (dense)."""
    model = mlp((64, 48, 32, 16))
    sparsify(model, None, layers={"fc0": (0.9, None), "fc1": (0.9, (4, 1))})
    path = tmp_path_factory.mktemp("mixed") / "mixed.tflite"
    path.write_bytes(convert(model))
    return model, path


def by_shape(report):
    return {t.shape: t for t in report.tensors if len(t.shape) == 2}


def test_inspect_reports_dense_csr_and_block_1x4(mixed):
    model, path = mixed
    report = tflite_export.inspect(path)
    rows = by_shape(report)
    assert rows[(48, 64)].encoding == "CSR"
    assert rows[(32, 48)].encoding == "block 1x4"
    assert rows[(16, 32)].encoding == "dense"
    assert report.ops == {"DENSIFY": 1, "FULLY_CONNECTED": 3}
    assert {t.shape for t in report.sparse_tensors()} == {(48, 64), (32, 48)}
    assert rows[(48, 64)].consumers == ("DENSIFY",)
    assert rows[(32, 48)].consumers == ("FULLY_CONNECTED",)
    # zero fractions are of the logical tensor, decoded from the sparse storage
    for layer, shape in (("fc0", (48, 64)), ("fc1", (32, 48)), ("fc2", (16, 32))):
        kernel = model.get_layer(layer).get_weights()[0]
        assert rows[shape].zero_fraction == pytest.approx(float((kernel == 0).mean()), abs=1e-12)
    assert rows[(16, 32)].zero_fraction == 0.0
    # a CSR weight stores only the non-zeros (+ indices): far below 4 bytes per weight
    assert rows[(48, 64)].bytes < 0.4 * 48 * 64 * 4
    assert rows[(16, 32)].bytes == 16 * 32 * 4
    assert report.size_bytes == os.path.getsize(path)
    assert 0 < report.gzip_bytes < report.size_bytes


def test_inspect_reports_block_1x16_for_int8(tmp_path):
    model = sparsify(mlp((64, 48, 32, 16)), 0.9, block=(16, 1))
    path = tmp_path / "b16.tflite"
    path.write_bytes(convert(model, "int8", inputs(model, 16)))
    rows = by_shape(tflite_export.inspect(path))
    assert {rows[s].encoding for s in ((48, 64), (32, 48), (16, 32))} == {"block 1x16"}
    assert {rows[s].dtype for s in ((48, 64), (32, 48), (16, 32))} == {"int8"}


def test_decoding_reproduces_the_weights_exactly(mixed):
    model, path = mixed
    fbm = _flatbuf.load_path(str(path))
    decoded = {}
    for t in fbm.subgraphs[0].tensors:
        if _flatbuf.is_sparse(t):
            dense, in_range = _flatbuf.decode_sparse(fbm, t)
            assert in_range
            decoded[dense.shape] = dense
    assert np.array_equal(decoded[(48, 64)], model.get_layer("fc0").get_weights()[0].T)
    assert np.array_equal(decoded[(32, 48)], model.get_layer("fc1").get_weights()[0].T)


def test_inspect_prints_and_serialises(mixed):
    _, path = mixed
    report = tflite_export.inspect(path, min_elements=64)
    assert all(np.prod(t.shape) >= 64 for t in report.tensors)
    d = json.loads(json.dumps(report.to_dict()))
    assert d["ops"]["DENSIFY"] == 1 and d["size_bytes"] == os.path.getsize(path)
    text = str(report)
    for part in ("CSR", "block 1x4", "dense", "DENSIFY: 1", "gzip"):
        assert part in text
    assert tflite_export.inspect(path.read_bytes()).size_bytes == report.size_bytes


def test_inspect_bad_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.tflite"):
        tflite_export.inspect(tmp_path / "missing.tflite")


# --- benchmark / compare -----------------------------------------------------------------

def test_benchmark_measures_each_resolver_in_a_fresh_process(mixed):
    _, path = mixed
    report = tflite_export.benchmark(path, runs=5, warmup=1)
    assert [r.resolver for r in report.rows] == ["default", "builtin"]
    for r in report.rows:
        assert r.error is None and r.runtime == "ai_edge_litert"
        assert 0 < r.p10_ms <= r.median_ms <= r.p90_ms
        assert 0 < r.rss_baseline_mib <= r.rss_after_load_mib <= r.peak_rss_mib
        assert r.model_rss_mib == pytest.approx(r.peak_rss_mib - r.rss_baseline_mib)
        # TensorFlow (hundreds of MiB, imported in this test process) is not in the worker
        assert r.rss_baseline_mib < 200
    assert json.loads(json.dumps(report.to_dict()))["rows"][0]["resolver"] == "default"
    assert "median ms" in str(report)


def test_benchmark_reports_a_model_xnnpack_cannot_prepare(tmp_path):
    model = sparsify(mlp((64, 48, 32, 16)), 0.9)
    path = tmp_path / "csr8.tflite"  # int8 + CSR + DENSIFY, written on purpose (case 4)
    path.write_bytes(convert(model, "int8", inputs(model, 16)))
    report = tflite_export.benchmark(path, runs=3, warmup=1)
    assert "prepare" in report.row("default").error and report.row("default").median_ms is None
    assert report.row("builtin").error is None and report.row("builtin").median_ms > 0


@pytest.mark.parametrize("kwargs,words", [
    ({"threads": 0}, ["threads", "0", ">= 1"]),
    ({"runs": 0}, ["runs", "0", ">= 1"]),
    ({"warmup": -1}, ["warmup", "-1", ">= 0"]),
    ({"resolvers": ("gpu",)}, ["resolver", "'gpu'", "'default'", "'builtin'"]),
    ({"resolvers": "default"}, ["resolvers", "'default'", "sequence"]),
])
def test_benchmark_bad_arguments(mixed, kwargs, words):
    _, path = mixed
    with pytest.raises(ValueError) as info:
        tflite_export.benchmark(path, **kwargs)
    for w in words:
        assert w in str(info.value)
    with pytest.raises(FileNotFoundError):
        tflite_export.benchmark(str(path) + ".missing")


def test_compare_reports_ratios_side_by_side(mixed, tmp_path):
    model, sparse_path = mixed
    dense_path = tmp_path / "dense.tflite"
    tflite_export.export(model, dense_path, sparse=False)
    report = tflite_export.compare(dense_path, sparse_path, runs=5, warmup=1, rounds=1)
    d, s = os.path.getsize(dense_path), os.path.getsize(sparse_path)
    assert report.sizes["raw"] == (d, s)
    ratios = report.ratios()
    assert ratios["size_raw"] == pytest.approx(s / d) and ratios["size_raw"] < 0.6
    for resolver in ("default", "builtin"):
        assert ratios[f"median_ms_{resolver}"] > 0
        assert ratios[f"peak_rss_mib_{resolver}"] > 0
    text = str(report)
    assert "latency ms [default]" in text and "sparse/dense" in text
    assert json.loads(json.dumps(report.to_dict()))["ratios"]["size_raw"] == ratios["size_raw"]


# --- command line --------------------------------------------------------------------------

def cli(*args, timeout=240):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run([sys.executable, "-m", "tflite_export", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.parametrize("args,words", [
    (["--model=/nonexistent.h5", "--out=/tmp/x.tflite"], ["--model", "existing"]),
    (["--quantization=int4"], ["quantization", "int4", "none", "int8"]),
    (["--block=8x1"], ["--block", "16x1", "auto"]),
    (["--quantization=int8"], ["--representative_data"]),
    (["--out=/nonexistent_dir/m.tflite"], ["--out", "existing directory"]),
])
def test_cli_rejects_bad_flags(mixed, tmp_path, args, words):
    _, path = mixed
    base = {"--model": str(path), "--out": str(tmp_path / "m.tflite")}
    for a in args:
        base[a.split("=")[0]] = a.split("=", 1)[1]
    proc = cli(*[f"{k}={v}" for k, v in base.items()], timeout=60)
    assert proc.returncode != 0
    for w in words:
        assert w in proc.stderr, proc.stderr[-2000:]
    assert not (tmp_path / "m.tflite").exists()


def test_cli_exports_a_tfmot_wrapped_h5_and_prints_everything(tmp_path):
    import tensorflow_model_optimization as tfmot

    pruned = tfmot.sparsity.keras.prune_low_magnitude(
        mlp((64, 48, 32, 16), seed=2), pruning_schedule=tfmot.sparsity.keras.ConstantSparsity(0.9, 0))
    rng = np.random.default_rng(0)
    for layer in pruned.layers:
        for _, mask_var, _ in getattr(layer, "pruning_vars", []):
            blocks = rng.random((mask_var.shape[0] // 4, mask_var.shape[1])) >= 0.9
            mask_var.assign(np.repeat(blocks, 4, axis=0).astype(np.float32))
    model_path = tmp_path / "pruned.h5"
    pruned.save(model_path)
    data = tmp_path / "calib.npz"
    np.savez(data, x=inputs(pruned, 20))
    out, js = tmp_path / "m.tflite", tmp_path / "r.json"
    proc = cli(f"--model={model_path}", f"--out={out}", f"--representative_data={data}",
               "--block=4x1", "--runs=3", f"--json={js}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for part in ("WRITTEN", "pruning wrappers stripped: True", "block 1x4", "Verification",
                 "FULLY_CONNECTED: 3", "latency ms [builtin]", "sparse/dense"):
        assert part in proc.stdout, part
    report = json.loads(js.read_text())
    assert report["export"]["encoding"] == "sparse"
    assert report["compare"]["ratios"]["size_raw"] < 0.3
    assert os.path.isfile(out)


def test_cli_quantization_smallest(tmp_path):
    model = sparsify(mlp((64, 48, 32, 16)), 0.9, block=(16, 1))
    model_path = tmp_path / "m.h5"
    model.save(model_path)
    data = tmp_path / "calib.npz"
    np.savez(data, x=inputs(model, 200))
    out, js = tmp_path / "m.tflite", tmp_path / "r.json"
    proc = cli(f"--model={model_path}", f"--out={out}", f"--representative_data={data}",
               "--quantization=smallest", "--nobenchmark", f"--json={js}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "quantization='smallest'" in proc.stdout
    report = json.loads(js.read_text())["export"]
    assert report["quantization_requested"] == "smallest"
    assert [c["quantization"] for c in report["candidates"]] == ["none", "float16", "dynamic", "int8"]
    assert report["size_bytes"] == os.path.getsize(out)
