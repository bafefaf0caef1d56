"""Runs one pytest module as a Bazel test (the `main` of every py_test in tests/).

Usage (Bazel passes these through the py_test's `args`):

    pytest_runner.py tests/test_foo.py [-m "not slow"] [more pytest options]

It translates Bazel's test protocol into pytest options:

* XML_OUTPUT_FILE       -> --junitxml, so Bazel shows per-test-case results;
* TEST_TMPDIR           -> --basetemp, so tmp_path lives in Bazel's scratch dir;
* TESTBRIDGE_TEST_ONLY  -> -k, so `bazel test --test_filter=EXPR` selects tests;

and returns pytest's exit code. When the target selects tests by marker
(`-m`) and the module has none of that kind, pytest reports "no tests
collected" (exit 5); that is a pass here. Without `-m`, an empty module is
still a failure.

Outside Bazel it behaves like `python -m pytest`, which is handy for
debugging: `.venv/bin/python tests/pytest_runner.py tests/test_foo.py`.
"""

import os
import sys

_NO_TESTS_COLLECTED = 5


def _module_path(arg):
    """Resolves a module path given relative to the workspace root."""
    if os.path.isabs(arg) or os.path.exists(arg):
        return arg
    # `bazel test` and `bazel run` start in the workspace's runfiles directory,
    # but be robust to a changed working directory.
    srcdir = os.environ.get("TEST_SRCDIR") or os.environ.get("RUNFILES_DIR")
    workspace = os.environ.get("TEST_WORKSPACE", "")
    if srcdir:
        candidate = os.path.join(srcdir, workspace, arg)
        if os.path.exists(candidate):
            return candidate
    return arg


def build_args(argv, environ):
    """Returns the pytest command line for this runner's argv and environment."""
    args = [_module_path(a) if a.endswith(".py") else a for a in argv]
    # Runfiles are read-only symlink trees: keep pytest from writing caches there.
    args += ["-p", "no:cacheprovider"]
    if environ.get("XML_OUTPUT_FILE"):
        args.append("--junitxml=" + environ["XML_OUTPUT_FILE"])
    if environ.get("TEST_TMPDIR"):
        args.append("--basetemp=" + os.path.join(environ["TEST_TMPDIR"], "pytest"))
    if environ.get("TESTBRIDGE_TEST_ONLY"):
        args += ["-k", environ["TESTBRIDGE_TEST_ONLY"]]
    return args


def selects_by_marker(args):
    """True when the command line has a marker expression (-m EXPR / -mEXPR)."""
    return any(a.startswith("-m") for a in args)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if not any(a.endswith(".py") for a in argv):
        print("usage: pytest_runner.py TEST_MODULE.py [pytest options]", file=sys.stderr)
        return 2
    # No __pycache__ / assertion-rewrite caches next to the (runfiles) sources.
    sys.dont_write_bytecode = True
    try:
        import pytest  # after the line above: pytest's own modules are not affected
    except ImportError:
        print("pytest_runner: pytest is not installed for %s; run `make setup` "
              "(Bazel runs tests with the project's virtualenv, see docs/bazel.md)."
              % sys.executable, file=sys.stderr)
        return 2

    args = build_args(argv, os.environ)
    code = int(pytest.main(args))
    if code == _NO_TESTS_COLLECTED and selects_by_marker(argv):
        print("pytest_runner: no test matches the marker expression here; nothing to run.")
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
