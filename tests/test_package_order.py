"""The layer order, read from the code's own imports (every import, lazy ones in functions too):

    examples/, benchmarks/  →  tfprune.experiment  →  tflite_export  →  tfprune.lottery / tfprune.structured
      →  tfprune.api  →  the core (scoring, allocation, wrapper, schedules, report, energy)
      →  tfprune.spec / checks / table / io  →  tfprune._keras, tfprune._keras3

An arrow only goes down: nothing imports a layer above itself, ``tflite_export`` uses tfprune's
public API only, and the Bazel ``deps`` of each package are exactly the packages its files import.
"""
import ast
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: (layer rank, module prefixes); a module's layer is that of its longest matching prefix.
LAYERS = [
    (0, ["tfprune._keras", "tfprune._keras3", "tfprune._import_hook", "tfprune._mask_values",
         "tfprune._layer_families", "tfprune._seeds"]),  # the Keras seams (the prefix "tfprune._keras" does not cover _keras3)
    (1, ["tfprune.checks", "tfprune.table", "tfprune.io", "tfprune.spec", "tfprune.keras_utils", "tfprune.logs",
         "tfprune.diagnostics"]),
    (2, ["tfprune.scoring", "tfprune.allocation", "tfprune.wrapper", "tfprune._loading", "tfprune.schedules",
         "tfprune.report", "tfprune.energy", "tfprune.sparse_dense", "tfprune.sparse_ops"]),
    (3, ["tfprune.api"]),
    (4, ["tfprune.lottery", "tfprune.structured", "tfprune.wann"]),
    (5, ["tfprune"]),  # the facade (tfprune/__init__.py): re-exports the layers below
    (6, ["tflite_export"]),
    (7, ["tfprune.experiment"]),
    (8, ["examples", "benchmarks"]),
]


def layer(module: str) -> "int | None":
    best = None
    for rank, prefixes in LAYERS:
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                if best is None or len(prefix) > len(best[1]):
                    best = (rank, prefix)
    return None if best is None else best[0]


def module_name(path: str) -> str:
    rel = os.path.relpath(path, ROOT)[:-3].replace(os.sep, ".")
    return rel[: -len(".__init__")] if rel.endswith(".__init__") else rel


def first_party_imports(path: str) -> "set[str]":
    """Every tfprune / tflite_export / examples / benchmarks module ``path`` imports."""
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    package = module_name(path)
    if not path.endswith("__init__.py"):
        package = package.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:  # `from tfprune import lottery` imports tfprune.lottery
                candidate = f"{base}.{alias.name}"
                out.add(candidate if os.path.exists(os.path.join(ROOT, *candidate.split("."))) or
                        os.path.exists(os.path.join(ROOT, *candidate.split(".")) + ".py") else base)
    return {m for m in out if layer(m) is not None}


def sources(*dirs):
    for d in dirs:
        for folder, _, files in os.walk(os.path.join(ROOT, d)):
            for f in files:
                if f.endswith(".py"):
                    yield os.path.join(folder, f)


def test_arrows_only_go_down():
    problems = []
    for path in sources("tfprune", "tflite_export", "examples", "benchmarks"):
        me = module_name(path)
        for target in first_party_imports(path):
            if me == "tfprune" or target == me or me.startswith(target + "."):
                continue  # the facade, and a package's own __init__
            if layer(target) > layer(me):
                problems.append(f"{me} (layer {layer(me)}) imports {target} (layer {layer(target)})")
    assert not problems, "\n".join(sorted(problems))


def test_lottery_and_structured_do_not_import_each_other():
    for path in sources("tfprune/lottery"):
        assert not [m for m in first_party_imports(path) if m.startswith("tfprune.structured")], path
    for path in sources("tfprune/structured"):
        assert not [m for m in first_party_imports(path) if m.startswith("tfprune.lottery")], path


def test_tflite_export_uses_only_the_public_api_of_tfprune():
    for path in sources("tflite_export"):
        private = [m for m in first_party_imports(path) if m.startswith("tfprune")
                   and (any(part.startswith("_") for part in m.split(".")) or m.startswith("tfprune.experiment"))]
        assert not private, f"{module_name(path)} imports {private}"


def test_only_the_experiment_harness_imports_tflite_export():
    for path in sources("tfprune"):
        if module_name(path).startswith("tfprune.experiment"):
            continue
        assert not [m for m in first_party_imports(path) if m.startswith("tflite_export")], path


def _bazel_deps(build_path: str) -> "set[str]":
    text = open(build_path, encoding="utf-8").read()
    match = re.search(r"deps\s*=\s*\[([^\]]*)\]", text)
    return set(re.findall(r'"//([^":]+)', match.group(1))) if match else set()


@pytest.mark.parametrize("package", ["tfprune", "tfprune/experiment", "tflite_export"])
def test_bazel_deps_match_the_imports(package):
    bazel_packages = ["tfprune/experiment", "tflite_export", "tfprune"]  # most specific first
    imported = set()
    for path in sources(package):
        if package == "tfprune" and module_name(path).startswith("tfprune.experiment"):
            continue  # its own Bazel package
        for target in first_party_imports(path):
            owner = next(p for p in bazel_packages if target.replace(".", "/").startswith(p))
            if owner != package:
                imported.add(owner)
    assert _bazel_deps(os.path.join(ROOT, package, "BUILD")) == imported
