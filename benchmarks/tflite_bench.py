r"""Sparse TFLite benchmark: size and LiteRT latency of dense vs element-sparse vs block-sparse.

Models (random Glorot weights, no training; masks made with numpy from the weights' random
magnitudes, the same sparsity in every Dense / Conv2D kernel, first and last layers included):

* ``lenet``: LeNet-300-100, Dense 784-300-100-10.
* ``cnn``: Conv2D(32, 3x3) - MaxPool - Conv2D(64, 3x3) - MaxPool - Dense(128) - Dense(10) on 28x28x1.

Mask kinds: ``element`` (top-|w| per layer), ``block4`` ((4, 1) blocks along the Dense input axis,
ranked by block L1 norm; conv kernels get (4, 1) blocks along their input channels) and
``block16`` ((16, 1) blocks, the int8 fast path; only run with int8 / dynamic quantization).
Every file is written by ``tflite_export.export`` (verified against Keras under both resolvers),
dense baselines with ``sparse=False``; what was actually written (fallbacks included) is in the
table.  Latency: median of ``--runs`` single invokes (batch 1, ``--threads`` threads), each model
and resolver in a fresh subprocess (``tflite_export.benchmark``), all files of one (model,
quantization) group interleaved over ``--rounds`` rounds and the best median kept.

    python benchmarks/tflite_bench.py --out=benchmarks/results/tflite.md
"""

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("models", ["lenet", "cnn"], "Models to run: lenet, cnn.")
flags.DEFINE_list("sparsities", ["0.9", "0.98"], "Sparsities (fraction of zero weights).")
flags.DEFINE_list("quantizations", ["none", "dynamic", "int8"], "none, float16, dynamic, int8.")
flags.DEFINE_integer("runs", 300, "Timed invokes per benchmark.", lower_bound=1)
flags.DEFINE_integer("rounds", 3, "Interleaved rounds (best median kept).", lower_bound=1)
flags.DEFINE_integer("threads", 1, "Interpreter threads.", lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed for weights, masks and inputs.")
flags.DEFINE_string("out", "benchmarks/results/tflite.md", "Markdown results file.")
flags.DEFINE_string("workdir", None, "Where to keep the .tflite files (default: a temp dir).")


def build(name, seed):
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    if name == "lenet":
        inp = keras.Input((784,), name="x")
        x = keras.layers.Dense(300, activation="relu", name="fc1")(inp)
        x = keras.layers.Dense(100, activation="relu", name="fc2")(x)
        return keras.Model(inp, keras.layers.Dense(10, name="fc3")(x), name="lenet_300_100")
    if name == "cnn":
        inp = keras.Input((28, 28, 1), name="x")
        x = keras.layers.Conv2D(32, 3, activation="relu", name="conv1")(inp)
        x = keras.layers.MaxPool2D()(x)
        x = keras.layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
        x = keras.layers.MaxPool2D()(x)
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(128, activation="relu", name="fc1")(x)
        return keras.Model(inp, keras.layers.Dense(10, name="fc2")(x), name="small_cnn")
    raise ValueError(f"--models: unknown model {name!r}; allowed: lenet, cnn")


def magnitude_mask(kernel, sparsity, block):
    """Keeps the largest |w| (element) or the (b, 1) blocks with the largest L1 norm."""
    import numpy as np

    k = np.abs(kernel).reshape(-1, kernel.shape[-2], kernel.shape[-1])  # [..., in, out]
    if block is None:
        scores = k
    else:
        b = block
        pad = (-k.shape[1]) % b
        padded = np.concatenate([k, np.zeros((k.shape[0], pad, k.shape[2]), k.dtype)], axis=1)
        scores = padded.reshape(k.shape[0], -1, b, k.shape[2]).sum(axis=2)
    n_keep = max(1, int(round(scores.size * (1.0 - sparsity))))
    threshold = np.sort(scores, axis=None)[-n_keep]
    keep = scores >= threshold
    if block is not None:
        keep = np.repeat(keep, block, axis=1)[:, :k.shape[1], :]
    return keep.reshape(kernel.shape)


def prune(model, sparsity, kind):
    import numpy as np

    block = {"element": None, "block4": 4, "block16": 16}[kind]
    for layer in model.layers:
        if hasattr(layer, "kernel"):
            w = layer.get_weights()
            w[0] = np.where(magnitude_mask(w[0], sparsity, block), w[0], 0.0).astype(w[0].dtype)
            layer.set_weights(w)
    return model


def encoding_summary(path):
    import collections

    import tflite_export

    counts = collections.Counter(t.encoding for t in tflite_export.inspect(path).tensors
                                 if len(t.shape) >= 2 and t.dtype != "int32")
    return ", ".join(f"{k} x{v}" for k, v in sorted(counts.items()))


def main(argv):
    del argv
    import numpy as np

    import tflite_export

    workdir = FLAGS.workdir or tempfile.mkdtemp(prefix="tflite_bench_")
    os.makedirs(workdir, exist_ok=True)
    sparsities = [float(s) for s in FLAGS.sparsities]
    for q in FLAGS.quantizations:
        if q not in tflite_export.QUANTIZATIONS:
            raise app.UsageError(f"--quantizations: {q!r} not in {tflite_export.QUANTIZATIONS}")
    rows = []
    started = time.time()
    for model_name in FLAGS.models:
        base = build(model_name, FLAGS.seed)
        rng = np.random.default_rng(FLAGS.seed)
        data = rng.standard_normal((200,) + tuple(base.inputs[0].shape[1:])).astype(np.float32)
        for q in FLAGS.quantizations:
            kinds = ["element", "block4"] + (["block16"] if q in ("dynamic", "int8") else [])
            files = []  # (label dict, path, export report)
            path = os.path.join(workdir, f"{model_name}_{q}_dense.tflite")
            rep = tflite_export.export(base, path, quantization=q, representative_data=data,
                                       sparse=False)
            files.append(({"sparsity": 0.0, "masks": "dense"}, path, rep))
            for s in sparsities:
                for kind in kinds:
                    model = prune(build(model_name, FLAGS.seed), s, kind)
                    path = os.path.join(workdir, f"{model_name}_{q}_{kind}_{s}.tflite")
                    rep = tflite_export.export(model, path, quantization=q,
                                               representative_data=data, block="auto")
                    files.append(({"sparsity": s, "masks": kind}, path, rep))
            best = {}
            for _ in range(FLAGS.rounds):
                for i, (_, path, _) in enumerate(files):
                    b = tflite_export.benchmark(path, threads=FLAGS.threads, runs=FLAGS.runs)
                    for r in b.rows:
                        key = (i, r.resolver)
                        if r.median_ms is not None and (key not in best or r.median_ms < best[key].median_ms):
                            best[key] = r
                        best.setdefault(key, r)
            dense = {res: best[(0, res)] for res in ("default", "builtin")}
            dense_size = files[0][2].size_bytes
            dense_gzip = files[0][2].gzip_bytes
            for i, (label, path, rep) in enumerate(files):
                row = {"model": model_name, "quantization": q, **label,
                       "written": rep.encoding, "encodings": encoding_summary(path),
                       "rules": ", ".join(sorted(rep.fired_rules())) or "-",
                       "size": rep.size_bytes, "size_x": rep.size_bytes / dense_size,
                       "gzip": rep.gzip_bytes, "gzip_x": rep.gzip_bytes / dense_gzip,
                       "max_rel_err": max(v.rel_err_keras for v in rep.verification
                                          if v.rel_err_keras is not None)}
                for res in ("default", "builtin"):
                    r = best[(i, res)]
                    row[f"{res}_ms"] = r.median_ms
                    row[f"{res}_x"] = (r.median_ms / dense[res].median_ms
                                       if r.median_ms and dense[res].median_ms else None)
                    row[f"{res}_rss"] = r.model_rss_mib
                rows.append(row)
                print(f"{model_name:6s} {q:8s} {label['masks']:8s} {label['sparsity']:.2f} "
                      f"size x{row['size_x']:.3f} default x{row['default_x'] or 0:.3f} "
                      f"builtin x{row['builtin_x'] or 0:.3f}  [{row['encodings']}] {row['rules']}",
                      flush=True)
    floor = invoke_floor(workdir)
    write_markdown(rows, floor, time.time() - started)


def invoke_floor(workdir):
    """Median latency of a trivial model (Dense 1->1): the per-invoke cost of the Python API."""
    import tf_keras as keras

    import tflite_export

    keras.utils.set_random_seed(0)
    inp = keras.Input((1,))
    model = keras.Model(inp, keras.layers.Dense(1)(inp))
    path = os.path.join(workdir, "floor.tflite")
    tflite_export.export(model, path, sparse=False)
    b = tflite_export.benchmark(path, threads=FLAGS.threads, runs=FLAGS.runs)
    return {r.resolver: r.median_ms for r in b.rows}


def fmt(v, digits=3):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def write_markdown(rows, floor, seconds):
    import platform

    cmd = "python benchmarks/tflite_bench.py " + " ".join(
        f"--{name}={','.join(v) if isinstance(v, list) else v}"
        for name, v in (("models", FLAGS.models), ("sparsities", FLAGS.sparsities),
                        ("quantizations", FLAGS.quantizations), ("runs", FLAGS.runs),
                        ("rounds", FLAGS.rounds), ("threads", FLAGS.threads), ("seed", FLAGS.seed),
                        ("out", FLAGS.out)))
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown CPU"
    lines = [
        "# Sparse TFLite benchmark",
        "",
        "```",
        cmd,
        "```",
        "",
        f"Machine: {cpu}, {os.cpu_count()} cores (shared); Python {platform.python_version()}; "
        f"runtime ai-edge-litert (LiteRT) via `tflite_export.benchmark`; {FLAGS.threads} thread(s), "
        f"batch 1, median of {FLAGS.runs} invokes, best of {FLAGS.rounds} interleaved rounds; "
        f"total {seconds / 60:.1f} min.",
        "",
        "Ratios (`x`) are to the dense model of the same architecture and quantization, measured "
        "in the same run. `default` = stock resolver with the XNNPACK delegate (what Android does); "
        "`builtin` = `BUILTIN_WITHOUT_DEFAULT_DELEGATES`. `written` is what `tflite_export.export` "
        "wrote after its checks (`rules` = known-wrong combinations it avoided, see "
        "`tflite_export.KNOWN_ISSUES`); `encodings` counts the weight tensors per encoding. "
        "`RSS` = peak resident memory of the benchmark process minus its resident memory before "
        "loading the model (MiB). `err` = worst verification error vs Keras, relative to max|output|.",
        "",
        f"Per-invoke floor of the Python API (trivial Dense 1->1 model): default "
        f"{fmt(floor.get('default'), 4)} ms, builtin {fmt(floor.get('builtin'), 4)} ms; it is "
        "included in every latency below.",
        "",
        "| model | quant | masks | sparsity | written | encodings | rules | size B | size x | gzip x "
        "| default ms | default x | builtin ms | builtin x | RSS default | RSS builtin | err |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['quantization']} | {r['masks']} | {r['sparsity']:.2f} | "
            f"{r['written']} | {r['encodings']} | {r['rules']} | {r['size']} | {fmt(r['size_x'])} | "
            f"{fmt(r['gzip_x'])} | {fmt(r['default_ms'], 4)} | {fmt(r['default_x'])} | "
            f"{fmt(r['builtin_ms'], 4)} | {fmt(r['builtin_x'])} | {fmt(r['default_rss'], 1)} | "
            f"{fmt(r['builtin_rss'], 1)} | {r['max_rel_err']:.1e} |")
    target = [r for r in rows if r["model"] == "lenet" and r["quantization"] == "none"
              and r["masks"] == "block4" and r["sparsity"] == 0.9]
    if target:
        t = target[0]
        ok = lambda v, limit: "met" if v is not None and v <= limit else "NOT met"  # noqa: E731
        lines += [
            "",
            "Target (90% block-sparse float32 FC model, LeNet-300-100 block4 0.90): size "
            f"{fmt(t['size_x'])}x dense (<= 0.11x: {ok(t['size_x'], 0.11)}); latency "
            f"{fmt(t['default_x'])}x default / {fmt(t['builtin_x'])}x builtin (<= 0.3x: "
            f"{ok(t['default_x'], 0.3)} / {ok(t['builtin_x'], 0.3)}).",
        ]
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    with open(FLAGS.out, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"wrote {FLAGS.out}")


if __name__ == "__main__":
    app.run(main)
