"""Documentation runs: every ```python block of README.md, in order, in one namespace, and every
``>>>`` example in the docstrings of tfprune and tflite_export (as doctests).

The README is executed as written (its first block makes the small data and model the others
use); docstring examples run with the small namespace of :func:`doctest_globals` (a tiny tf_keras
LeNet, ``x, y`` arrays), in a temporary working directory.
"""
import doctest
import importlib
import os
import re

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_MODULES = ("tflite_export.__main__", "tflite_export._bench_worker")


def readme_blocks(text: str) -> "list[str]":
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_python_blocks_and_every_one_runs_in_order(tmp_path, monkeypatch):
    blocks = readme_blocks(open(os.path.join(ROOT, "README.md"), encoding="utf-8").read())
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    for i, block in enumerate(blocks, 1):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as e:  # name the block
            raise AssertionError(f"README.md python block {i} failed: {type(e).__name__}: {e}\n{block}") from e


def _modules():
    out = []
    for package in ("tfprune", "tflite_export"):
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for f in sorted(files):
                if f.endswith(".py"):
                    rel = os.path.relpath(os.path.join(folder, f), ROOT)[:-3].replace(os.sep, ".")
                    name = rel[: -len(".__init__")] if rel.endswith(".__init__") else rel
                    text = open(os.path.join(folder, f), encoding="utf-8").read()
                    if name not in SKIP_MODULES and re.search(r"^\s*>>> ", text, flags=re.M):
                        out.append(name)
    return sorted(out)


def doctest_globals() -> dict:
    """The names docstring examples may use besides their module's own: a tiny LeNet-style
    tf_keras model (``model``, ``build_lenet``) and a little data (``x, y``, ``x_val, y_val``)."""
    import tensorflow as tf
    import tf_keras as keras

    import tfprune

    rng = np.random.default_rng(0)
    x = rng.random((96, 16), dtype=np.float32)
    y = (x[:, :4].argmax(axis=1)).astype(np.int32)

    def build_lenet():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="relu", name="fc1"),
                                 keras.layers.Dense(16, activation="relu", name="fc2"),
                                 keras.layers.Dense(4, name="output")])

    return {"np": np, "tf": tf, "keras": keras, "tfprune": tfprune, "x": x, "y": y, "x_val": x[:32],
            "y_val": y[:32], "build_lenet": build_lenet, "model": build_lenet(),
            "loss": keras.losses.SparseCategoricalCrossentropy(from_logits=True)}


@pytest.mark.parametrize("module_name", _modules())
def test_docstring_examples_run(module_name, tmp_path, monkeypatch):
    module = importlib.import_module(module_name)
    tests = doctest.DocTestFinder(exclude_empty=True).find(module, module_name)
    tests = [t for t in tests if t.examples and t.name.startswith(module_name)]
    assert tests, f"{module_name} has a '>>> ' line in its source but no doctest was found"
    monkeypatch.chdir(tmp_path)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in tests:
        test.globs = {**doctest_globals(), **module.__dict__}
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)[-6000:]
