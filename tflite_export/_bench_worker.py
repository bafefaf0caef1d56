"""Benchmark worker, run as a script in a fresh Python process by ``tflite_export.benchmark``.

It imports only numpy and the LiteRT runtime (not TensorFlow, not the tflite_export package), so
the resident-set numbers describe the runtime plus this one model.  Usage (internal)::

    python _bench_worker.py '{"path": "m.tflite", "resolver": "default", "threads": 1,
                              "runs": 50, "warmup": 5, "seed": 0}'

Prints one JSON object on the last line of stdout.  Memory comes from /proc/self/status: VmRSS
(resident now) and VmHWM (peak resident since the process started).
"""

import importlib.util
import json
import os
import sys
import time


def _status_kib(field):
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    if field == "VmHWM":  # no /proc: fall back to getrusage (KiB on Linux, bytes on macOS)
        import resource  # pylint: disable=import-outside-toplevel

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak // 1024 if sys.platform == "darwin" else peak
    return None


def _mib(kib):
    return None if kib is None else kib / 1024.0


def _load_runtime_module():
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_runtime.py")
    spec = importlib.util.spec_from_file_location("_tflite_export_runtime", here)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv):
    args = json.loads(argv[1])
    import numpy as np  # pylint: disable=import-outside-toplevel

    runtime = _load_runtime_module()
    _, _, backend = runtime.runtime()
    result = {"path": args["path"], "resolver": args["resolver"], "threads": args["threads"],
              "runtime": backend}
    rss_base = _status_kib("VmRSS")
    t0 = time.perf_counter()
    interpreter = runtime.make_interpreter(model_path=args["path"], resolver=args["resolver"],
                                           num_threads=args["threads"])
    result["load_ms"] = (time.perf_counter() - t0) * 1e3
    rss_load = _status_kib("VmRSS")
    rng = np.random.default_rng(args.get("seed", 0))
    for det in interpreter.get_input_details():
        dtype = np.dtype(det["dtype"])
        shape = [int(s) for s in det["shape"]]
        if np.issubdtype(dtype, np.floating):
            value = rng.standard_normal(shape).astype(dtype)
        else:
            info = np.iinfo(dtype)
            value = rng.integers(max(info.min, -8), min(info.max, 8), size=shape, dtype=dtype)
        interpreter.set_tensor(det["index"], value)
    for _ in range(max(1, args["warmup"])):  # the first invoke also runs DENSIFY once
        interpreter.invoke()
    times = []
    for _ in range(args["runs"]):
        t = time.perf_counter()
        interpreter.invoke()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    n = len(times)
    result.update({
        "runs": n,
        "median_ms": times[n // 2] if n % 2 else 0.5 * (times[n // 2 - 1] + times[n // 2]),
        "p10_ms": times[int(0.1 * (n - 1))],
        "p90_ms": times[int(0.9 * (n - 1))],
        "mean_ms": sum(times) / n,
        "rss_baseline_mib": _mib(rss_base),
        "rss_after_load_mib": _mib(rss_load),
        "rss_after_run_mib": _mib(_status_kib("VmRSS")),
        "peak_rss_mib": _mib(_status_kib("VmHWM")),
    })
    if rss_base is not None and result["peak_rss_mib"] is not None:
        result["model_rss_mib"] = result["peak_rss_mib"] - result["rss_baseline_mib"]
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
