"""pytest_test: a py_test that runs one pytest module of tests/ under pytest.

tests/BUILD has one call per tests/test_*.py module (tests/test_bazel_targets.py
checks that), e.g.

    pytest_test(name = "test_snip", size = "medium")
    pytest_test(name = "test_lottery", size = "large", tags = ["slow"])
    pytest_test(name = "test_export", size = "medium", slow_tests = True)

* `name` is the module name: `test_snip` runs tests/test_snip.py.
* `size` is required (Bazel's timeout class: small 60 s, medium 300 s,
  large 900 s, enormous 3600 s). TensorFlow alone takes seconds to import.
* `tags = ["slow"]` for a module whose tests are all slow (pytest's `slow`
  marker): `make bazel-test` skips it with --test_tag_filters=-slow.
* `slow_tests = True` for a module that mixes fast tests and tests marked
  `@pytest.mark.slow`: `<name>` runs the fast ones (-m "not slow") and an extra
  target `<name>_slow`, tagged slow with size `slow_size`, runs the slow ones.
  That mirrors `make test` / `make test-slow`.

Every target depends on both packages (//tfprune, //tflite_export), the root
conftest.py + pytest.ini and the helper modules and data of tests/.
"""

_RUNNER = "//tests:pytest_runner.py"

_COMMON_DEPS = [
    "//:all_packages",
    "//:pytest_config",
    "//tests:test_support",
]

def pytest_test(
        name,
        size,
        tags = [],
        slow_tests = False,
        slow_size = "large",
        deps = [],
        data = [],
        args = [],
        **kwargs):
    """Defines the py_test(s) that run tests/<name>.py under pytest.

    Args:
      name: the test module's name without .py; also the target's name.
      size: Bazel test size of the target.
      tags: Bazel tags; "slow" for modules whose tests are all slow.
      slow_tests: the module mixes fast and @pytest.mark.slow tests; adds
        `<name>_slow` for the slow ones.
      slow_size: size of `<name>_slow`.
      deps: extra py_library dependencies.
      data: extra runtime files.
      args: extra pytest command-line options.
      **kwargs: passed on to py_test (e.g. flaky, timeout, shard_count=None).
    """
    module = name + ".py"
    common = dict(
        srcs = [_RUNNER, module],
        main = _RUNNER,
        python_version = "PY3",
        srcs_version = "PY3",
        deps = _COMMON_DEPS + deps,
        data = data,
    )
    common.update(kwargs)
    module_arg = "$(rootpath :%s)" % module

    if slow_tests and "slow" in tags:
        fail("pytest_test(%s): use either tags = [\"slow\"] (all tests slow) " % name +
             "or slow_tests = True (some tests slow), not both")

    if not slow_tests:
        native.py_test(
            name = name,
            size = size,
            tags = tags,
            args = [module_arg] + args,
            **common
        )
        return

    # Bazel splits `args` like a Bourne shell: quote the marker expression.
    native.py_test(
        name = name,
        size = size,
        tags = tags,
        args = [module_arg, "-m", "'not slow'"] + args,
        **common
    )
    native.py_test(
        name = name + "_slow",
        size = slow_size,
        tags = tags + ["slow"],
        args = [module_arg, "-m", "slow"] + args,
        **common
    )
