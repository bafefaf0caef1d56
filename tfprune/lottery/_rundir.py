"""The run directory's bookkeeping: its lock and its ``config.json``.

``config.json`` records what a run *is* — the procedure, the model's architecture, the training
fingerprint (data, optimizer, loss, metrics) and the procedure's settings — and is compared on
every re-invocation: a run directory made with another configuration is refused with the list
of differences, so two runs are never mixed (the comparison writes nothing: a finished run can
be read from read-only media). ``.lock`` holds the pid of the process working in the run.
"""
from __future__ import annotations

import errno
import json
import os
import time

import numpy as np

from tfprune.io import to_jsonable
from tfprune.lottery import _files, _kit
from tfprune.lottery._data import EvalData, TrainData, _callable_name

FORMAT_VERSION = 1


class RunConfigError(ValueError):
    """``run_dir`` holds a run made with another configuration."""


class RunInUseError(RuntimeError):
    """Another live process is working in ``run_dir``."""


# ---------------------------------------------------------------------------------------------
# Configuration fingerprint
# ---------------------------------------------------------------------------------------------

def jsonable(obj):
    """``obj`` as plain JSON values (unknown objects as ``"<TypeName>"``)."""
    return json.loads(json.dumps(to_jsonable(obj), default=lambda o: f"<{type(o).__name__}>"))


def architecture(model) -> dict:
    """What a model *is*, without layer names (auto-generated names change between builds)."""
    kit = _kit.kit_for(model)
    layers = []
    for _, inner in kit.top_layers(model):
        config = {k: v for k, v in inner.get_config().items() if k != "name"}
        layers.append({"class": type(inner).__name__, "config": config,
                       "weights": [list(map(int, w.shape)) for w in inner.weights]})
    out = {"input_shape": model.input_shape, "layers": layers}
    if kit.name != "tf_keras":  # (tf_keras runs keep their config.json as it was)
        out["keras"] = {"version": kit.keras.__version__, "backend": kit.keras.backend.backend()}
    return jsonable(out)


def _describe(obj, keras):
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    if isinstance(obj, keras.losses.Loss):
        return keras.losses.serialize(obj)
    if isinstance(obj, keras.metrics.Metric):
        return keras.metrics.serialize(obj)
    if isinstance(obj, (list, tuple)):
        return [_describe(o, keras) for o in obj]
    if isinstance(obj, dict):
        return {str(k): _describe(v, keras) for k, v in obj.items()}
    if callable(obj):
        return _callable_name(obj)
    return type(obj).__name__


def training_fingerprint(model, train: TrainData, val: EvalData, training) -> dict:
    """The part of ``config.json`` that says how the run trains; ``model`` is compiled as
    ``training`` (a :class:`tfprune.spec.TrainingSpec`) compiles it."""
    keras = _kit.kit_for(model).keras
    optimizer = keras.optimizers.serialize(model.optimizer)
    if isinstance(optimizer, dict) and _kit.kit_for(model).name != "tf_keras":
        # Keras 3 names a backend's own optimizer class's module (torch_adam, ...; the backend is recorded apart)
        # and numbers the names of the optimizers a process makes (adam, adam_1, ...)
        optimizer = {k: v for k, v in optimizer.items() if k not in ("module", "registered_name")}
        optimizer["config"] = {k: v for k, v in optimizer.get("config", {}).items() if k != "name"}
    out = {"train_data": train.fingerprint(), "validation_data": val.fingerprint(),
           "optimizer": jsonable(optimizer),
           "loss": _describe(model.loss, keras), "continue_lr_schedule": training.continue_lr_schedule}
    if training.compile_fn is not None:
        out["compile_fn"] = _callable_name(training.compile_fn)
    else:
        out["metrics"] = _describe(list(training.metrics), keras)
    return out


def _short(value, limit=120):
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def config_differences(stored, current, path: str = "") -> "list[str]":
    """Human-readable differences between two JSON-like configurations.

    Example:
        >>> config_differences({"a": 1, "b": [1, 2]}, {"a": 2, "b": [1, 3], "c": None})
        ['a: stored 1, now 2', 'b[1]: stored 2, now 3', 'c: absent in the stored run, now null']
    """
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


def read_config(run_dir: str) -> "dict | None":
    """The stored ``config.json`` of ``run_dir`` (None for a new run)."""
    path = os.path.join(run_dir, "config.json")
    return _files.read_json(path) if os.path.exists(path) else None


def run_seed(requested: "int | None", stored: "dict | None") -> int:
    """The seed of a run: the requested one, else the one a stored run drew, else a new draw."""
    if requested is not None:
        return int(requested)
    if stored is not None:
        return int(stored["seed_used"])
    return int(np.random.SeedSequence().generate_state(1)[0] & 0x7FFFFFFF)


def check_config(run_dir: str, stored: "dict | None", config: dict, layer_names: "list[str]") -> "dict[str, str]":
    """Checks ``config`` against the stored one (a :class:`RunConfigError` listing the
    differences; nothing is written); returns ``{stored layer name: current name}`` for the
    layers whose auto-generated names changed since (empty for a new run)."""
    if stored is None:
        return {}
    differences = config_differences(stored.get("config"), config)
    if differences:
        raise RunConfigError(
            f"run_dir: {run_dir!r} holds a run made with a different configuration; refusing to mix runs. "
            "Differences: " + "; ".join(differences) + ". Use another run_dir, or delete this one to start over.")
    old = stored.get("layer_names", layer_names)
    return {a: b for a, b in zip(old, layer_names) if a != b}


def write_config(run_dir: str, config: dict, layer_names: "list[str]", seed: int) -> None:
    """Writes ``config.json`` of a new run."""
    _files.write_json(os.path.join(run_dir, "config.json"), {
        "config": config, "layer_names": layer_names, "seed_used": seed,
        "created": time.strftime("%Y-%m-%d %H:%M:%S")})


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
                self._take_over_stale()
                continue
            except OSError as error:
                if error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
                    raise
                raise OSError(error.errno, f"run_dir: {os.path.dirname(self.path)!r} is not writable "
                                           f"({error.strerror}) and the run is not finished; training needs a "
                                           "writable run_dir (copy it somewhere writable to continue it)",
                              self.path) from None
            with os.fdopen(fd, "w") as handle:
                handle.write(str(os.getpid()))
            self.held = True
            return self
        raise RunInUseError(f"run_dir: could not take the lock {self.path}.")

    def _take_over_stale(self):
        """Removes the lock of a dead process (or of this one); a live one's: :class:`RunInUseError`."""
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

    def release(self):
        if self.held:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
            self.held = False
