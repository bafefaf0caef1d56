"""Energy per inference (tfprune.energy) against hand counts: a 2-layer MLP (dense, with a
hand-made mask, SRAM and DRAM, float32 / float16 / int8), a conv layer, block masks, structured
pruning, the reports that carry an estimate, Keras 3 models (TensorFlow and JAX backends, one
process each: tests/keras3_energy_checks.py) against their tf_keras twins, and bad input.

Default costs (pJ): float32 MAC 3.7 + 0.9 = 4.6, float16 MAC 1.1 + 0.4 = 1.5, int8 MAC
0.2 + 0.1 = 0.3; register 1 per 32-bit access, 2 reads per MAC; SRAM 5, DRAM 640 per 32-bit
access; 16-bit indices; each weight and activation moved once; bytes scale the memory costs.
"""
import json

import numpy as np
import pytest
import tf_keras as keras

import tfprune
import tfprune.structured as ts
from tfprune.energy import EnergyCosts, LayerCount, count_layers, estimate, with_mask

L = keras.layers


def mlp(hidden=3):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((4,)), L.Dense(hidden, name="fc1"), L.Dense(2, name="fc2")])


def totals(e):
    return [round(v, 6) for v in (e.compute_pj, e.register_pj, e.weights_pj, e.index_pj, e.activations_pj, e.total_pj)]


# ------------------------------------------------------------------ 2-layer MLP 4 -> 3 -> 2

def test_mlp_counts():
    counts, notes = count_layers(mlp())
    assert [(c.name, c.params, c.reuse, c.inputs, c.outputs, c.sparse) for c in counts] == [
        ("fc1", 12, 1, 4, 3, False), ("fc2", 6, 1, 3, 2, False)]
    assert notes == []


@pytest.mark.parametrize("dtype, expected", [
    # MACs 18; register 18 x 2 x bytes/4; weights 18 x bytes/4 x 5; activations (4+3 + 3+2) x bytes/4 x 5
    ("float32", [18 * 4.6, 36, 90, 0, 60, 18 * 4.6 + 36 + 90 + 60]),      # 268.8
    ("float16", [18 * 1.5, 18, 45, 0, 30, 27 + 18 + 45 + 30]),              # 120
    ("int8", [18 * 0.3, 9, 22.5, 0, 15, 5.4 + 9 + 22.5 + 15]),              # 51.9
])
def test_dense_mlp_in_sram(dtype, expected):
    e = tfprune.estimate_energy(mlp(), masks={}, dtype=dtype)
    assert e.macs == 18 and e.weights_in == "SRAM" and e.activations_in == "SRAM"
    assert e.weight_bytes == 18 * {"float32": 4, "float16": 2, "int8": 1}[dtype]
    assert totals(e) == [round(v, 6) for v in expected]
    assert e.total_uj == pytest.approx(expected[-1] * 1e-6)
    assert e.memory_pj == pytest.approx(expected[-1] - expected[0])


def test_dense_mlp_weights_in_dram_when_they_do_not_fit():
    fits = tfprune.estimate_energy(mlp(), masks={}, costs=EnergyCosts(on_chip_bytes=72))   # 18 x 4 B: fits exactly
    spills = tfprune.estimate_energy(mlp(), masks={}, costs=EnergyCosts(on_chip_bytes=71))
    assert fits.weights_in == "SRAM" and spills.weights_in == "DRAM"
    assert round(spills.weights_pj, 6) == 18 * 640
    assert round(spills.total_pj, 6) == round(18 * 4.6 + 36 + 18 * 640 + 60, 6)          # 11,698.8
    dram_acts = tfprune.estimate_energy(mlp(), masks={}, costs=EnergyCosts(activations_on_chip=False))
    assert dram_acts.activations_in == "DRAM" and round(dram_acts.activations_pj, 6) == 12 * 640


def hand_mask():
    m1 = np.zeros((4, 3), np.float32)
    m1[0, 0] = m1[1, 1] = m1[2, 2] = 1     # fc1 keeps 3 of 12
    return {"fc1": m1, "fc2": np.ones((3, 2), np.float32)}


def test_mlp_with_a_hand_made_mask():
    e = tfprune.estimate_energy(mlp(), hand_mask())
    fc1, fc2 = e.rows
    assert (fc1.stored, fc1.macs, fc1.weight_bytes) == ("element", 3, 3 * 4 + 3 * 2)
    assert (fc2.stored, fc2.macs) == ("dense", 6)
    # 9 MACs x 4.6; 9 x 2 register reads; 9 weights x 5; 3 indices x 2 B / 4 x 5 + 3 address adds x 0.1
    assert totals(e) == [41.4, 18, 45, 7.8, 60, round(41.4 + 18 + 45 + 7.8 + 60, 6)]
    # the same model read from a wrapped model's own masks
    pruned = tfprune.apply_masks(mlp(), hand_mask())
    assert totals(tfprune.estimate_energy(pruned)) == totals(e)


def test_sparse_is_stored_only_when_it_moves_fewer_bytes():
    half = {"fc1": (np.arange(12).reshape(4, 3) % 2).astype(np.float32)}    # 6 of 12 kept
    f32 = tfprune.estimate_energy(mlp(), half)                              # 6 x 4 + 6 x 2 = 36 < 48 B
    i8 = tfprune.estimate_energy(mlp(), half, dtype="int8")                 # 6 x 1 + 6 x 2 = 18 > 12 B
    assert f32.rows[0].stored == "element" and f32.rows[0].macs == 6
    assert i8.rows[0].stored == "dense" and i8.rows[0].macs == 12 and i8.index_pj == 0
    i8_quarter = tfprune.estimate_energy(mlp(), hand_mask(), dtype="int8")  # 3 + 6 = 9 < 12 B
    assert i8_quarter.rows[0].stored == "element"
    forced = estimate([LayerCount("fc1", 12, 1, 4, 3, kept=6, indices=6, sparse=True)], dtype="int8")
    assert forced.rows[0].stored == "element" and forced.rows[0].weight_bytes == 18


# ------------------------------------------------------------------ a conv layer

def conv(padding="valid", strides=1):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6, 6, 2)), L.Conv2D(3, 3, padding=padding, strides=strides, name="conv")])


def test_conv_macs_are_h_out_w_out_kh_kw_cin_cout():
    (c,), _ = count_layers(conv())
    assert (c.params, c.reuse, c.inputs, c.outputs) == (3 * 3 * 2 * 3, 4 * 4, 6 * 6 * 2, 4 * 4 * 3)
    e = tfprune.estimate_energy(conv(), masks={})
    assert e.macs == 4 * 4 * 3 * 3 * 2 * 3 == 864
    assert totals(e) == [round(864 * 4.6, 6), 1728, 54 * 5, 0, (72 + 48) * 5, round(864 * 4.6 + 1728 + 270 + 600, 6)]
    (strided,), _ = count_layers(conv("same", 2))
    assert strided.params * strided.reuse == 3 * 3 * 3 * 3 * 2 * 3          # 3x3 outputs
    assert tfprune.energy.layer_macs(conv("same", 2).layers[0]) == 486


def test_sparse_conv_multiplies_kept_weights_at_every_position():
    mask = np.zeros((3, 3, 2, 3), np.float32)
    mask.reshape(-1)[::6] = 1                                                # 9 of 54 kept
    e = tfprune.estimate_energy(conv(), {"conv": mask})
    assert e.rows[0].stored == "element" and e.macs == 9 * 16
    assert round(e.weights_pj, 6) == 9 * 5 and round(e.index_pj, 6) == round(9 * 0.5 * 5 + 9 * 0.1, 6)
    assert round(e.compute_pj, 6) == round(144 * 4.6, 6)


# ------------------------------------------------------------------ block sparsity

def test_block_counts_one_index_per_kept_block_and_every_weight_in_it():
    count = LayerCount("fc", params=16, reuse=1, inputs=8, outputs=2)
    mask = np.zeros((8, 2))
    mask[0:4, 0] = 1          # a full 4x1 block
    mask[5, 1] = 1            # one weight of the block rows 4-7, column 1
    b = with_mask(count, mask, block=(4, 1))
    assert (b.kept, b.indices, b.pattern) == (8, 2, "block 4x1")
    edge_mask = np.zeros((6, 2))
    edge_mask[5, 0] = 1
    edge = with_mask(LayerCount("fc", params=12, reuse=1, inputs=6, outputs=2), edge_mask, block=(4, 1))
    assert (edge.kept, edge.indices) == (2, 1)                             # rows 4-5: a partial block of 2
    element = with_mask(count, mask)
    assert (element.kept, element.indices, element.pattern) == (5, 5, "element")
    assert with_mask(count, np.ones((8, 2)), block=(4, 1)).sparse is False


def test_block_masks_from_compute_masks():
    model = mlp(hidden=8)
    masks = tfprune.compute_masks(model, "magnitude", sparsity=0.5, block=(4, 1))
    e = tfprune.estimate_energy(model, masks, block=(4, 1))
    fc1 = e.rows[0]
    kept = int(masks["fc1"].sum())
    assert fc1.stored == "block 4x1" and fc1.macs == kept
    assert round(fc1.index_pj, 6) == round(kept / 4 * (0.5 * 5 + 0.1), 6)


# ------------------------------------------------------------------ structured pruning and the reports

def test_structured_report_prices_the_smaller_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), L.Dense(4, name="fc1"), L.Dense(2, name="fc2")])
    small, report = ts.prune(model, 0.5)
    assert report.energy_before.macs == 4 * 4 + 4 * 2 and report.energy_after.macs == 4 * 2 + 2 * 2
    # 12 MACs x 4.6, 24 register reads, 12 weights x 5, activations (4+2 + 2+2) x 5
    assert round(report.energy_after.total_pj, 6) == round(12 * 4.6 + 24 + 60 + 50, 6)
    assert report.energy_ratio == pytest.approx(report.energy_after.total_pj / report.energy_before.total_pj)
    assert "energy per inference (float32)" in str(report)
    json.dumps(report.to_dict())


def test_sparsity_report_carries_the_estimate():
    pruned = tfprune.apply_masks(mlp(), hand_mask())
    report = tfprune.sparsity_report(pruned)
    assert totals(report.energy) == totals(tfprune.estimate_energy(pruned))
    assert report.energy.summary() in str(report)
    d = report.to_dict()
    json.dumps(d)
    assert d["energy"]["macs"] == 9 and [r["stored"] for r in d["energy"]["layers"]] == ["element", "dense"]


def test_layers_not_counted_are_named():
    keras.utils.set_random_seed(0)
    i = keras.Input((5, 8))
    a = L.MultiHeadAttention(2, 4, name="mha")(i, i)
    model = keras.Model(i, L.Dense(3, name="fc")(a))
    e = tfprune.estimate_energy(model, masks={})
    assert [r.name for r in e.rows] == ["fc"] and e.rows[0].macs == 5 * 8 * 3
    assert e.notes == ("mha (MultiHeadAttention) not counted",) and "note: mha" in str(e)


# ------------------------------------------------------------------ Keras 3 (one process per backend)

def keras3_twins():
    """The tf_keras twins of tests/keras3_energy_checks.py's models (same names and shapes)."""
    keras.utils.set_random_seed(0)
    i = keras.Input((6, 6, 2))
    x = L.Conv2D(3, 3, name="conv")(i)                                        # 6x6x2 -> 4x4x3: 864 MACs
    x = L.DepthwiseConv2D(3, name="dw")(x)                                    # -> 2x2x3: 4 x 9 x 3 = 108
    x = L.Conv2DTranspose(2, 2, strides=2, name="up")(x)                      # -> 4x4x2: 2x2 x 2x2x2x3 = 96
    x = L.SeparableConv2D(4, 3, padding="same", name="sep")(x)                # 16 x 9 x 2 + 16 x 2 x 4 = 416
    x = L.Flatten(name="flat")(L.BatchNormalization(name="bn")(x))
    return {"mlp": mlp(), "conv": keras.Model(i, L.Dense(2, name="fc")(x))}  # fc: 64 x 2 = 128


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_keras3_models_count_as_their_tf_keras_twins(backend, tmp_path):
    import dataclasses
    import os
    import subprocess
    import sys

    twins, rng = keras3_twins(), np.random.default_rng(0)
    masks = {name: {key: (rng.random(m.shape) < 0.4).astype(np.float32) for key, m in tfprune.get_masks(model).items()}
             for name, model in twins.items()}
    np.savez(tmp_path / "masks.npz", **{f"{n}/{k}": m for n, d in masks.items() for k, m in d.items()})
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    env.update(PYTHONPATH=root, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    result = subprocess.run([sys.executable, os.path.join(root, "tests", "keras3_energy_checks.py"),
                             str(tmp_path / "masks.npz")], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["backend"] == backend
    for name, model in twins.items():
        dense, sparse = tfprune.estimate_energy(model, masks={}), tfprune.estimate_energy(model, masks[name])
        assert dense.macs == {"mlp": 18, "conv": 864 + 108 + 96 + 416 + 128}[name]
        assert sparse.macs < dense.macs
        for kind, want in (("dense", dense), ("masks", sparse), ("wrapped", sparse), ("report", sparse)):
            case = got[name][kind]
            assert case["macs"] == want.macs and case["notes"] == list(want.notes) == [], (name, kind)
            assert case["totals"] == pytest.approx(totals(want), rel=1e-12, abs=1e-9), (name, kind)
            assert case["counts"] == [dataclasses.asdict(r) for r in want.rows], (name, kind)
        expected = [dataclasses.asdict(c) for c in count_layers(model, masks[name])[0]]
        assert got[name]["count_layers"] == expected
    macs = {k: v for k, v in got["conv"]["layer_macs"].items() if not k.startswith("input_layer")}
    assert macs == {"masked_conv": 864, "dw": 108, "masked_up": 96, "sep": 416, "bn": 0, "flat": 0, "masked_fc": 128}
    assert round(totals(tfprune.estimate_energy(twins["mlp"], masks={}))[-1], 6) == 268.8   # the hand count above


def test_tflite_quantization_types_and_block_layout():
    from tflite_export import energy as export_energy

    assert export_energy.DTYPES["float16"] == ("float16", "float32", "float32")
    assert export_energy.DTYPES["dynamic"] == ("int8", "float32", "int8")
    assert export_energy._keras_block("block 1x16") == (16, 1)


# ------------------------------------------------------------------ bad input: one-line errors

@pytest.mark.parametrize("call, message", [
    (lambda: EnergyCosts(sram_pj=-1), "sram_pj: got -1; allowed: a finite number >= 0."),
    (lambda: EnergyCosts(dram_pj=float("nan")), "dram_pj: got nan"),
    (lambda: EnergyCosts(index_bits=0), "index_bits: got 0; allowed: an integer >= 1."),
    (lambda: EnergyCosts(activations_on_chip="yes"), "activations_on_chip: got 'yes'; allowed: True or False."),
    (lambda: estimate([], dtype="int4"), "dtype: got 'int4'; allowed: 'float32', 'float16', 'int8'."),
    (lambda: estimate([], compute_dtype="bf16"), "compute_dtype: got 'bf16'"),
    (lambda: LayerCount("fc", 4, 1, 2, 2, kept=5), "LayerCount('fc').kept: got 5; allowed: an integer in [0, params=4]."),
    (lambda: LayerCount("fc", -1, 1, 2, 2), "LayerCount('fc').params: got -1"),
    (lambda: with_mask(LayerCount("fc", 4, 1, 2, 2), np.ones(5)), "masks['fc']: got 5 entries"),
    (lambda: with_mask(LayerCount("fc", 4, 1, 2, 2), np.ones((2, 2)), block=(0, 1)), "block: got 0"),
])
def test_bad_input_is_a_one_line_error_naming_the_argument(call, message):
    with pytest.raises(ValueError) as info:
        call()
    text = str(info.value)
    assert message in text and "\n" not in text


def test_costs_of_the_wrong_type():
    with pytest.raises(TypeError, match="costs: expected an EnergyCosts"):
        estimate([], costs={"sram_pj": 5})


def test_export_report_prices_what_the_file_does(tmp_path):
    import tflite_export

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), L.Dense(8, name="fc1"), L.Dense(4, name="fc2")])
    masks = tfprune.compute_masks(model, "magnitude", sparsity=0.75, block=(4, 1))
    pruned = tfprune.apply_masks(model, masks)
    report = tflite_export.export(pruned, str(tmp_path / "b.tflite"), block=(4, 1))
    blocks = {t.layer: t.final_encoding for t in report.tensors}
    e = report.energy
    for row in e.rows:   # a weight written block-sparse runs sparse; one written dense runs dense
        sparse = blocks.get(row.name, "dense").startswith("block")
        assert row.stored == ("block 4x1" if sparse else "dense")
        assert row.macs == (int(masks[row.name].sum()) if sparse else masks[row.name].size)
    assert e.dtype == "float32" and e.summary() in str(report)
    assert report.to_dict()["energy"]["macs"] == e.macs


def test_the_example_of_docs_energy_md_runs(capsys):
    import pathlib
    import re

    text = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "energy.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```python\n(.*?)```", text, re.S)
    namespace = {}
    exec(compile(block, "docs/energy.md", "exec"), namespace)
    assert namespace["dense"].weights_in == "DRAM" and namespace["sparse"].weights_in == "SRAM"
    assert "energy per inference" in capsys.readouterr().out
