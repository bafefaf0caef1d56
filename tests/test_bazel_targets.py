"""Every tests/test_*.py module must have its Bazel test target in tests/BUILD.

`bazel test //...` only runs what tests/BUILD declares, so a test module added
without a target would silently never run under Bazel. This test (run by
`make test` too, without Bazel) reads tests/BUILD with Python's `ast` module
(BUILD files are Starlark, whose syntax is a subset of Python's) and checks:

* each module tests/test_X.py has a `pytest_test(name = "test_X", ...)` (or a
  plain `py_test` of that name);
* each target names a module that exists;
* each target sets `size` explicitly;
* a module that uses `pytest.mark.slow` has a target tagged "slow" or declared
  with `slow_tests = True`, so that `make bazel-test` stays fast.

Run it as a script to print the problems: `python tests/test_bazel_targets.py`.
"""

import ast
import os
import sys

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
TEST_RULES = ("pytest_test", "py_test")


class Target:
    """One test-rule call in a BUILD file, with its literal arguments."""

    def __init__(self, rule, lineno, kwargs):
        self.rule = rule
        self.lineno = lineno
        self.kwargs = kwargs

    @property
    def name(self):
        return self.kwargs.get("name")


def _literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None  # computed (e.g. glob(...) or a concatenation): not checked


def parse_test_targets(build_text, filename="BUILD"):
    """Returns the Target of every top-level test-rule call in BUILD text."""
    tree = ast.parse(build_text, filename=filename)
    targets = []
    for stmt in tree.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)):
            continue
        if call.func.id not in TEST_RULES:
            continue
        kwargs = {kw.arg: _literal(kw.value) for kw in call.keywords if kw.arg}
        targets.append(Target(call.func.id, call.lineno, kwargs))
    return targets


def uses_slow_marker(source):
    """True when Python source uses `pytest.mark.slow` (as code, not in strings)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "slow":
            owner = node.value  # pytest.mark.slow or (from pytest import mark) mark.slow
            if (isinstance(owner, ast.Attribute) and owner.attr == "mark") or (
                    isinstance(owner, ast.Name) and owner.id == "mark"):
                return True
    return False


def find_test_modules(tests_dir):
    """Maps each test module's name (test_X) to its source text."""
    modules = {}
    for entry in sorted(os.listdir(tests_dir)):
        if entry.startswith("test_") and entry.endswith(".py"):
            with open(os.path.join(tests_dir, entry), encoding="utf-8") as f:
                modules[entry[:-3]] = f.read()
    return modules


def find_problems(build_text, modules):
    """Returns a list of human-readable problems; empty when BUILD is complete."""
    targets = parse_test_targets(build_text)
    by_name = {}
    problems = []
    for target in targets:
        if not isinstance(target.name, str):
            problems.append("tests/BUILD:%d: %s(...) needs a literal name = \"test_...\""
                            % (target.lineno, target.rule))
            continue
        if target.name in by_name:
            problems.append("tests/BUILD:%d: duplicate target %r" % (target.lineno, target.name))
        by_name[target.name] = target

    missing = sorted(set(modules) - set(by_name))
    for module in missing:
        line = "pytest_test(name = \"%s\", size = \"medium\")" % module
        if uses_slow_marker(modules[module]):
            line = ("pytest_test(name = \"%s\", size = \"large\", tags = [\"slow\"]) "
                    "(or slow_tests = True instead of the tag if only some of its "
                    "tests are slow)" % module)
        problems.append("tests/%s.py has no Bazel test target: add %s to tests/BUILD"
                        % (module, line))

    for name, target in sorted(by_name.items()):
        where = "tests/BUILD:%d: %s" % (target.lineno, name)
        if name not in modules:
            problems.append("%s: there is no tests/%s.py (stale target?)" % (where, name))
            continue
        if "size" not in target.kwargs:
            problems.append("%s: set size = \"small\"|\"medium\"|\"large\"|\"enormous\"" % where)
        tags = target.kwargs.get("tags") or []
        if uses_slow_marker(modules[name]) and not (
                "slow" in tags or target.kwargs.get("slow_tests")):
            problems.append(
                "%s: the module has @pytest.mark.slow tests; add tags = [\"slow\"] "
                "(all its tests are slow) or slow_tests = True (some are)" % where)
    return problems


def _read_build(tests_dir):
    with open(os.path.join(tests_dir, "BUILD"), encoding="utf-8") as f:
        return f.read()


# --- the check itself -------------------------------------------------------


def test_every_test_module_has_a_bazel_target():
    modules = find_test_modules(TESTS_DIR)
    assert "test_bazel_targets" in modules  # sanity: we are looking at tests/
    problems = find_problems(_read_build(TESTS_DIR), modules)
    assert not problems, "tests/BUILD is out of date:\n  " + "\n  ".join(problems)


# --- the checker, on made-up BUILD files --------------------------------------

_BUILD = '''
load("//bazel:pytest_test.bzl", "pytest_test")

pytest_test(name = "test_a", size = "small")

pytest_test(
    name = "test_b",
    size = "large",
    tags = ["slow"],
)
'''


def test_complete_build_has_no_problems():
    modules = {"test_a": "def test_x(): pass\n",
               "test_b": "import pytest\n@pytest.mark.slow\ndef test_y(): pass\n"}
    assert find_problems(_BUILD, modules) == []


def test_missing_module_is_named_with_a_ready_to_paste_target():
    modules = {"test_a": "", "test_b": "",
               "test_new_scoring": "import pytest\npytestmark = pytest.mark.slow\n"}
    problems = find_problems(_BUILD, modules)
    assert len(problems) == 1
    assert "tests/test_new_scoring.py has no Bazel test target" in problems[0]
    assert 'pytest_test(name = "test_new_scoring", size = "large", tags = ["slow"])' in problems[0]
    problems = find_problems(_BUILD, {"test_a": "", "test_b": "", "test_c": "x = 1\n"})
    assert problems == ['tests/test_c.py has no Bazel test target: add '
                        'pytest_test(name = "test_c", size = "medium") to tests/BUILD']


def test_stale_target_and_missing_size_are_reported():
    build = _BUILD + '\npy_test(name = "test_gone", srcs = ["test_gone.py"])\n'
    build = build.replace('name = "test_a", size = "small"', 'name = "test_a"')
    problems = find_problems(build, {"test_a": "", "test_b": ""})
    assert any("test_gone: there is no tests/test_gone.py" in p for p in problems)
    assert any("test_a: set size" in p for p in problems)
    assert len(problems) == 2


def test_slow_module_needs_slow_tag_or_split_target():
    slow_module = "import pytest\n\n@pytest.mark.slow\ndef test_big(): pass\n"
    problems = find_problems(_BUILD, {"test_a": slow_module, "test_b": ""})
    assert len(problems) == 1 and "test_a" in problems[0] and "slow" in problems[0]
    split = _BUILD.replace('size = "small"', 'size = "small", slow_tests = True')
    assert find_problems(split, {"test_a": slow_module, "test_b": ""}) == []


def test_slow_marker_detection_ignores_strings():
    assert uses_slow_marker("import pytest\n@pytest.mark.slow\ndef test_a(): pass\n")
    assert uses_slow_marker("from pytest import mark\npytestmark = [mark.slow]\n")
    assert not uses_slow_marker('"""Not @pytest.mark.slow, only a docstring."""\n')
    assert not uses_slow_marker("import pytest\n@pytest.mark.data\ndef test_a(): pass\n")


if __name__ == "__main__":
    found = find_problems(_read_build(TESTS_DIR), find_test_modules(TESTS_DIR))
    print("\n".join(found) or "tests/BUILD has a target for every test module.")
    sys.exit(1 if found else 0)
