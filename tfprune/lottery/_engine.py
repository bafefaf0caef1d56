"""The resumable training engine under every procedure of :mod:`tfprune.lottery`.

A *run* is a directory::

    run_dir/
      config.json            what the run is (compared on every re-invocation), layer names, seed
      init_weights.npz       θ0, the weights before any training
      summary.json           the completed rows so far (rewritten after each level)
      <phase>/               one per trained level or variant (level_0, level_1, ..., shuffle, ...)
        mask.npz             the masks (a ticket: tfprune.lottery.load_ticket / apply_ticket)
        rewind_weights.npz   the weights this phase started training from (masked)
        rewind_point.npz     only where captured: weights + optimizer state at the rewind step
        checkpoint.npz       while training: weights, optimizer, RNG and history after the last epoch
        trained_weights.npz  the weights after training (masked)
        sparsity_report.txt  tfprune.sparsity_report of the trained phase
        metrics.json         written last: the phase is complete iff it exists

Every file is written atomically (:mod:`tfprune.io`). A phase is trained with ``model.fit``
once per epoch (and split at a rewind step), each call reseeded from ``(seed, phase, step)``
with a freshly traced train function and fed the batches :class:`TrainData` assigns to those
global steps; after each call the weights, optimizer variables, learning rate, layer RNG
states and history are checkpointed. A killed run re-invoked therefore continues bit for bit
(on CPU with ``tf.config.experimental.enable_op_determinism()``).
"""
from __future__ import annotations

import copy
import json
import os
import time
import zlib
from typing import Callable, Mapping, Sequence

import numpy as np
import tensorflow as tf

from tfprune import _keras
from tfprune._keras import keras
from tfprune.api import callbacks as pruning_callbacks
from tfprune.io import load_json, load_npz, save_json_atomic, save_npz_atomic, atomic_write, to_jsonable
from tfprune.lottery import _state
from tfprune.lottery._data import EvalData, TrainData, _callable_name
from tfprune.lottery.ticket import save_ticket, ticket_masks_for
from tfprune.report import sparsity_report
from tfprune.wrapper import apply_masks, get_masks

FORMAT_VERSION = 1
_ACCURACY_KEYS = ("accuracy", "acc", "sparse_categorical_accuracy", "categorical_accuracy", "binary_accuracy")


class RunConfigError(ValueError):
    """``run_dir`` holds a run made with another configuration."""


class RunInUseError(RuntimeError):
    """Another live process is working in ``run_dir``."""


# ---------------------------------------------------------------------------------------------
# Configuration fingerprint
# ---------------------------------------------------------------------------------------------

def _jsonable(obj):
    return json.loads(json.dumps(to_jsonable(obj), default=lambda o: f"<{type(o).__name__}>"))


def architecture(model) -> dict:
    """What a model *is*, without layer names (auto-generated names change between builds)."""
    layers = []
    for layer in model.layers:
        inner = _keras.inner_layer(layer)
        config = {k: v for k, v in inner.get_config().items() if k != "name"}
        layers.append({"class": type(inner).__name__, "config": config,
                       "weights": [list(map(int, w.shape)) for w in inner.weights]})
    return _jsonable({"input_shape": model.input_shape, "layers": layers})


def _short(value, limit=120):
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def config_differences(stored, current, path: str = "") -> "list[str]":
    """Human-readable differences between two JSON-like configurations."""
    out = []
    if isinstance(stored, dict) and isinstance(current, dict):
        for key in list(stored) + [k for k in current if k not in stored]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in current:
                out.append(f"{sub}: stored {_short(stored[key])}, now absent")
            elif key not in stored:
                out.append(f"{sub}: absent in the stored run, now {_short(current[key])}")
            else:
                out.extend(config_differences(stored[key], current[key], sub))
    elif isinstance(stored, list) and isinstance(current, list) and len(stored) == len(current):
        for i, (a, b) in enumerate(zip(stored, current)):
            out.extend(config_differences(a, b, f"{path}[{i}]"))
    elif stored != current:
        out.append(f"{path}: stored {_short(stored)}, now {_short(current)}")
    return out


def _describe(obj):
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, keras.losses.Loss):
        return keras.losses.serialize(obj)
    if isinstance(obj, keras.metrics.Metric):
        return keras.metrics.serialize(obj)
    if isinstance(obj, (list, tuple)):
        return [_describe(o) for o in obj]
    if isinstance(obj, dict):
        return {str(k): _describe(v) for k, v in obj.items()}
    if callable(obj):
        return _callable_name(obj)
    return type(obj).__name__


def _determinism_enabled() -> "bool | None":
    try:
        from tensorflow.python.framework import config as tf_config
        return bool(tf_config.is_op_determinism_enabled())
    except (ImportError, AttributeError):
        return None


def _disable_determinism() -> None:
    try:
        from tensorflow.python.framework import config as tf_config
        tf_config.disable_op_determinism()
    except (ImportError, AttributeError):
        pass


# ---------------------------------------------------------------------------------------------
# Lock
# ---------------------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLock:
    """``run_dir/.lock`` holding the pid of the process working in the run (stale locks of dead
    processes, or of this process, are taken over)."""

    def __init__(self, run_dir: str):
        self.path = os.path.join(run_dir, ".lock")
        self.held = False

    def acquire(self):
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                try:
                    with open(self.path) as handle:
                        pid = int(handle.read().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid and pid != os.getpid() and _alive(pid):
                    raise RunInUseError(f"run_dir: {os.path.dirname(self.path)!r} is in use by process {pid} "
                                        f"(lock file {self.path}); wait for it, or remove the lock if that process "
                                        "is not a tfprune run.") from None
                try:
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            self.held = True
            return self
        raise RunInUseError(f"run_dir: could not take the lock {self.path}.")

    def release(self):
        if self.held:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            self.held = False


# ---------------------------------------------------------------------------------------------
# Segments
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Engine
# ---------------------------------------------------------------------------------------------

class Engine:
    """Builds the working model, owns run_dir and trains phases. Internal to tfprune.lottery."""

    def __init__(self, model, train: TrainData, val: EvalData, *, run_dir, compile_fn=None, optimizer="adam",
                 loss=None, metrics=("accuracy",), seed=None, callbacks=(), verbose=0,
                 continue_lr_schedule=False, deterministic=False):
        if isinstance(model, keras.Model):
            _keras.check_model(model)
            self.source, self.factory = model, None
        elif callable(model):
            self.source, self.factory = None, model
        else:
            raise TypeError(f"model: expected a tf_keras model or a zero-argument function that builds one, got "
                            f"{type(model).__name__}.")
        if compile_fn is None and loss is None:
            raise ValueError("loss: got None; pass loss=... (e.g. 'sparse_categorical_crossentropy') or "
                             "compile_fn=lambda model: model.compile(...).")
        if compile_fn is not None and not callable(compile_fn):
            raise TypeError(f"compile_fn: expected a callable(model) that compiles it, got {type(compile_fn).__name__}.")
        self.train, self.val = train, val
        self.run_dir = os.fspath(run_dir)
        self.compile_fn, self.optimizer, self.loss = compile_fn, optimizer, loss
        self.metrics = list(metrics) if metrics else []
        self.seed_arg = seed
        self.callbacks = list(callbacks or [])
        self.verbose = verbose
        self.continue_lr_schedule = bool(continue_lr_schedule)
        self.deterministic = bool(deterministic)
        self.lock = RunLock(self.run_dir)
        self.rename: "dict[str, str]" = {}
        self._last_optimizer = None
        self.model = None

    # -- opening ---------------------------------------------------------------------------

    def open(self, procedure: str, settings: dict) -> "Engine":
        """Creates or checks ``run_dir`` against this configuration and builds the model."""
        os.makedirs(self.run_dir, exist_ok=True)
        self.lock.acquire()
        try:
            self._open(procedure, settings)
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        self._restore_determinism()
        self.lock.release()

    def _enable_determinism(self):
        """Turns TF op determinism on for the duration of the run (off again at close if it was off)."""
        self._determinism_was = _determinism_enabled()
        tf.config.experimental.enable_op_determinism()

    def _restore_determinism(self):
        was = getattr(self, "_determinism_was", None)
        if was is False:
            _disable_determinism()
        self._determinism_was = None

    def _open(self, procedure, settings):
        config_path = os.path.join(self.run_dir, "config.json")
        stored = load_json(config_path) if os.path.exists(config_path) else None
        if self.seed_arg is not None:
            self.seed = int(self.seed_arg)
        elif stored is not None:
            self.seed = int(stored["seed_used"])
        else:
            self.seed = int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)
        if self.deterministic:
            self._enable_determinism()
        keras.utils.set_random_seed(self.seed)
        plain = self._build()
        self.plain = plain
        self.layer_names = [_keras.inner_layer(l).name for l in plain.layers]
        self.prunable = list(_keras.require_prunable(plain))
        self.model = apply_masks(plain, {})
        self.compile()
        config = _jsonable({
            "procedure": procedure,
            "format_version": FORMAT_VERSION,
            "architecture": architecture(plain),
            "training": self._training_fingerprint(),
            "seed": self.seed_arg,
            **settings,
        })
        if stored is not None:
            differences = config_differences(stored.get("config"), config)
            if differences:
                raise RunConfigError(
                    f"run_dir: {self.run_dir!r} holds a run made with a different configuration; refusing to mix "
                    f"runs. Differences: " + "; ".join(differences)
                    + ". Use another run_dir, or delete this one to start over.")
            old = stored.get("layer_names", self.layer_names)
            self.rename = {a: b for a, b in zip(old, self.layer_names) if a != b}
        else:
            save_json_atomic(config_path, {"config": config, "layer_names": self.layer_names,
                                           "seed_used": self.seed, "created": time.strftime("%Y-%m-%d %H:%M:%S")})
        init_path = os.path.join(self.run_dir, "init_weights.npz")
        if os.path.exists(init_path):
            self.init_weights = self.load_weights(init_path)
        else:
            self.init_weights = _state.layer_weights(plain)
            save_npz_atomic(init_path, self.init_weights)
        self.config = config

    def _build(self):
        if self.factory is not None:
            model = self.factory()
            _keras.check_model(model, "model (returned by the factory)")
            return model
        model = keras.models.clone_model(self.source)
        model.set_weights(self.source.get_weights())
        return model

    def _training_fingerprint(self) -> dict:
        out = {"train_data": self.train.fingerprint(), "validation_data": self.val.fingerprint(),
               "optimizer": _jsonable(keras.optimizers.serialize(self.model.optimizer)),
               "loss": _describe(self.model.loss), "continue_lr_schedule": self.continue_lr_schedule}
        if self.compile_fn is not None:
            out["compile_fn"] = _callable_name(self.compile_fn)
        else:
            out["metrics"] = _describe(self.metrics)
        return out

    # -- model plumbing --------------------------------------------------------------------

    def _new_optimizer(self):
        opt = self.optimizer
        if isinstance(opt, str):
            return keras.optimizers.get(opt)
        if isinstance(opt, dict):
            return keras.optimizers.deserialize(copy.deepcopy(opt))
        if isinstance(opt, (keras.optimizers.Optimizer, keras.optimizers.legacy.Optimizer)):
            return type(opt).from_config(opt.get_config())
        if callable(opt):
            made = opt()
            if not isinstance(made, (keras.optimizers.Optimizer, keras.optimizers.legacy.Optimizer)):
                raise TypeError(f"optimizer: the factory returned {type(made).__name__}, not a tf_keras optimizer.")
            return made
        raise TypeError(f"optimizer: expected a name ('adam'), a serialized config dict, a tf_keras optimizer (its "
                        f"config is reused) or a function returning a new one; got {type(opt).__name__}.")

    def compile(self):
        """(Re)compiles the working model with a brand-new optimizer."""
        if self.compile_fn is not None:
            self.compile_fn(self.model)
            optimizer = getattr(self.model, "optimizer", None)
            if optimizer is None:
                raise ValueError("compile_fn: the model has no optimizer after compile_fn(model); it must call "
                                 "model.compile(optimizer=..., loss=..., metrics=...).")
            if optimizer is self._last_optimizer:
                raise ValueError("compile_fn: it reused the same optimizer object; it must create a new optimizer "
                                 "on every call (the optimizer is recreated at each level).")
        else:
            self.model.compile(optimizer=self._new_optimizer(), loss=self.loss, metrics=list(self.metrics))
        self._last_optimizer = self.model.optimizer

    def set_masks(self, masks: Mapping[str, np.ndarray]):
        """Sets the phase's masks (layers not in ``masks``: all ones) and zeroes masked weights."""
        kernels = _keras.prunable_kernels(self.model)
        full = {name: np.ones(kernels[name].shape, np.float32) for name in self.prunable}
        full.update(masks)
        apply_masks(self.model, full)
        return full

    def masks(self) -> "dict[str, np.ndarray]":
        return get_masks(self.model)

    def set_weights(self, weights: Mapping[str, np.ndarray]):
        """Sets the user's weights (already keyed by current names) and re-applies the masks."""
        _state.set_layer_weights(self.model, weights)
        apply_masks(self.model, get_masks(self.model))

    def weights(self, masked: bool = True) -> "dict[str, np.ndarray]":
        return _state.layer_weights(self.model, get_masks(self.model) if masked else None)

    def fresh_weights(self, seed: int) -> "dict[str, np.ndarray]":
        """New initial weights drawn from the layers' own initializers (a clone of the model)."""
        keras.utils.set_random_seed(int(seed))
        clone = keras.models.clone_model(self.plain)
        return _state.layer_weights(clone)

    # -- files -----------------------------------------------------------------------------

    def path(self, *parts) -> str:
        return os.path.join(self.run_dir, *parts)

    def load_weights(self, path) -> "dict[str, np.ndarray]":
        """A weights ``.npz`` of this run, keyed by the current model's layer names."""
        return {self._rename_key(key): value for key, value in load_npz(path).items()}

    def _rename_key(self, key: str) -> str:
        if not self.rename:
            return key
        for prefix in ("w/", "rng/"):
            if key.startswith(prefix):
                rest = key[len(prefix):]
                return prefix + (self._rename_key(rest) if prefix == "w/" else self.rename.get(rest, rest))
        name, sep, index = key.rpartition(_state.SEP)
        return f"{self.rename.get(name, name)}{sep}{index}" if sep else key

    def load_masks(self, phase: str) -> "dict[str, np.ndarray]":
        return self.load_masks_file(self.path(phase, "mask.npz"))

    def load_masks_file(self, path) -> "dict[str, np.ndarray]":
        return ticket_masks_for(self.model, path, match="order" if self.rename else "name")

    def save_masks(self, phase: str, masks, info: "dict | None" = None):
        save_ticket(self.path(phase, "mask.npz"), masks, self.model, info=info)

    def load_rewind_point(self, phase: str):
        """``(weights, optimizer state or None)`` captured at the rewind step of ``phase``."""
        arrays = self.load_weights(self.path(phase, "rewind_point.npz"))
        weights = _state.unprefixed("w/", arrays)
        optimizer = _state.unprefixed("opt/", arrays)
        return weights, (optimizer or None)

    def is_complete(self, phase: str) -> bool:
        return os.path.exists(self.path(phase, "metrics.json"))

    def load_metrics(self, phase: str) -> dict:
        return load_json(self.path(phase, "metrics.json"))

    def _capture(self, phase: str, step: int, with_optimizer: bool):
        arrays = _state.prefixed("w/", self.weights())
        if with_optimizer and step > 0:
            arrays.update(_state.prefixed("opt/", _state.optimizer_state(self.model.optimizer, self.model)))
        save_npz_atomic(self.path(phase, "rewind_point.npz"), arrays)

    # -- training --------------------------------------------------------------------------

    def _segment_seed(self, phase: str, step: int) -> int:
        return zlib.crc32(f"{self.seed}/{phase}/{step}".encode()) & 0x7FFFFFFF

    def train_phase(self, phase: str, masks: Mapping[str, np.ndarray], start: Callable, start_step: int, end_step: int,
                    *, level: "int | None" = None, capture_step: "int | None" = None, info: "dict | None" = None) -> dict:
        """Trains one phase (resuming from its checkpoint if there is one); returns its metrics.

        Args:
            phase: directory name under run_dir.
            masks: the phase's masks (saved as ``mask.npz`` if not there yet).
            start: ``() -> (weights, optimizer state or None)``, called only when the phase has
                no checkpoint: the weights to start from (masked here) and an optimizer state to
                continue from (None: fresh optimizer).
            start_step, end_step: global steps of the phase's training (may be equal: evaluate only).
            capture_step: step at which to save ``rewind_point.npz`` (weights + optimizer state).
        """
        if self.is_complete(phase):
            return self.load_metrics(phase)
        os.makedirs(self.path(phase), exist_ok=True)
        masks = self.set_masks(masks)
        if not os.path.exists(self.path(phase, "mask.npz")):
            self.save_masks(phase, masks, info={"phase": phase, "level": level, **(info or {})})
        self.compile()
        model = self.model
        checkpoint_path = self.path(phase, "checkpoint.npz")
        if os.path.exists(checkpoint_path):
            arrays = self.load_weights(checkpoint_path)
            state = json.loads(arrays.pop("__state__").tobytes().decode("utf-8"))
            _state.set_layer_weights(model, _state.unprefixed("w/", arrays))
            _state.restore_optimizer(model.optimizer, model, _state.unprefixed("opt/", arrays))
            _state.restore_rng_state(model, _state.unprefixed("rng/", arrays))
            step, history, elapsed, stopped = state["step"], state["history"], state["elapsed"], state["stopped"]
        else:
            weights, optimizer_state = start()
            self.set_weights(weights)
            if optimizer_state:
                _state.restore_optimizer(model.optimizer, model, optimizer_state)
            elif self.continue_lr_schedule and start_step:
                _state.set_optimizer_step(model.optimizer, model, start_step)
            save_npz_atomic(self.path(phase, "rewind_weights.npz"), self.weights())
            step, history, elapsed, stopped = start_step, [], 0.0, False
            if capture_step is not None and capture_step == step:
                self._capture(phase, step, with_optimizer=True)
        spe = self.train.steps_per_epoch
        callbacks = pruning_callbacks() + self.callbacks
        segments = [] if stopped else plan_segments(step, end_step, spe, [capture_step])
        for a, b in segments:
            epoch = a // spe
            keras.utils.set_random_seed(self._segment_seed(phase, a))
            model.make_train_function(force=True)
            model.stop_training = False
            t0 = time.perf_counter()
            hist = model.fit(**self.train.segment(epoch, a - epoch * spe, b - epoch * spe, self.seed),
                             initial_epoch=epoch, epochs=epoch + 1, callbacks=callbacks,
                             verbose=2 if self.verbose >= 2 else 0,
                             **self.val.fit_kwargs())
            elapsed += time.perf_counter() - t0
            logs = {k: float(v[-1]) for k, v in hist.history.items() if v}
            history.append({"epoch": epoch, "start_step": a, "end_step": b, **logs})
            step = b
            stopped = bool(model.stop_training) and step < end_step
            if capture_step is not None and step == capture_step:
                self._capture(phase, step, with_optimizer=True)
            self._checkpoint(checkpoint_path, step, history, elapsed, stopped)
            if stopped:
                break
        return self._finish(phase, level, start_step, end_step, step, history, elapsed, stopped)

    def _checkpoint(self, path, step, history, elapsed, stopped):
        model = self.model
        arrays = _state.prefixed("w/", _state.layer_weights(model))
        arrays.update(_state.prefixed("opt/", _state.optimizer_state(model.optimizer, model)))
        arrays.update(_state.prefixed("rng/", _state.rng_state(model)))
        state = {"step": step, "history": history, "elapsed": elapsed, "stopped": stopped}
        arrays["__state__"] = np.frombuffer(json.dumps(to_jsonable(state)).encode("utf-8"), dtype=np.uint8)
        save_npz_atomic(path, arrays)

    def _finish(self, phase, level, start_step, end_step, step, history, elapsed, stopped) -> dict:
        model = self.model
        t0 = time.perf_counter()
        if history:
            final = dict(history[-1])
        else:
            final = self.val.evaluate(model)
        elapsed += time.perf_counter() - t0
        acc_key = _accuracy_key({(k[4:] if k.startswith("val_") else k): v for k, v in final.items()
                                 if k not in ("epoch", "start_step", "end_step")})
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
            "accuracy_metric": acc_key, "final_logs": {k: v for k, v in final.items()
                                                       if k not in ("epoch", "start_step", "end_step")},
            "history": history, "collapsed": report.collapsed, "sparsity_report": report.to_dict(),
            "wall_time_s": elapsed,
        }
        save_npz_atomic(self.path(phase, "trained_weights.npz"), self.weights())
        atomic_write(self.path(phase, "sparsity_report.txt"), str(report) + "\n")
        save_json_atomic(self.path(phase, "metrics.json"), metrics)
        try:
            os.remove(self.path(phase, "checkpoint.npz"))
        except FileNotFoundError:
            pass
        if self.verbose:
            val = metrics["val_accuracy"]
            print(f"[tfprune.lottery] {phase}: sparsity {metrics['sparsity']:.4f}, "
                  f"val_{acc_key or 'accuracy'} {'-' if val is None else f'{val:.4f}'}, {elapsed:.1f} s", flush=True)
        return load_json(self.path(phase, "metrics.json"))

    def write_summary(self, rows: "list[dict]", complete: bool, extra: "dict | None" = None):
        save_json_atomic(self.path("summary.json"), {"complete": complete, "rows": [
            {k: r.get(k) for k in ("name", "level", "sparsity", "density", "kept", "params", "steps", "train_loss",
                                   "train_accuracy", "val_loss", "val_accuracy", "best_val_accuracy", "wall_time_s")}
            for r in rows], **(extra or {})})
