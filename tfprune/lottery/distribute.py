"""Runs of :mod:`tfprune.lottery` under a ``tf.distribute`` strategy: making the strategy, the chief.

The one place that knows how to make a strategy from a name (the binaries' ``--strategy``) and
``TF_CONFIG``, and how the engine (:mod:`tfprune.lottery._engine`) behaves on a worker that is
not the chief. It lives in :mod:`tfprune.lottery` because the engine needs it and
:mod:`tfprune.experiment` (the binaries) already builds on the engine.

* ``"mirrored"``: ``tf.distribute.MirroredStrategy`` on this machine's GPUs, or on
  ``cpu_replicas`` logical CPU devices (the CPU split into N; for tests and examples).
* ``"multi_worker"``: ``tf.distribute.MultiWorkerMirroredStrategy``; the cluster and this
  process's task come from the ``TF_CONFIG`` environment variable.

A run trained under a strategy (``TrainingSpec(distribute=strategy)``) keeps one run directory,
written by the chief only (:func:`is_chief`: the ``chief`` task, else ``worker`` 0). Every other
worker reads the run directory once when it starts (to resume where the chief stopped: the
directory must be one every worker sees, a shared mount), then works in a private copy of it,
``.<run_dir name>.<task>`` beside it, deleted when the run ends (:func:`mirror_dir`); the files
are hard-linked where possible (they are only ever replaced by renames, never changed in place).
Before training, the workers compare what they found (:func:`check_same_state`): a worker that
sees another state (no shared directory, a stale copy) stops with an error instead of training
a different run.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil

import numpy as np
import tensorflow as tf

from tfprune import checks
from tfprune.io import DIGEST_KEY

__all__ = ["STRATEGIES", "make_strategy", "scope", "split_cpu", "is_chief", "num_workers", "task_name"]

#: The names :func:`make_strategy` (and the binaries' ``--strategy``) accept.
STRATEGIES = ("none", "mirrored", "multi_worker")


def split_cpu(replicas: int) -> "list[str]":
    """Splits the CPU into ``replicas`` logical devices (before TensorFlow initialises);
    returns their names. Calling it again with the same number is harmless."""
    replicas = checks.integer(replicas, "cpu_replicas", 1)
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != replicas:
            raise ValueError(f"cpu_replicas: got {replicas}; TensorFlow is already initialised with {have} logical "
                             "CPU device(s); split the CPU before anything runs TensorFlow.") from None
    return [device.name for device in tf.config.list_logical_devices("CPU")]


def make_strategy(name: str, cpu_replicas: "int | None" = None):
    """The strategy called ``name`` (one of :data:`STRATEGIES`; ``"none"``: None, TensorFlow's
    default). ``cpu_replicas`` (``"mirrored"`` only) mirrors over that many logical CPU devices.

    Example:
        >>> make_strategy("none") is None
        True
        >>> make_strategy("ring")
        Traceback (most recent call last):
        ...
        ValueError: strategy: got 'ring'; allowed: 'none', 'mirrored', 'multi_worker'.
    """
    checks.choice(name, "strategy", STRATEGIES)
    if cpu_replicas is not None and name != "mirrored":
        raise ValueError(f"cpu_replicas: got {cpu_replicas!r} with strategy {name!r}; allowed: only with "
                         "strategy 'mirrored'.")
    if name == "none":
        return None
    if name == "mirrored":
        devices = split_cpu(cpu_replicas) if cpu_replicas is not None else None
        return tf.distribute.MirroredStrategy(devices)
    if not os.environ.get("TF_CONFIG"):
        raise ValueError("strategy: got 'multi_worker' but the TF_CONFIG environment variable is not set; allowed: "
                         "'multi_worker' with TF_CONFIG naming the cluster and this task (docs/distributed_training.md).")
    return tf.distribute.MultiWorkerMirroredStrategy()


def scope(strategy):
    """``strategy``'s scope, or a no-op without one (None): models and optimizers are made in it."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def _task(strategy) -> "tuple[str | None, int | None]":
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return None, None
    return resolver.task_type, int(resolver.task_id or 0)


def num_workers(strategy) -> int:
    """The processes that train together (1 for no strategy and for ``MirroredStrategy``)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return 1
    spec = resolver.cluster_spec().as_dict()
    return sum(len(spec.get(job, ())) for job in ("chief", "worker"))


def is_chief(strategy) -> bool:
    """Whether this process writes the run directory: no strategy, a one-process strategy, the
    ``chief`` task, or ``worker`` 0 of a cluster without a ``chief`` task."""
    return strategy is None or bool(strategy.extended.should_checkpoint)


def task_name(strategy) -> str:
    """``"<task type><task id>"`` (``"worker1"``), or ``"local"`` without a cluster."""
    task_type, task_id = _task(strategy)
    return "local" if task_type is None else f"{task_type}{task_id}"


def mirror_dir(run_dir: str, strategy) -> str:
    """Where a non-chief worker works: ``.<run_dir name>.<task>`` beside ``run_dir``."""
    parent, name = os.path.split(os.path.abspath(run_dir))
    return os.path.join(parent, f".{name}.{task_name(strategy)}")


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def make_mirror(run_dir: str, mirror: str) -> None:
    """``mirror``: a fresh private copy of ``run_dir`` as it is now (empty if there is none)."""
    shutil.rmtree(mirror, ignore_errors=True)
    if os.path.isdir(run_dir):
        shutil.copytree(run_dir, mirror, copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".lock"))
    else:
        os.makedirs(mirror)


def _file_digest(path: str) -> str:
    if path.endswith(".npz"):
        with np.load(path) as arrays:
            return str(arrays[DIGEST_KEY]) if DIGEST_KEY in arrays.files else str(os.path.getsize(path))
    with open(path) as handle:
        return str(json.load(handle).get(DIGEST_KEY))


def state_digest(run_dir: str) -> int:
    """What decides where a run resumes: its seed, its finished phases and its checkpoints (a
    31-bit digest; files every worker writes alike, masks and rewind weights, are left out)."""
    parts = []
    if os.path.isfile(os.path.join(run_dir, "config.json")):
        with open(os.path.join(run_dir, "config.json")) as handle:
            parts.append(("seed", json.load(handle).get("seed_used")))
    for phase in sorted(os.listdir(run_dir)) if os.path.isdir(run_dir) else ():
        for name in ("metrics.json", "checkpoint.npz"):
            path = os.path.join(run_dir, phase, name)
            if os.path.isfile(path):
                parts.append((phase, name, _file_digest(path)))
    return int.from_bytes(hashlib.sha256(repr(parts).encode()).digest()[:4], "big") >> 1


def _gathered(strategy, value: int) -> "list[int]":
    per_replica = strategy.run(lambda: tf.constant([value], tf.int64))
    return [int(v) for v in strategy.gather(per_replica, axis=0).numpy()]


def check_same_state(strategy, run_dir: str, seen: str) -> None:
    """Stops (``RuntimeError``) unless every worker found the run in the same state."""
    values = _gathered(strategy, state_digest(seen))
    if len(set(values)) > 1:
        raise RuntimeError(f"run_dir: the workers found {run_dir!r} in different states (this worker, "
                           f"{task_name(strategy)}, read {seen!r}); the run directory must be one directory every "
                           "worker sees (a shared mount), written by the chief only.")


def barrier(strategy) -> None:
    """Returns on every worker once all have reached it (a collective all-gather)."""
    _gathered(strategy, 0)
