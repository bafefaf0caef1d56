"""tfprune.wann's Keras 3 model (``build_model(..., keras=keras)``) on the TensorFlow, JAX and
PyTorch backends.

``KERAS_BACKEND`` is fixed per process, so each backend runs tests/wann_keras3_checks.py in a
subprocess of its own (outputs equal the batched numpy evaluation for several networks and shared
weights, the ticket keeps its masks through ``fit``, ``.keras`` round trip in a fresh process that
imported tfprune and nothing else). The check below needs no Keras.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from tfprune import wann

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "wann_keras3_checks.py")


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_every_check_passes_on_the_backend(backend):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend)
    result = subprocess.run([sys.executable, SCRIPT], capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    assert f"all 3 checks passed on {backend}" in result.stdout, result.stdout


def test_a_keras_argument_that_is_not_a_keras_module_is_refused():
    g = wann.minimal(3, 2, max_hidden=2, rng=np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"^keras: expected a Keras module \(tf_keras, or keras for Keras 3\), got 42\.$"):
        wann.build_model(g, keras=42)
