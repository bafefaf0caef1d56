"""Where a sweep's jobs run: in this process, one after another (:class:`LocalExecutor`, the
default), or as one Ray task each on a local or remote Ray cluster (:class:`RayExecutor`;
``pip install tfprune[ray]``).

An executor calls ``fn(*job)`` for every job and yields ``(job, value, error, seconds)`` as each
one finishes (``error`` is the exception a failed job raised, ``value`` then None). The jobs
write their own files (``result.json``, or ``error.json`` on failure) and the sweep tabulates
from those files, so the executor changes where and when cells run, never their numbers.

Ray workers are separate Python processes: :func:`worker_env` gives them this process's
``sys.path`` entries that hold tfprune and the current directory (``--plugin`` modules) as
``PYTHONPATH``, and its ``TF_*``, ``KERAS_*`` and ``TFPRUNE_*`` variables (the Keras backend,
oneDNN, log levels), and the worker imports the ``--plugin`` modules before running a job.
On a multi-node cluster every node needs the same Python packages, this checkout at the same
path (or tfprune installed) and ``out_dir`` on a file system shared at the same path.
"""
from __future__ import annotations

import importlib
import logging
import os
import time

#: prefixes of the environment variables a Ray worker gets from this process.
FORWARDED_ENV = ("TF_", "KERAS_", "TFPRUNE_")
RAY_MISSING = "--executor=ray needs Ray, which is not installed: pip install tfprune[ray]"


class LocalExecutor:
    """Runs every job in this process, in order (a sweep's default)."""

    name = "local"

    def map(self, fn, jobs):
        for job in jobs:
            t0 = time.perf_counter()
            try:
                value = fn(*job)
            except Exception as e:  # noqa: BLE001 - handed to the caller, which reports it
                yield job, None, e, time.perf_counter() - t0
                continue
            yield job, value, None, time.perf_counter() - t0


def import_ray():
    """``ray``, or an ImportError that says how to install it."""
    try:
        import ray
    except ImportError as e:
        raise ImportError(f"{RAY_MISSING} ({e})") from None
    return ray


def worker_env() -> "dict[str, str]":
    """The environment variables a Ray worker needs to run this process's jobs (see the module doc)."""
    import tfprune

    root = os.path.dirname(os.path.dirname(os.path.abspath(tfprune.__file__)))
    paths = [root, os.getcwd()] + os.environ.get("PYTHONPATH", "").split(os.pathsep)
    env = {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(os.path.abspath(p) for p in paths if p))
    return env


def _call(fn, job, imports):
    """A job in a Ray worker: imports the plugin modules, runs ``fn(*job)``; ``(value, seconds)``.
    TensorFlow's Python logger is set to ERROR, as the sweep does (its retracing notices are expected)."""
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    for name in imports:
        importlib.import_module(name)
    t0 = time.perf_counter()
    value = fn(*job)
    return value, time.perf_counter() - t0


def _cancel(ray, refs, seconds: float = 30.0) -> None:
    """Cancels the tasks of ``refs`` (killing the workers that run them) and waits up to ``seconds``
    for them to end; a task whose worker was still starting can miss the first cancel, so the
    ones still alive after a second are cancelled again."""
    deadline = time.monotonic() + seconds
    while refs and time.monotonic() < deadline:
        for ref in refs:
            ray.cancel(ref, force=True)
        _, refs = ray.wait(refs, num_returns=len(refs), timeout=1.0)


class RayExecutor:
    """Runs each job as one Ray task with ``cpus_per_cell`` CPUs and ``gpus_per_cell`` GPUs.

    Args:
        address: the cluster to join (``auto``: the one ``ray start`` runs on this machine;
            ``ray://host:10001``: a remote one); None starts a local one for the sweep (or uses
            the one this process already started with ``ray.init``) and stops it afterwards.
        cpus_per_cell, gpus_per_cell: each task's resources; Ray runs as many tasks at once as
            the cluster's resources allow.
        imports: modules every worker imports first (the ``--plugin`` modules).

    A task that raises is reported and not retried (its ``error.json`` stays, a rerun retries
    it); a task whose worker process dies is retried by Ray. An interrupt (Ctrl-C) cancels
    the running tasks.
    """

    name = "ray"

    def __init__(self, address: "str | None" = None, cpus_per_cell: float = 1.0, gpus_per_cell: float = 0.0,
                 imports=()):
        if not cpus_per_cell > 0:
            raise ValueError(f"cpus_per_cell: {cpus_per_cell!r}; must be > 0.")
        if not gpus_per_cell >= 0:
            raise ValueError(f"gpus_per_cell: {gpus_per_cell!r}; must be >= 0.")
        self.ray = import_ray()
        self.address, self.cpus, self.gpus, self.imports = address, cpus_per_cell, gpus_per_cell, tuple(imports)

    def map(self, fn, jobs):
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            ray.init(address=self.address, include_dashboard=False, logging_level="WARNING")
        remote = ray.remote(_call).options(num_cpus=self.cpus, num_gpus=self.gpus,
                                           runtime_env={"env_vars": worker_env()})
        refs = {remote.remote(fn, job, self.imports): job for job in jobs}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                ref = done[0]
                try:
                    value, seconds = ray.get(ref)
                except ray.exceptions.RayTaskError as e:  # the job raised: its exception, not Ray's wrapper
                    yield refs[ref], None, e.cause if isinstance(e.cause, Exception) else e, float("nan")
                    continue
                except ray.exceptions.RayError as e:  # the worker died, or the task could not run
                    yield refs[ref], None, e, float("nan")
                    continue
                yield refs[ref], value, None, seconds
        except BaseException:  # Ctrl-C, or the caller stopped early: cancel what is still queued or running
            _cancel(ray, pending)
            raise
        finally:
            if started:
                ray.shutdown()


def make(name: str = "local", **options):
    """The executor called ``name`` (``local`` or ``ray``) with ``options`` (:class:`RayExecutor`'s)."""
    if name == "local":
        if options:
            raise ValueError(f"executor=local takes no options ({', '.join(sorted(options))} are for executor=ray).")
        return LocalExecutor()
    if name == "ray":
        return RayExecutor(**options)
    raise ValueError(f"executor: {name!r}; must be local or ray.")


__all__ = ["LocalExecutor", "RayExecutor", "import_ray", "make", "worker_env"]
