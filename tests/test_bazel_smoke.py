"""Smoke test of the Python environment that tests run in, under pytest and Bazel.

Under `bazel test //tests:test_bazel_smoke` it proves that Bazel runs tests
with the project's virtualenv (which has TensorFlow 2.21) rather than a system
Python, and that `tfprune` is imported from this repository's sources (the
runfiles tree links to them), not from some installed copy.
"""

import os
import sys

import tensorflow as tf

import tfprune

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def test_runs_in_a_virtualenv_with_tensorflow_2_21():
    assert sys.prefix != sys.base_prefix, "not a virtualenv: " + sys.executable
    assert tf.__version__.startswith("2.21"), tf.__version__
    assert sys.version_info >= (3, 10)


def test_tfprune_comes_from_this_repository():
    assert tfprune.__name__ == "tfprune"
    package_dir = os.path.dirname(os.path.realpath(tfprune.__file__))
    assert package_dir == os.path.join(REPO_ROOT, "tfprune")


def test_tensorflow_computes():
    x = tf.constant([[1.0, 2.0], [3.0, 4.0]])
    assert tf.linalg.matmul(x, x).numpy().tolist() == [[7.0, 10.0], [15.0, 22.0]]


def test_bazel_runs_it_from_runfiles():
    if "TEST_SRCDIR" not in os.environ:
        return  # plain pytest (`make test`): nothing Bazel-specific to check
    # The import resolved through Bazel's runfiles tree (a symlink forest onto
    # the sources), so the py_library targets' srcs and imports are right.
    assert os.path.abspath(tfprune.__file__).startswith(os.environ["TEST_SRCDIR"])
    assert os.environ.get("TEST_WORKSPACE") == "tfprune_repo"
