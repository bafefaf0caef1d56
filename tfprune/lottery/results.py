"""Results of a run: one row per level (or per sanity-check variant), read from ``metrics.json``.

The rows come from the phases the run's ``config.json`` plans that have a ``metrics.json``
(every file verified, :mod:`tfprune.lottery._files`); ``summary.json`` is only a convenience copy
and may be stale after a kill, so it is used for the title alone. Nothing is written: a finished
run is readable from read-only media.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Sequence

from tfprune import io
from tfprune.io import CorruptFileError
from tfprune.lottery import _files
from tfprune.table import table

__all__ = ["LevelResult", "RunResults", "load_results"]


def _num(value):
    if value is None:
        return None
    if isinstance(value, str):  # "nan", "inf" as written by tfprune.io.to_jsonable
        return float(value)
    return float(value)


@dataclasses.dataclass(frozen=True)
class LevelResult:
    """One trained level (or variant) of a run.

    Attributes:
        name: the phase name (``"level_3"``, ``"shuffle"``, ...); also its directory in run_dir.
        level: pruning level (0 = dense) or None for sanity-check variants.
        sparsity, density: over all prunable weights. kept, params: counts.
        start_step, end_step, steps: the training steps of this level (global step numbers).
        train_loss, train_accuracy: of the last training epoch (running mean over its batches).
        val_loss, val_accuracy: on the validation data after the last epoch (None without).
        best_val_accuracy: best validation accuracy at any epoch end of the level.
        wall_time_s: training + evaluation time, summed over resumes.
        collapsed: layers with no weight or no input→output path left.
        metrics: the full ``metrics.json`` dict (per-epoch history, sparsity report, ...).
    """

    name: str
    level: "int | None"
    sparsity: float
    density: float
    kept: int
    params: int
    start_step: int
    end_step: int
    steps: int
    train_loss: "float | None"
    train_accuracy: "float | None"
    val_loss: "float | None"
    val_accuracy: "float | None"
    best_val_accuracy: "float | None"
    wall_time_s: float
    collapsed: "tuple[str, ...]"
    metrics: dict = dataclasses.field(repr=False, compare=False)

    @classmethod
    def from_metrics(cls, metrics: dict) -> "LevelResult":
        return cls(
            name=metrics["name"], level=metrics.get("level"), sparsity=float(metrics["sparsity"]),
            density=float(metrics["density"]), kept=int(metrics["kept"]), params=int(metrics["params"]),
            start_step=int(metrics["start_step"]), end_step=int(metrics["end_step"]), steps=int(metrics["steps"]),
            train_loss=_num(metrics.get("train_loss")), train_accuracy=_num(metrics.get("train_accuracy")),
            val_loss=_num(metrics.get("val_loss")), val_accuracy=_num(metrics.get("val_accuracy")),
            best_val_accuracy=_num(metrics.get("best_val_accuracy")), wall_time_s=float(metrics.get("wall_time_s", 0.0)),
            collapsed=tuple(metrics.get("collapsed", ())), metrics=metrics)


def _fmt(value, digits=4):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


@dataclasses.dataclass(frozen=True)
class RunResults(Sequence):
    """The completed levels of a run, in order. ``print(results)`` shows the table.

    Example::

        results = lottery.LotteryTicket(...).run()   # or tfprune.lottery.load_results(run_dir)
        print(results)                               # level, sparsity, accuracies; * = best
        results.best.level, results[-1].sparsity
    """

    rows: "tuple[LevelResult, ...]"
    title: str = ""

    def __getitem__(self, index):
        return self.rows[index]

    def __len__(self):
        return len(self.rows)

    @property
    def best(self) -> "LevelResult | None":
        """The row with the highest final validation accuracy (the first one on ties; None
        when there is no validation data)."""
        rows = [r for r in self.rows if r.val_accuracy is not None and not math.isnan(r.val_accuracy)]
        return max(rows, key=lambda r: r.val_accuracy) if rows else None

    def by_name(self, name: str) -> LevelResult:
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(f"name: no row {name!r}; rows: {[r.name for r in self.rows]}.")

    def table(self) -> str:
        """A text table: name/level, sparsity, density, steps, accuracies; ``*`` marks the best."""
        best = self.best
        rows = []
        for r in self.rows:
            label = str(r.level) if r.level is not None and r.name == f"level_{r.level}" else r.name
            rows.append([label, _fmt(r.sparsity), _fmt(r.density), r.steps, _fmt(r.train_accuracy), _fmt(r.val_loss),
                         _fmt(r.val_accuracy), _fmt(r.best_val_accuracy), f"{r.wall_time_s:.1f}",
                         "*" if best is not None and r is best else "",
                         f"collapsed: {', '.join(r.collapsed)}" if r.collapsed else ""])
        body = table(["level", "sparsity", "density", "steps", "train_acc", "val_loss", "val_acc", "best_val",
                      "time_s", "best", "note"], rows, align="<>>>>>>>>")
        return "\n".join(([self.title] if self.title else []) + [body])

    def to_dict(self) -> dict:
        return {"title": self.title, "rows": [r.metrics for r in self.rows],
                "best": self.best.name if self.best is not None else None}

    def __str__(self):
        return self.table()


def _level_dirs(run_dir: str) -> "list[str]":
    levels = sorted(int(d.split("_", 1)[1]) for d in os.listdir(run_dir)
                    if d.startswith("level_") and d.split("_", 1)[1].isdigit())
    return [f"level_{n}" for n in levels]


def _summary(run_dir: str) -> dict:
    try:
        summary = io.load_json(os.path.join(run_dir, "summary.json"))
    except (OSError, ValueError):  # absent or damaged: it is only a copy
        return {}
    return summary if isinstance(summary, dict) else {}


def _row_names(run_dir: str, config: dict, summary: dict) -> "list[str]":
    """The phases that are rows of the run, in order (complete or not)."""
    procedure = config.get("procedure")
    if procedure == "sanity":  # the dense reference is a row unless it only provided θ0
        dense = ["level_0"] if config.get("train_dense") or config.get("prune_step") else []
        return dense + [str(v) for v in config.get("variants", [])]
    if procedure in ("lottery", "early"):
        return _level_dirs(run_dir)
    names = [row.get("name") for row in summary.get("rows", []) if isinstance(row, dict)]
    return names + [n for n in _level_dirs(run_dir) if n not in names]


def _row(path: str) -> LevelResult:
    metrics = _files.read_json(path)
    try:
        return LevelResult.from_metrics(metrics)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CorruptFileError(path, f"not the metrics of a phase ({type(error).__name__}: {error})",
                               _files.advice(path)) from None


def load_results(run_dir) -> RunResults:
    """The completed rows of the run in ``run_dir`` (levels in order, or sanity-check variants)."""
    run_dir = os.fspath(run_dir)
    config_path = os.path.join(run_dir, "config.json")
    if not os.path.exists(config_path):
        raise FileNotFoundError(f"run_dir: {run_dir!r} holds no tfprune run (no config.json).")
    config = _files.read_json(config_path).get("config") or {}
    summary = _summary(run_dir)
    rows = []
    for name in _row_names(run_dir, config, summary):
        path = os.path.join(run_dir, name, "metrics.json")
        if os.path.exists(path):
            rows.append(_row(path))
    if all(r.level is not None for r in rows):
        rows.sort(key=lambda r: r.level)
    return RunResults(tuple(rows), title=str(summary.get("title", "")))
