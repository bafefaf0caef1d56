"""A scorer or procedure registered by the user reaches the CLI and the sweep: ``--plugin=MODULE``."""
import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tfprune import scoring
from tfprune.experiment import Config, config_problems, grid, registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--dataset=synthetic", "--epochs=1", "--batch_size=64", "--max_train=128", "--max_test=32", "--verbose=0"]

def _write_plugin(tmp_path):
    (tmp_path / "my_scorers.py").write_text(textwrap.dedent('''
        """A user's scorer: |w| times (output-unit index + 1), so later units survive more often."""
        import numpy as np
        import tfprune

        def make_column_magnitude(model, data=None, loss=None):
            magnitude = tfprune.get_scorer("magnitude").make(model, data, loss)

            def score(masks=None):
                return {name: s * (1.0 + np.arange(s.shape[-1])) for name, s in magnitude(masks).items()}

            return score

        tfprune.register_scorer("column_magnitude", make_column_magnitude, needs_data=False)
    '''))


def test_a_registered_scorer_runs_from_the_command_line(tmp_path):
    _write_plugin(tmp_path)
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train.py"), "--plugin=my_scorers",
                           "--method=column_magnitude", "--sparsity=0.9", f"--out_dir={out}"] + TINY,
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "result.json").read_text())
    assert result["procedure"] == "prune_at_init" and result["config"]["settings"]["scorer"] == "column_magnitude"
    assert result["sparsity"] == pytest.approx(0.9, abs=1e-3)
    assert "column_magnitude" in proc.stdout  # the run's first line names its method


def test_an_unimportable_plugin_is_one_line_naming_it(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train.py"), "--plugin=no_such_module"],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode != 0
    assert "--plugin=no_such_module: cannot import it" in proc.stderr and "Traceback" not in proc.stderr


def test_a_registered_scorer_is_a_method_of_the_config_and_the_sweep_grid():
    name = "plugin_test_scorer"
    scoring.register_scorer(name, scoring.get_scorer("magnitude").make, needs_data=False)
    try:
        assert name in registry.method_names() and name in grid.default_methods()
        assert config_problems(Config(method=name, sparsity=0.5, out_dir="/tmp/x")) == []
        assert Config(method=name, sparsity=0.5).procedure.name == "prune_at_init"
        assert (name, 0.5, 0) in grid.cells([name, "dense"], [0.0, 0.5], [0])
    finally:
        scoring.unregister_scorer(name)
    assert name not in registry.method_names()


def test_a_registered_procedure_brings_its_settings_as_validated_fields():
    @dataclasses.dataclass(frozen=True)
    class HalfSettings:
        halves: int = registry.setting(1, "how many times to halve", minimum=1)

    proc = registry.Procedure(name="plugin_test_procedure", settings=HalfSettings, run=lambda ctx: None,
                              description="test")
    registry.register_procedure(proc)
    try:
        assert "halves" in registry.all_settings_fields()
        assert config_problems(Config(method="plugin_test_procedure", sparsity=0.5, settings={"halves": 0})) == [
            "halves=0 must be >= 1."]
        assert config_problems(Config(method="synflow", sparsity=0.5, settings={"halves": 2})) == [
            "halves=2 applies to method=plugin_test_procedure only (method=synflow)."]
        with pytest.raises(ValueError, match="the name 'synflow' is taken"):
            registry.register_procedure(dataclasses.replace(proc, name="synflow"))
    finally:
        registry.unregister_procedure("plugin_test_procedure")
    assert "halves" not in registry.all_settings_fields()
