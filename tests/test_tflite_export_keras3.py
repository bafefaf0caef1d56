"""tflite_export.export on pruned Keras 3 models, on the TensorFlow, JAX and PyTorch backends.

``KERAS_BACKEND`` is fixed per process, so each backend runs tests/keras3_export_checks.py in a
subprocess of its own (every check for that backend: a Conv2D + MultiHeadAttention + Dense model
and a block-sparse Sequential exported sparse, run in LiteRT and matching that backend's Keras
outputs, smaller than the dense export; a file that would differ from Keras refused; an op TFLite
lacks named with its layer; a subclassed model refused with the way out (wrap it); the command
line's loader reads Keras 3 ``.keras`` files; on JAX / PyTorch, the TensorFlow-backend subprocess's failures as
one-line errors; the experiment harness's export step). The checks below need no Keras 3.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from tflite_export import rebuild, verification

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "keras3_export_checks.py")


def run(backend, timeout=600):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    return subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_every_export_check_passes_on_the_backend(backend):
    result = run(backend)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-6000:]
    assert f"all 7 checks passed on {backend}" in out, out


def test_keras3_outputs_are_matched_by_position():
    a, b = np.zeros((2, 3)), np.ones((2, 5))
    reference = {"output_0": a, "output_1": b}
    assert verification.align_outputs({"output_1": b, "output_0": a}, reference) is not None
    named = verification.align_outputs({"output_0": a, "output_1": b}, {"zz": a, "aa": b})
    assert list(named) == ["zz", "aa"] and named["aa"] is b
    with pytest.raises(Exception, match="cannot match TFLite outputs"):
        verification.align_outputs({"x": a, "y": b}, {"zz": a, "aa": b})


def test_subprocess_error_lines_are_one_line_without_colours():
    stderr = "Traceback (most recent call last):\n  File ...\nModuleNotFoundError: No module named x\n"
    assert rebuild._last_error_line(stderr) == "ModuleNotFoundError: No module named x"
    assert rebuild._last_error_line("") == "no error output"
    error = ValueError("\x1b[1mWe could not\n infer\x1b[0m the shape")
    assert rebuild._one_line(error) == "ValueError: We could not infer the shape"
