"""keras-hub backbones (BERT-style text, ViT image) pruned at init on each Keras 3 backend; the checks
are in tests/keras3_hub_case.py (one subprocess per backend: KERAS_BACKEND is per process)."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("backend", ["tensorflow", "jax", "torch"])
def test_keras_hub_backbones_prune_train_and_save(backend, tmp_path):
    pytest.importorskip(backend)
    pytest.importorskip("keras_hub")
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)
    run = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "keras3_hub_case.py"), str(tmp_path)],
                         env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    assert run.stdout.strip().endswith("done"), run.stdout
