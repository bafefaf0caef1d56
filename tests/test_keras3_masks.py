"""Fixed masks on Keras 3 models (tfprune._keras3), on the TensorFlow, JAX and PyTorch backends.

``KERAS_BACKEND`` is fixed per process, so each backend runs tests/keras3_masks_checks.py in a
subprocess of its own (every check for that backend: exact sparsity, masks bit-identical through
``fit`` and a custom loop with ``optimizer.apply``, ``.keras`` round trip in a fresh process
without custom objects or scope, ``strip``, Functional with Dense/Conv2D/MultiHeadAttention and a
nested model, Sequential, subclassed, mixed precision, keras-hub, report, one-line errors).
The module-level checks below need no Keras.
"""
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "keras3_masks_checks.py")


def run(code_or_script, backend=None, args=(), timeout=300):
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    env.update(PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    if backend:
        env["KERAS_BACKEND"] = backend
    command = [sys.executable, code_or_script, *args] if code_or_script.endswith(".py") else \
        [sys.executable, "-c", code_or_script]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_every_check_passes_on_the_backend(backend):
    result = run(SCRIPT, backend)
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-6000:]
    assert f"checks passed on {backend}" in out, out


def test_the_seam_package_imports_neither_keras_nor_tensorflow_and_resolves_the_backend(tmp_path):
    home = tmp_path / "keras_home"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"backend": "jax"}))
    code = (
        "import sys, os\n"
        "from tfprune import _keras3\n"
        "print(_keras3.is_keras3(object()), _keras3.backend())\n"
        "os.environ['KERAS_BACKEND'] = 'torch'\n"
        "print(_keras3.backend())\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))\n"
    )
    env_code = f"import os; os.environ['KERAS_HOME'] = {str(home)!r}\n" + code
    result = run(env_code)
    assert result.returncode == 0, result.stderr[-3000:]
    first, second, imported = result.stdout.strip().splitlines()[-3:]
    assert first == "False jax" and second == "torch" and imported == "[]"


def test_import_tfprune_before_keras_registers_the_classes_when_keras_is_imported():
    code = (
        "import sys\n"
        "import tfprune\n"
        "assert 'keras' not in sys.modules and 'tfprune._keras3.masked' not in sys.modules\n"
        "import keras\n"
        "print(keras.saving.get_registered_object('tfprune>MaskedLayer').__name__,\n"
        "      keras.saving.get_registered_object('tfprune>MaskConstraint').__name__)\n"
    )
    result = run(code, backend="jax")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "MaskedLayer MaskConstraint"
