"""The sweep's grid (methods × sparsities × seeds), generated from the registries, and its
resumable execution: one ``result.json`` per cell, written atomically; a rerun skips finished
cells; a failed cell leaves ``error.json`` and is retried next time.

How a method fills the grid is its procedure's ``grid`` attribute: ``reference`` (``dense``:
once per seed, at sparsity 0), ``cell`` (one run per sparsity: every scorer, ``tfmot_gradual``)
or ``trajectory`` (``lottery``: one run per seed to the highest sparsity; each cell is the
level nearest to its sparsity on a log scale).

Where the jobs run is :func:`run_grid`'s ``executor`` (:mod:`tfprune.experiment.executors`):
this process, cell by cell (the default), or one Ray task per job. Either way each job writes its
cells' files and the results are read back from them, so both give the same tables.
"""
from __future__ import annotations

import math
import os
import traceback

from tfprune import scoring
from tfprune.experiment import registry, runner
from tfprune.experiment.config import RESULT_FILE, Config, read_result, stored_config
from tfprune.io import save_json_atomic


def default_methods(keras: "int | None" = None) -> "list[str]":
    """The reference procedures, every registered scorer, then the other procedures in the grid
    (with ``keras``: those that run on it, e.g. no ``tfmot_gradual`` for keras=3; not those
    registered with ``default_grid=False``, e.g. ``obd``)."""
    procs = [registry.get_procedure(n) for n in registry.procedure_names()]
    procs = [p for p in procs if (keras is None or keras in p.kerases) and p.default_grid]
    scorers = [n for n in scoring.scorer_names() if n not in registry.procedure_names()]  # obd: a procedure
    return ([p.name for p in procs if p.grid == "reference"] + scorers
            + [p.name for p in procs if p.grid == "cell"] + [p.name for p in procs if p.grid == "trajectory"])


def _grid_kind(method: str) -> "str | None":
    return registry.resolve(method, {}).grid if method in registry.method_names() else None


def cells(methods, sparsities, seeds):
    """``[(method, sparsity, seed)]`` in run order: seed by seed, densest first. Reference
    methods (``dense``) run at sparsity 0 only, every other method at the nonzero sparsities."""
    out = []
    for seed in seeds:
        for sparsity in sorted(set(sparsities)):
            for method in methods:
                if (_grid_kind(method) == "reference") != (sparsity == 0.0):
                    continue
                out.append((method, sparsity, seed))
    return out


def cell_dir(out_dir, method, sparsity, seed):
    return os.path.join(out_dir, "cells", method, f"s{sparsity:g}", f"seed{seed}")


def cell_config(base: Config, out_dir, method, sparsity, seed) -> Config:
    """The cell's config: ``base`` with the cell's method (and only its procedure's settings)."""
    return base.with_method(method, sparsity=sparsity, seed=seed, out_dir=cell_dir(out_dir, method, sparsity, seed))


def finished(base: Config, out_dir, method, sparsity, seed) -> "dict | None":
    """The cell's stored result, or None; raises if it was trained with other settings."""
    return finished_config(cell_config(base, out_dir, method, sparsity, seed))


def finished_config(config: Config) -> "dict | None":
    """The stored result of the cell that runs ``config`` (in ``config.out_dir``), or None; raises
    if that result was trained with other settings."""
    done = read_result(config.out_dir)
    if done is None:
        return None
    expected, stored = config.to_dict(), stored_config(done)
    diff = sorted(k for k in expected if k not in ("out_dir", "verbose")
                  and stored.get(k) != expected[k])
    if diff:
        raise ValueError(f"{config.out_dir} holds a result trained with other settings "
                         f"({', '.join(f'{k}={stored.get(k)!r} vs {expected[k]!r}' for k in diff)}); "
                         "use another --out_dir for a different sweep.")
    return done


def _guarded(directory, fn):
    """Runs ``fn``; on failure leaves ``directory/error.json`` (and re-raises), else removes it."""
    error_path = os.path.join(directory, "error.json")
    try:
        result = fn()
    except Exception as e:
        save_json_atomic(error_path, {"error": repr(e), "traceback": traceback.format_exc()})
        raise
    if os.path.exists(error_path):
        os.remove(error_path)
    return result


def nearest_level(level_densities: "dict[int, float]", density: float) -> int:
    """The level whose density is nearest ``density`` on a log scale."""
    return min(level_densities, key=lambda lv: (abs(math.log(max(level_densities[lv], 1e-12)) - math.log(density)), lv))


def run_config(config: Config, log=print) -> dict:
    """Runs one cell's ``config`` unless its result exists (a failure leaves ``error.json`` in the
    cell and is retried next time); returns the result."""
    done = finished_config(config)
    if done is not None:
        return done
    return _guarded(config.out_dir, lambda: runner.run(config, log=log if config.verbose else (lambda *_: None)))


def run_trajectory_cells(base: Config, out_dir, method, sparsities, seed, log=print, label: "str | None" = None) -> None:
    """Runs (or resumes) ``method``'s trajectory for ``seed`` to the grid's highest sparsity and
    writes a cell per nonzero sparsity: the level nearest to it (its measured sparsity is in the
    cell's ``sparsity``). ``label`` names the cells' directory (default: the method)."""
    label = label or method
    top = max(s for s in sparsities if s > 0)
    config = base.with_method(method, sparsity=top, seed=seed,
                              out_dir=os.path.join(out_dir, "cells", label, "trajectory", f"seed{seed}"))
    log(f"{method} trajectory, seed {seed}: to sparsity {top:g} in {config.out_dir}")
    levels = runner.trajectory(config, log=log if config.verbose else (lambda *_: None))
    densities = {r["method_info"]["level"]: 1.0 - r["sparsity"] for r in levels}
    for sparsity in sorted(s for s in sparsities if s > 0):
        result = dict(levels[nearest_level(densities, 1.0 - sparsity)])
        cell = base.with_method(method, sparsity=sparsity, seed=seed, out_dir=cell_dir(out_dir, label, sparsity, seed))
        result.update(config=cell.to_dict(), target_sparsity=float(sparsity))
        result["method_info"] = dict(result["method_info"], cell=f"nearest level (log density) of one {method} "
                                     f"trajectory to sparsity {top:g}")
        save_json_atomic(os.path.join(cell.out_dir, RESULT_FILE), result)


def jobs(pending) -> "list[tuple]":
    """The jobs that finish the ``pending`` cells: one per cell, but one per (method, seed) of a
    trajectory method (its first pending cell stands for the trajectory that fills them all).
    Trajectories come first: each trains many levels one after another, so an executor that runs
    jobs side by side should start them first (longest first)."""
    trajectories, single, seen = [], [], set()
    for method, sparsity, seed in pending:
        if _grid_kind(method) != "trajectory":
            single.append((method, sparsity, seed))
        elif (method, seed) not in seen:
            seen.add((method, seed))
            trajectories.append((method, sparsity, seed))
    return trajectories + single


def run_job(base: Config, out_dir, sparsities, method, sparsity, seed, log=print) -> "list[dict]":
    """Runs one job (see :func:`jobs`) in this process; returns the results of the cells it
    finished. A failure leaves ``error.json`` in the cell and re-raises. The executors call this."""
    if _grid_kind(method) == "trajectory":
        _guarded(cell_dir(out_dir, method, sparsity, seed),
                 lambda: run_trajectory_cells(base, out_dir, method, sparsities, seed, log=log))
        done = (finished(base, out_dir, method, s, seed) for s in sorted(s for s in sparsities if s > 0))
        return [r for r in done if r is not None]
    return [run_config(cell_config(base, out_dir, method, sparsity, seed), log=log)]


def run_grid(base: Config, out_dir, methods, sparsities, seeds, log=print, executor=None) -> "list[dict]":
    """Runs (or resumes) the grid on ``executor`` (default: :class:`~.executors.LocalExecutor`,
    this process, cell by cell; :class:`~.executors.RayExecutor`: one Ray task per job); returns
    the results of the finished cells, read from their files, in grid order."""
    import contextlib
    import functools
    import time

    from tfprune.experiment import executors

    grid = cells(methods, sparsities, seeds)
    number = {cell: i for i, cell in enumerate(grid, 1)}

    def label(method, sparsity, seed):
        return f"[{number[method, sparsity, seed]}/{len(grid)}] {method:<14} sparsity {sparsity:<6g} seed {seed}"

    pending = []
    for cell in grid:  # every finished cell is checked (settings included) before anything runs
        done = finished(base, out_dir, *cell)
        if done is not None:
            log(f"{label(*cell)}: done before, test accuracy {done['test_accuracy']:.4f}")
        else:
            pending.append(cell)
    waiting = set(pending)
    executor = executor or executors.LocalExecutor()
    run = functools.partial(run_job, base, out_dir, tuple(sparsities), log=log)
    failed, start = [], time.perf_counter()
    with contextlib.closing(executor.map(run, jobs(pending))) as outcomes:
        for (method, sparsity, seed), results, error, seconds in outcomes:
            if error is not None:  # reported, written to error.json by the job, retried next time
                log(f"{label(method, sparsity, seed)}: FAILED {error!r} "
                    f"(see {cell_dir(out_dir, method, sparsity, seed)}/error.json)")
                failed.append((method, sparsity, seed))
                continue
            for result in results:
                c = result["config"]
                if (c["method"], result["target_sparsity"], c["seed"]) not in waiting:
                    continue  # a trajectory's cell that was finished before
                collapsed = f", collapsed: {','.join(result['collapsed'])}" if result["collapsed"] else ""
                log(f"{label(c['method'], result['target_sparsity'], c['seed'])}: test accuracy "
                    f"{result['test_accuracy']:.4f}, sparsity {result['sparsity']:.4f} ({seconds:.0f} s, "
                    f"total {(time.perf_counter() - start) / 60:.1f} min){collapsed}")
    if failed:
        log(f"{len(failed)} cell(s) failed: {failed}; rerun the same command to retry them.")
    return collect(base, out_dir, methods, sparsities, seeds)


def collect(base: Config, out_dir, methods, sparsities, seeds) -> "list[dict]":
    """The results of the grid's finished cells."""
    results = []
    for method, sparsity, seed in cells(methods, sparsities, seeds):
        done = finished(base, out_dir, method, sparsity, seed)
        if done is not None:
            results.append(done)
    return results
