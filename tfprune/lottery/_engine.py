"""The resumable training engine under every procedure of :mod:`tfprune.lottery`.

A *run* is a directory::

    run_dir/
      config.json            what the run is (compared on every re-invocation), layer names, seed
      init_weights.npz       θ0, the weights before any training
      summary.json           the completed rows so far (rewritten after each level, and by any
                             later call that finds it stale; results never depend on it)
      <phase>/               one per trained level or variant (level_0, level_1, ..., shuffle, ...)
        mask.npz             the masks (a ticket: tfprune.lottery.load_ticket / apply_ticket)
        rewind_weights.npz   the weights this phase started training from (masked)
        rewind_point.npz     only where captured: weights + optimizer state at the rewind step
        checkpoint.npz       while training: weights, optimizer, RNG and history after the last epoch
        trained_weights.npz  the weights after training (masked)
        sparsity_report.txt  tfprune.sparsity_report of the trained phase
        metrics.json         written last: the phase is complete iff it exists; it records the
                             digests of the phase's other files

Every file is written atomically with a checksum and verified on every read
(:mod:`tfprune.lottery._files`). :class:`Engine` owns the directory and the working model (this
module); :mod:`tfprune.lottery._rundir` holds the lock and ``config.json``,
:mod:`tfprune.lottery._phase` the checkpointed training of one phase. :meth:`Engine.prepare`
builds the model and checks the configuration without writing anything, so a finished run is
read without the lock (read-only media); :meth:`Engine.open` takes the lock to train.

Under a ``tf.distribute`` strategy (``training.distribute``) the model is built and compiled in
its scope, and only the chief writes ``run_dir``: every other worker works in a private copy
made when it starts (:mod:`tfprune.lottery.distribute`), the workers check that they resume
from the same state, and the procedures end at :meth:`Engine.barrier`, which waits for all of
them (so a worker returns only once the chief's files are complete).
"""
from __future__ import annotations

import errno
import os
import shutil
from typing import Callable, Mapping

import numpy as np
import tensorflow as tf

from tfprune import io, spec
from tfprune.lottery import _files, _kit, _phase, _progress, _rundir, _state, distribute
from tfprune.lottery._data import EvalData, TrainData
from tfprune.lottery.ticket import save_ticket, ticket_from_arrays, ticket_masks_for
from tfprune.spec import TrainingSpec
from tfprune.wrapper import apply_masks, get_masks


class Engine:
    """Builds the working model, owns run_dir and trains phases. Internal to tfprune.lottery.

    ``training`` is a :class:`tfprune.spec.TrainingSpec` already passed through
    :meth:`~tfprune.spec.TrainingSpec.checked` (by :func:`tfprune.lottery._data.data_for`).
    The model may be a tf_keras or a Keras 3 model (any backend); ``self.kit``
    (:mod:`tfprune.lottery._kit`) is its Keras, known once the model is built.
    """

    def __init__(self, model, train: TrainData, val: EvalData, *, run_dir, training: TrainingSpec):
        if _kit.is_model(model):
            _kit.kit_for(model).check_model(model)
            self.source, self.factory = model, None
        elif callable(model):
            self.source, self.factory = None, model
        else:
            raise TypeError(f"model: expected a tf_keras or Keras 3 model, or a zero-argument function that builds "
                            f"one, got {type(model).__name__}.")
        self.train, self.val, self.training = train, val, training
        self.strategy = training.distribute
        self.shared_dir = os.fspath(run_dir)  # the run directory the chief writes
        self.is_chief = distribute.is_chief(self.strategy)
        # a worker other than the chief works in a private copy (made in prepare, deleted by close)
        self.run_dir = self.shared_dir if self.is_chief else distribute.mirror_dir(self.shared_dir, self.strategy)
        if self.strategy is not None and distribute.num_workers(self.strategy) > 1 and training.seed is None:
            raise ValueError("training.seed: got None under a multi-worker strategy; allowed: an integer (every "
                             "worker must draw the same θ0 and data order).")
        self.lock = _rundir.RunLock(self.run_dir)
        self.rename: "dict[str, str]" = {}
        self._last_optimizer = None
        self._determinism_was = None
        self._stored = None
        self.model = None
        self.watch = _progress.Watch(training.verbose)

    # -- opening ---------------------------------------------------------------------------

    def scope(self):
        """The strategy's scope (a no-op without one): models and optimizers are made in it."""
        return distribute.scope(self.strategy)

    def prepare(self, procedure: str, settings: dict) -> "Engine":
        """Builds the model and checks ``run_dir``'s configuration against this one, writing
        nothing (no lock either: enough to read a finished run, also on read-only media)."""
        if not self.is_chief and self.model is None:
            distribute.make_mirror(self.shared_dir, self.run_dir)
        stored = _rundir.read_config(self.run_dir)
        self.seed = _rundir.run_seed(self.training.seed, stored)
        if self.training.deterministic:
            if self._determinism_was is None:
                self._determinism_was = spec.determinism_enabled()
            tf.config.experimental.enable_op_determinism()
        _kit.set_random_seed(self.seed)
        with self.scope():
            plain = self._build()
        self.plain = plain
        self.kit = _kit.kit_for(plain)
        if self.strategy is not None and self.kit.name != "tf_keras":
            raise ValueError("training.distribute: a tf.distribute strategy is supported for tf_keras models only; "
                             "got a Keras 3 model (train it without a strategy).")
        self.layer_names = [name for name, _ in self.kit.top_layers(plain)]
        self.kit.require_prunable(plain)
        self.prunable = list(self.kit.prunable_kernels(plain))  # kernel keys (mha/query, ...)
        with self.scope():
            self.model = apply_masks(plain, {})
            self.compile()
        self.config = _rundir.jsonable({
            "procedure": procedure,
            "format_version": _rundir.FORMAT_VERSION,
            "architecture": _rundir.architecture(plain),
            "training": _rundir.training_fingerprint(self.model, self.train, self.val, self.training),
            "seed": self.training.seed,
            **settings,
        })
        if self.strategy is not None:  # (a run never mixes replica counts: the sums round differently)
            self.config["distribute"] = {"strategy": type(self.strategy).__name__,
                                         "replicas": int(self.strategy.num_replicas_in_sync)}
        self.rename = _rundir.check_config(self.run_dir, stored, self.config, self.layer_names)
        self._stored = stored
        if self.strategy is not None and distribute.num_workers(self.strategy) > 1:
            distribute.check_same_state(self.strategy, self.shared_dir, self.run_dir)
        init_path = self.path("init_weights.npz")
        self.init_weights = (self.load_weights(init_path) if os.path.exists(init_path)
                             else _state.layer_weights(plain))
        return self

    def open(self, procedure: str, settings: dict) -> "Engine":
        """Takes the lock of ``run_dir`` to train in it: prepares (again, if the run directory
        changed since :meth:`prepare`) and writes ``config.json`` and θ0 for a new run."""
        os.makedirs(self.run_dir, exist_ok=True)
        self.lock.acquire()
        try:
            if self.model is None or _rundir.read_config(self.run_dir) != self._stored:
                self.prepare(procedure, settings)
            if self._stored is None:
                _rundir.write_config(self.run_dir, self.config, self.layer_names, self.seed)
                self._stored = _rundir.read_config(self.run_dir)
            if not os.path.exists(self.path("init_weights.npz")):
                _files.write_npz(self.path("init_weights.npz"), self.init_weights)
        except BaseException:
            self.close()
            raise
        return self

    def close(self):
        if self._determinism_was is False:  # turned on by this run: off again
            spec.disable_determinism()
        self._determinism_was = None
        self.lock.release()
        if not self.is_chief:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def barrier(self):
        """Under a multi-worker strategy: returns once every worker got here (call it where a
        procedure has finished, before its results are read from the chief's ``run_dir``)."""
        if self.strategy is not None and distribute.num_workers(self.strategy) > 1:
            distribute.barrier(self.strategy)

    def _build(self):
        if self.factory is not None:
            model = self.factory()
            if not _kit.is_model(model):
                raise TypeError(f"model (returned by the factory): expected a tf_keras or Keras 3 model, got "
                                f"{type(model).__module__}.{type(model).__name__}.")
            _kit.kit_for(model).check_model(model, "model (returned by the factory)")
            return model
        return _kit.kit_for(self.source).clone(self.source)

    # -- model plumbing --------------------------------------------------------------------

    def compile(self):
        """(Re)compiles the working model with a brand-new optimizer."""
        optimizer = self.training.compile(self.model)
        if optimizer is self._last_optimizer:
            raise ValueError("compile_fn: it reused the same optimizer object; it must create a new optimizer "
                             "on every call (the optimizer is recreated at each level).")
        self._last_optimizer = optimizer

    def set_masks(self, masks: Mapping[str, np.ndarray]):
        """Sets the phase's masks (layers not in ``masks``: all ones) and zeroes masked weights."""
        kernels = self.kit.prunable_kernels(self.model)
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
        """New initial weights, a function of ``seed``, drawn from the layers' own initializers
        (same classes and parameters) re-seeded: new also where the model fixed the seeds
        (:func:`tfprune._keras.reseeded_clone`, :func:`tfprune._keras3.training.reseeded_clone`)."""
        return _state.layer_weights(self.kit.reseeded_clone(self.plain, int(seed)))

    # -- files -----------------------------------------------------------------------------

    def path(self, *parts) -> str:
        return os.path.join(self.run_dir, *parts)

    def load_weights(self, path) -> "dict[str, np.ndarray]":
        """A weights ``.npz`` of this run, keyed by the current model's layer names."""
        return {self._rename_key(key): value for key, value in _files.read_npz(path).items()}

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
        ticket = ticket_from_arrays(_files.read_npz(path), path, self.model)
        return ticket_masks_for(self.model, ticket, match="order" if self.rename else "name")

    def save_masks(self, phase: str, masks, info: "dict | None" = None):
        save_ticket(self.path(phase, "mask.npz"), masks, self.model, info=info)

    def load_rewind_point(self, phase: str):
        """``(weights, optimizer state or None)`` captured at the rewind step of ``phase``."""
        arrays = self.load_weights(self.path(phase, "rewind_point.npz"))
        weights = _state.unprefixed("w/", arrays)
        optimizer = _state.unprefixed("opt/", arrays)
        return weights, (optimizer or None)

    def capture(self, phase: str, step: int):
        """Saves ``rewind_point.npz``: the weights now and, after step 0, the optimizer state."""
        arrays = _state.prefixed("w/", self.weights())
        if step > 0:
            arrays.update(_state.prefixed("opt/", _state.optimizer_state(self.model.optimizer, self.model)))
        _files.write_npz(self.path(phase, "rewind_point.npz"), arrays)

    def is_complete(self, phase: str) -> bool:
        return os.path.exists(self.path(phase, "metrics.json"))

    def load_metrics(self, phase: str) -> dict:
        return _files.read_json(self.path(phase, "metrics.json"))

    def finished(self, phases) -> "list[dict] | None":
        """The metrics of ``phases`` if every one is complete (verified), else None."""
        if not all(self.is_complete(phase) for phase in phases):
            return None
        return [self.load_metrics(phase) for phase in phases]

    def write_summary(self, rows: "list[dict]", complete: bool, extra: "dict | None" = None,
                      best_effort: bool = False):
        """Writes ``summary.json`` unless it already says exactly this. ``best_effort``: for a
        finished run read without the lock: a stale summary is rewritten only if the lock can
        be taken and the directory is writable; otherwise it is left (nothing reads it as truth)."""
        summary = _rundir.jsonable({"complete": complete, "rows": [
            {k: r.get(k) for k in ("name", "level", "sparsity", "density", "kept", "params", "steps", "train_loss",
                                   "train_accuracy", "val_loss", "val_accuracy", "best_val_accuracy", "wall_time_s")}
            for r in rows], **(extra or {})})
        path = self.path("summary.json")
        try:
            if io.load_json(path) == summary:
                return
        except (OSError, ValueError):  # absent, unreadable or damaged: written again
            pass
        if not best_effort:
            _files.write_json(path, summary)
            return
        try:
            self.lock.acquire()
        except (_rundir.RunInUseError, OSError):
            return
        try:
            _files.write_json(path, summary)
        except OSError as error:
            if error.errno not in (errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC):
                raise
        finally:
            self.lock.release()

    # -- training --------------------------------------------------------------------------

    def train_phase(self, phase: str, masks: Mapping[str, np.ndarray], start: Callable, start_step: int,
                    end_step: int, *, level: "int | None" = None, capture_step: "int | None" = None,
                    info: "dict | None" = None) -> dict:
        """Trains one phase, resumably: :func:`tfprune.lottery._phase.train_phase`."""
        with self.scope():
            return _phase.train_phase(self, phase, masks, start, start_step, end_step, level=level,
                                      capture_step=capture_step, info=info)
