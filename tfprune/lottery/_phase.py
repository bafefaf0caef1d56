"""Training one phase (a level or a variant) of a run, checkpointed after every ``fit`` call.

A phase is trained with ``model.fit`` once per epoch (and split at a capture step), each call
reseeded from ``(seed, phase, step)`` with a freshly traced train function and fed the batches
:class:`tfprune.lottery._data.TrainData` assigns to those global steps; after each call the
weights, optimizer variables, layer RNG states and history go to ``checkpoint.npz``. A killed
run re-invoked therefore continues bit for bit (with op determinism on). The phase ends with
``trained_weights.npz``, ``sparsity_report.txt`` and, last, ``metrics.json`` (which records the
digests of the phase's files). Every epoch end goes past :class:`tfprune.lottery._progress.Watch`
(progress lines, the not-learning warning).
"""
from __future__ import annotations

import json
import math
import os
import time
import zlib
from typing import TYPE_CHECKING, Callable, Mapping, Sequence

import numpy as np

from tfprune.io import atomic_write, to_jsonable
from tfprune.lottery import _files, _kit, _state
from tfprune.report import sparsity_report

if TYPE_CHECKING:
    from tfprune.lottery._engine import Engine

_ACCURACY_KEYS = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy")
_STEP_KEYS = ("epoch", "start_step", "end_step")


def plan_segments(start: int, end: int, steps_per_epoch: int, breaks: Sequence[int] = ()) -> "list[tuple[int, int]]":
    """``[(a, b)]`` global-step ranges covering ``[start, end)``, cut at epoch boundaries and at
    ``breaks``; each range lies within one epoch.

    Example:
        >>> plan_segments(3, 12, 5, breaks=[7])
        [(3, 5), (5, 7), (7, 10), (10, 12)]
    """
    points = {start, end}
    first_boundary = -(-start // steps_per_epoch) * steps_per_epoch
    points.update(range(first_boundary, end, steps_per_epoch))
    points.update(b for b in breaks if b is not None and start < b < end)
    points = sorted(p for p in points if start <= p <= end)
    return [(a, b) for a, b in zip(points, points[1:]) if b > a]


def _accuracy_key(logs: Mapping[str, float]) -> "str | None":
    for key in _ACCURACY_KEYS:
        if key in logs:
            return key
    others = [k for k in logs if not k.startswith("val_") and k != "loss"]
    return others[0] if others else None


def _segment_seed(seed: int, phase: str, step: int) -> int:
    return zlib.crc32(f"{seed}/{phase}/{step}".encode()) & 0x7FFFFFFF


def train_phase(engine: "Engine", phase: str, masks: Mapping[str, np.ndarray], start: Callable, start_step: int,
                end_step: int, *, level: "int | None" = None, capture_step: "int | None" = None,
                info: "dict | None" = None) -> dict:
    """Trains one phase (resuming from its checkpoint if there is one); returns its metrics.

    Args:
        phase: directory name under run_dir.
        masks: the phase's masks (saved as ``mask.npz`` if not there yet).
        start: ``() -> (weights, optimizer state or None)``, called only when the phase has no
            checkpoint: the weights to start from (masked here) and an optimizer state to
            continue from (None: fresh optimizer).
        start_step, end_step: global steps of the phase's training (may be equal: evaluate only).
        capture_step: step at which to save ``rewind_point.npz`` (weights + optimizer state).
    """
    if engine.is_complete(phase):
        return engine.load_metrics(phase)
    os.makedirs(engine.path(phase), exist_ok=True)
    masks = engine.set_masks(masks)
    if not os.path.exists(engine.path(phase, "mask.npz")):
        engine.save_masks(phase, masks, info={"phase": phase, "level": level, **(info or {})})
    engine.compile()
    model, training = engine.model, engine.training
    checkpoint_path = engine.path(phase, "checkpoint.npz")
    if os.path.exists(checkpoint_path):
        arrays = engine.load_weights(checkpoint_path)
        state = json.loads(arrays.pop("__state__").tobytes().decode("utf-8"))
        _state.set_layer_weights(model, _state.unprefixed("w/", arrays))
        _state.restore_optimizer(model.optimizer, model, _state.unprefixed("opt/", arrays))
        _state.restore_rng_state(model, _state.unprefixed("rng/", arrays))
        step, history, elapsed, stopped = state["step"], state["history"], state["elapsed"], state["stopped"]
    else:
        weights, optimizer_state = start()
        engine.set_weights(weights)
        if optimizer_state:
            _state.restore_optimizer(model.optimizer, model, optimizer_state)
        elif training.continue_lr_schedule and start_step:
            _state.set_optimizer_step(model.optimizer, model, start_step)
        _files.write_npz(engine.path(phase, "rewind_weights.npz"), engine.weights())
        step, history, elapsed, stopped = start_step, [], 0.0, False
        if capture_step is not None and capture_step == step:
            engine.capture(phase, step)
    spe = engine.train.steps_per_epoch
    callbacks = engine.kit.fit_callbacks() + list(training.callbacks)
    segments = [] if stopped else plan_segments(step, end_step, spe, [capture_step])
    for a, b in segments:
        epoch = a // spe
        _kit.set_random_seed(_segment_seed(engine.seed, phase, a))
        model.make_train_function(force=True)
        model.stop_training = False
        t0 = time.perf_counter()
        hist = model.fit(**engine.train.segment(epoch, a - epoch * spe, b - epoch * spe, engine.seed),
                         initial_epoch=epoch, epochs=epoch + 1, callbacks=callbacks, shuffle=False,
                         verbose=2 if training.verbose >= 2 else 0, **engine.val.fit_kwargs())
        elapsed += time.perf_counter() - t0
        logs = {k: float(v[-1]) for k, v in hist.history.items() if v}
        history.append({"epoch": epoch, "start_step": a, "end_step": b, **logs})
        step = b
        if b % spe == 0 or b == end_step:
            engine.watch.epoch_end(model, phase, epoch + 1, math.ceil(end_step / spe), b, end_step, logs,
                                   _accuracy_key(logs), elapsed)
        stopped = bool(model.stop_training) and step < end_step
        if capture_step is not None and step == capture_step:
            engine.capture(phase, step)
        _checkpoint(model, checkpoint_path, {"step": step, "history": history, "elapsed": elapsed,
                                             "stopped": stopped})
        if stopped:
            break
    return _finish(engine, phase, level, (start_step, end_step, step), history, elapsed, stopped)


def _checkpoint(model, path: str, state: dict):
    arrays = _state.prefixed("w/", _state.layer_weights(model))
    arrays.update(_state.prefixed("opt/", _state.optimizer_state(model.optimizer, model)))
    arrays.update(_state.prefixed("rng/", _state.rng_state(model)))
    arrays["__state__"] = np.frombuffer(json.dumps(to_jsonable(state)).encode("utf-8"), dtype=np.uint8)
    _files.write_npz(path, arrays)


def _finish(engine: "Engine", phase: str, level, steps: "tuple[int, int, int]", history: list, elapsed: float,
            stopped: bool) -> dict:
    """Writes the phase's trained weights, sparsity report and (last) metrics.json."""
    start_step, end_step, step = steps
    model = engine.model
    t0 = time.perf_counter()
    final = dict(history[-1]) if history else engine.val.evaluate(model)
    elapsed += time.perf_counter() - t0
    acc_key = _accuracy_key({(k[4:] if k.startswith("val_") else k): v for k, v in final.items()
                             if k not in _STEP_KEYS})
    val_accs = [h.get(f"val_{acc_key}") for h in history if acc_key and h.get(f"val_{acc_key}") is not None]
    if not history and acc_key and f"val_{acc_key}" in final:
        val_accs = [final[f"val_{acc_key}"]]
    report = sparsity_report(model)
    metrics = {
        "name": phase, "level": level,
        "sparsity": report.sparsity, "density": 1.0 - report.sparsity, "kept": report.kept, "params": report.params,
        "start_step": start_step, "end_step": step, "steps": step - start_step, "planned_end_step": end_step,
        "stopped_early": stopped,
        "train_loss": final.get("loss"), "train_accuracy": final.get(acc_key) if acc_key else None,
        "val_loss": final.get("val_loss"), "val_accuracy": final.get(f"val_{acc_key}") if acc_key else None,
        "best_val_accuracy": max(val_accs) if val_accs else None,
        "accuracy_metric": acc_key, "final_logs": {k: v for k, v in final.items() if k not in _STEP_KEYS},
        "history": history, "collapsed": report.collapsed, "sparsity_report": report.to_dict(),
        "wall_time_s": elapsed,
    }
    _files.write_npz(engine.path(phase, "trained_weights.npz"), engine.weights())
    atomic_write(engine.path(phase, "sparsity_report.txt"), str(report) + "\n")
    metrics["files"] = _files.phase_digests(engine.path(phase))
    _files.write_json(engine.path(phase, "metrics.json"), metrics)
    try:
        os.remove(engine.path(phase, "checkpoint.npz"))
    except FileNotFoundError:
        pass
    val = metrics["val_accuracy"]
    engine.watch.phase_end(f"[tfprune.lottery] {phase}: sparsity {metrics['sparsity']:.4f}, "
                           f"val_{acc_key or 'accuracy'} {'-' if val is None else f'{val:.4f}'}, {elapsed:.1f} s")
    return engine.load_metrics(phase)
