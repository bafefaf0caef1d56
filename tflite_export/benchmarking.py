"""``benchmark`` / ``compare``: latency per op resolver and resident memory of a .tflite model.

How it is measured: every (model, resolver) pair runs in a **fresh Python subprocess** that
imports only numpy and the LiteRT runtime (``_bench_worker.py``; TensorFlow is not imported there,
so the parent's TensorFlow heap never pollutes the numbers).  The worker

1. records VmRSS after importing the runtime (``rss_baseline_mib``),
2. builds the interpreter for the resolver and allocates tensors (``load_ms``,
   ``rss_after_load_mib``: XNNPACK packs its weights here),
3. fills the inputs with seeded random values, runs ``warmup`` invokes (the first one also runs
   DENSIFY ops, which expand sparse weights into dense buffers once), then times ``runs`` single
   ``invoke()`` calls with ``time.perf_counter`` (batch 1, ``threads`` threads),
4. reads VmHWM, the process's peak resident set (``peak_rss_mib``);
   ``model_rss_mib = peak_rss_mib - rss_baseline_mib`` is the memory the model itself cost.

Resolvers: ``"default"`` (XNNPACK delegate applied, as on Android by default) and ``"builtin"``
(``BUILTIN_WITHOUT_DEFAULT_DELEGATES``: TFLite kernels only, where block-sparse FULLY_CONNECTED
weights run natively).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

from tfprune import checks
from tfprune.table import table

from . import _runtime
from .inspection import gzip_size

_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_bench_worker.py")


@dataclasses.dataclass
class BenchmarkRow:
    resolver: str
    median_ms: float | None = None
    p10_ms: float | None = None
    p90_ms: float | None = None
    load_ms: float | None = None
    rss_baseline_mib: float | None = None
    rss_after_load_mib: float | None = None
    peak_rss_mib: float | None = None
    model_rss_mib: float | None = None
    runtime: str | None = None
    error: str | None = None


@dataclasses.dataclass
class BenchmarkReport:
    """Result of :func:`benchmark`.  ``print(report)`` or ``report.to_dict()``."""

    path: str
    threads: int
    runs: int
    rows: list

    def row(self, resolver: str) -> BenchmarkRow:
        return next(r for r in self.rows if r.resolver == resolver)

    def to_dict(self) -> dict:
        return {"path": self.path, "threads": self.threads, "runs": self.runs,
                "rows": [dataclasses.asdict(r) for r in self.rows]}

    def __str__(self) -> str:
        head = (f"benchmark {self.path}: {self.runs} runs, {self.threads} thread(s), batch 1, "
                "fresh subprocess per resolver")
        return head + "\n" + table(
            ["resolver", "median ms", "p10 ms", "p90 ms", "load ms", "peak RSS MiB",
             "model RSS MiB", "error"],
            [(r.resolver, r.median_ms, r.p10_ms, r.p90_ms, r.load_ms, r.peak_rss_mib,
              r.model_rss_mib, (r.error or "")[:70]) for r in self.rows])


def _check_args(path, threads, runs, warmup, resolvers):
    """Returns ``(path, threads, runs, warmup)``, checked, as ``str`` and ``int``s."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model path {path!r} is not a file")
    threads = checks.integer(threads, "threads", 1)
    runs = checks.integer(runs, "runs", 1)
    warmup = checks.integer(warmup, "warmup", 0)
    if isinstance(resolvers, str) or not resolvers:
        raise ValueError(f"resolvers: got {resolvers!r}; allowed: a non-empty sequence drawn from "
                         f"{_runtime.RESOLVERS}.")
    for r in resolvers:
        _runtime.check_resolver(r)
    return path, threads, runs, warmup


def _run_worker(path, resolver, threads, runs, warmup, timeout) -> BenchmarkRow:
    args = {"path": os.path.abspath(path), "resolver": resolver, "threads": threads, "runs": runs,
            "warmup": warmup, "seed": 0}
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        proc = subprocess.run([sys.executable, _WORKER, json.dumps(args)], capture_output=True,
                              text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return BenchmarkRow(resolver, error=f"timed out after {timeout} s")
    lines = [l for l in proc.stdout.strip().splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr.strip().splitlines() or ["worker failed"])[-1]
        return BenchmarkRow(resolver, error=err)
    data = json.loads(lines[-1])
    fields = {f.name for f in dataclasses.fields(BenchmarkRow)}
    return BenchmarkRow(**{k: v for k, v in data.items() if k in fields})


def benchmark(path, threads=1, runs=50, warmup=5, resolvers=_runtime.RESOLVERS, timeout=600):
    """Median latency per resolver and peak resident memory after load, each in a fresh process.

    Args:
      path: .tflite file.
      threads: interpreter threads (XNNPACK and builtin kernels).
      runs: timed ``invoke()`` calls (batch 1); the median is reported, with p10 / p90.
      warmup: untimed invokes first (the first one runs DENSIFY ops).
      resolvers: any of ``("default", "builtin")`` (see module docstring).
      timeout: seconds per subprocess.

    Returns:
      :class:`BenchmarkReport`.  A resolver under which the model cannot be prepared gets a row
      with ``error`` set instead of numbers.

    Example::

        rep = tflite_export.benchmark("m.tflite", threads=1, runs=100)
        rep.row("default").median_ms, rep.row("builtin").peak_rss_mib
    """
    path, threads, runs, warmup = _check_args(path, threads, runs, warmup, resolvers)
    rows = [_run_worker(path, r, threads, runs, warmup, timeout) for r in resolvers]
    return BenchmarkReport(path=path, threads=threads, runs=runs, rows=rows)


@dataclasses.dataclass
class CompareReport:
    """Result of :func:`compare`: dense vs sparse, measured in one run, with sparse/dense ratios."""

    dense_path: str
    sparse_path: str
    threads: int
    runs: int
    rounds: int
    sizes: dict  # {"raw": (dense, sparse), "gzip": (dense, sparse)}
    dense: list  # BenchmarkRow per resolver (best median over rounds)
    sparse: list

    def ratios(self) -> dict:
        """{metric: sparse / dense} for size, gzip size, and latency / memory per resolver."""
        out = {f"size_{k}": s / d for k, (d, s) in self.sizes.items() if d}
        for d, s in zip(self.dense, self.sparse):
            for key in ("median_ms", "peak_rss_mib", "model_rss_mib"):
                a, b = getattr(d, key), getattr(s, key)
                out[f"{key}_{d.resolver}"] = (b / a) if a and b is not None else None
        return out

    def to_dict(self) -> dict:
        return {"dense_path": self.dense_path, "sparse_path": self.sparse_path,
                "threads": self.threads, "runs": self.runs, "rounds": self.rounds,
                "sizes": {k: list(v) for k, v in self.sizes.items()},
                "dense": [dataclasses.asdict(r) for r in self.dense],
                "sparse": [dataclasses.asdict(r) for r in self.sparse],
                "ratios": self.ratios()}

    def __str__(self) -> str:
        rows = [(f"size ({k}) B", d, s, s / d if d else None) for k, (d, s) in self.sizes.items()]
        for d, s in zip(self.dense, self.sparse):
            for key, label in (("median_ms", "latency ms"), ("peak_rss_mib", "peak RSS MiB"),
                               ("model_rss_mib", "model RSS MiB")):
                a, b = getattr(d, key), getattr(s, key)
                rows.append((f"{label} [{d.resolver}]", a if a is not None else d.error,
                             b if b is not None else s.error,
                             (b / a) if a and b is not None else None))
        head = (f"compare dense={self.dense_path} sparse={self.sparse_path}: {self.threads} "
                f"thread(s), {self.runs} runs x {self.rounds} interleaved rounds (best median)")
        return head + "\n" + table(["metric", "dense", "sparse", "sparse/dense"], rows)


def _best(rows):
    ok = [r for r in rows if r.median_ms is not None]
    if not ok:
        return rows[0]
    best = min(ok, key=lambda r: r.median_ms)
    first = ok[0]  # memory numbers are deterministic; keep the first round's
    return dataclasses.replace(best, peak_rss_mib=first.peak_rss_mib,
                               model_rss_mib=first.model_rss_mib,
                               rss_after_load_mib=first.rss_after_load_mib)


def compare(dense_path, sparse_path, threads=1, runs=50, warmup=5, rounds=3,
            resolvers=_runtime.RESOLVERS, timeout=600) -> CompareReport:
    """Benchmarks a dense and a sparse .tflite side by side and reports sparse/dense ratios.

    The two models are run alternately (dense, sparse, dense, sparse, ... ``rounds`` times per
    resolver, each in a fresh subprocess) and the best median of each is kept, so load from other
    processes on the machine hits both alike.

    Example::

        rep = tflite_export.compare("dense.tflite", "sparse.tflite")
        print(rep)
        rep.ratios()["median_ms_builtin"]
    """
    dense_path, threads, runs, warmup = _check_args(dense_path, threads, runs, warmup, resolvers)
    sparse_path = _check_args(sparse_path, threads, runs, warmup, resolvers)[0]
    rounds = checks.integer(rounds, "rounds", 1)
    sizes = {}
    with open(dense_path, "rb") as f:
        d = f.read()
    with open(sparse_path, "rb") as f:
        s = f.read()
    sizes["raw"] = (len(d), len(s))
    sizes["gzip"] = (gzip_size(d), gzip_size(s))
    dense_rows, sparse_rows = [], []
    for resolver in resolvers:
        per_d, per_s = [], []
        for _ in range(rounds):
            per_d.append(_run_worker(dense_path, resolver, threads, runs, warmup, timeout))
            per_s.append(_run_worker(sparse_path, resolver, threads, runs, warmup, timeout))
        dense_rows.append(_best(per_d))
        sparse_rows.append(_best(per_s))
    return CompareReport(dense_path=dense_path, sparse_path=sparse_path, threads=threads, runs=runs,
                         rounds=rounds, sizes=sizes, dense=dense_rows, sparse=sparse_rows)
