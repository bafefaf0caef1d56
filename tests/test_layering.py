"""Design rule: scorers and allocation do not depend on TF-MOT (a Keras 3 path can sit beside them)."""
import subprocess
import sys


def test_scoring_and_allocation_import_without_tfmot():
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.startswith('tensorflow_model_optimization'):\n"
        "        raise ImportError('scoring/allocation must not import TF-MOT: ' + name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import importlib.util, types\n"
        # import the submodules without running tfprune/__init__ (which wires in the TF-MOT wrapper)
        "pkg = types.ModuleType('tfprune'); pkg.__path__ = ['tfprune']; sys.modules['tfprune'] = pkg\n"
        "import tfprune.allocation, tfprune.scoring\n"
        "assert 'tensorflow_model_optimization' not in sys.modules\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")
