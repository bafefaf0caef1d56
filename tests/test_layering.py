"""Design rules of the Keras seam (tfprune._keras).

* scorers and allocation do not depend on TF-MOT (a Keras 3 path can sit beside them);
* ``import tfprune`` neither imports TF-MOT nor touches ``TF_USE_LEGACY_KERAS``;
* only ``tfprune/_keras.py`` imports tf_keras or TF-MOT or names that variable;
* wrapping a model imports TF-MOT without changing the user's ``tf.keras`` or environment.

The import checks run in a fresh interpreter with a clean environment (no TF_USE_LEGACY_KERAS).
"""
import ast
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run_clean(code: str) -> str:
    """Runs ``code`` in a fresh interpreter from the repository root, environment without
    TF_USE_LEGACY_KERAS; returns its stdout (fails the test on a non-zero exit)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


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
        # import the submodules without running tfprune/__init__
        "pkg = types.ModuleType('tfprune'); pkg.__path__ = ['tfprune']; sys.modules['tfprune'] = pkg\n"
        "import tfprune.allocation, tfprune.scoring\n"
        "assert 'tensorflow_model_optimization' not in sys.modules\n"
        "print('ok')\n"
    )
    assert run_clean(code).strip().endswith("ok")


def test_import_tfprune_leaves_tfmot_out_and_the_environment_alone():
    code = (
        "import os, sys\n"
        "import tfprune\n"
        "print(sorted(m for m in sys.modules if m.startswith('tensorflow_model_optimization')))\n"
        "print(os.environ.get('TF_USE_LEGACY_KERAS'))\n"
    )
    modules, variable = run_clean(code).strip().splitlines()[-2:]
    assert modules == "[]"
    assert variable == "None"


def _keras_plumbing(source: str) -> "list[str]":
    """Imports of tf_keras or TF-MOT, and strings naming TF-MOT or TF_USE_LEGACY_KERAS, in
    ``source`` (code only: docstrings may show the user's ``import tf_keras as keras``)."""
    tree = ast.parse(source)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                  and node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            names = []
        found += [f"line {node.lineno}: import {n}" for n in names
                  if n.split(".")[0] in ("tf_keras", "tensorflow_model_optimization")]
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            found += [f"line {node.lineno}: {word!r}" for word in ("tensorflow_model_optimization", "TF_USE_LEGACY_KERAS")
                      if word in node.value]
    return found


def test_only_the_seam_imports_tf_keras_or_tfmot_or_names_the_variable():
    offenders = []
    for path in sorted((ROOT / "tfprune").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "tfprune/_keras.py":
            continue
        offenders += [f"{rel} {what}" for what in _keras_plumbing(path.read_text())]
    assert not offenders, "only tfprune/_keras.py may do this:\n" + "\n".join(offenders)


def test_the_plumbing_check_sees_imports_and_the_variable_but_not_docstrings():
    source = ('"""Example: import tf_keras as keras."""\n'
              "import os\nimport tf_keras as keras\n"
              "def f():\n    from tensorflow_model_optimization.python.core import compat\n"
              "os.environ.setdefault('TF_USE_LEGACY_KERAS', '1')\n")
    assert _keras_plumbing(source) == ["line 3: import tf_keras",
                                       "line 5: import tensorflow_model_optimization.python.core",
                                       "line 6: 'TF_USE_LEGACY_KERAS'"]


def test_pruning_a_tf_keras_model_keeps_the_users_tf_keras_and_environment():
    code = (
        "import os, sys\n"
        "import numpy as np\n"
        "import tensorflow as tf\n"
        "import tf_keras\n"
        "import tfprune\n"
        "model = tf_keras.Sequential([tf_keras.Input((6,)), tf_keras.layers.Dense(8, activation='relu'),\n"
        "                             tf_keras.layers.Dense(3)])\n"
        "pruned = tfprune.prune_at_init(model, 'random', 0.5, seed=0)\n"
        "out = pruned.predict(np.ones((2, 6), np.float32), verbose=0)\n"
        "print('tensorflow_model_optimization' in sys.modules)\n"
        "print(os.environ.get('TF_USE_LEGACY_KERAS'))\n"
        "print(getattr(tf.keras, 'version', lambda: tf.keras.__name__)())\n"
        "print([k.layers.Dense.__module__.split('.')[0] for k in (tf.compat.v1.keras, tf.compat.v2.keras)])\n"
        "print(out.shape, isinstance(pruned.layers[0], tfprune.FixedMaskWrapper))\n"
    )
    imported, variable, version, compat, result = run_clean(code).strip().splitlines()[-5:]
    assert imported == "True"            # wrapping did import TF-MOT...
    assert variable == "None"            # ...and put the variable back as it was: unset
    assert version.startswith("3.")      # the user's tf.keras is still Keras 3
    assert compat == "['keras', 'keras']"
    assert result == "(2, 3) True"
