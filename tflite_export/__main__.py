r"""Export a pruned Keras model to a verified sparse .tflite and print inspect / verify / benchmark.

Usage::

    python -m tflite_export --model=pruned.h5 --out=m.tflite \
        [--quantization=none|float16|dynamic|int8|smallest] [--representative_data=calib.npz] \
        [--block=auto|none|4x1|16x1] [--verify_data=verify.npz] [--nosparse] [--overwrite] \
        [--nobenchmark] [--nocompare_dense] [--runs=50] [--threads=1] [--json=report.json]

``--model`` is a SavedModel directory or an .h5 / .keras file saved from a Keras 2 (tf_keras)
model, loaded with ``tfprune.load_model``, which knows tfprune's and TF-MOT's pruning wrappers;
or a ``.keras`` file saved from a Keras 3 model (masked by tfprune or plain), loaded with
``keras.saving.load_model`` on this process's Keras backend (``KERAS_BACKEND``; on JAX or PyTorch
the export rebuilds it under TensorFlow in a subprocess, see :mod:`tflite_export.rebuild`).
Wrappers are stripped before export.
``.npz`` files: the array named by ``--data_key`` (default: the only array in the file, or ``x``),
samples on axis 0.  Exit status: 0 written, 1 export refused (nothing written), 2 bad flags.
"""

import json
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "SavedModel directory or .h5 / .keras file (Keras 2), or a "
                    ".keras file saved from a Keras 3 model.")
flags.DEFINE_string("out", None, "Output .tflite path (written only if verification passes).")
flags.DEFINE_enum("quantization", "none", ["none", "float16", "dynamic", "int8", "smallest"],
                  "Weight / activation quantization; smallest: try the others (int8 only with "
                  "--representative_data) and keep the smallest file that passes verification.")
flags.DEFINE_string("representative_data", None,
                    ".npz with calibration samples (required for --quantization=int8).")
flags.DEFINE_string("verify_data", None,
                    ".npz with verification inputs (default: first 16 calibration samples, "
                    "else seeded random inputs).")
flags.DEFINE_string("data_key", None, "Array name inside the .npz files (default: the only "
                    "array, or 'x').")
flags.DEFINE_string("block", "auto", "none (converter decides), auto (detect and report), 4x1 or "
                    "16x1 (require that block structure in every Dense kernel with >= 30% zeros).")
flags.DEFINE_bool("sparse", True, "Sparse-encode weights (EXPERIMENTAL_SPARSITY).")
flags.DEFINE_bool("overwrite", False, "Replace --out even if it is a read-only file.")
flags.DEFINE_bool("benchmark", True, "Benchmark the written model (fresh subprocess per resolver).")
flags.DEFINE_bool("compare_dense", True, "Also export the dense twin to a temporary file and "
                  "report sparse/dense ratios (needs --benchmark).")
flags.DEFINE_integer("runs", 50, "Timed runs per benchmark.", lower_bound=1)
flags.DEFINE_integer("threads", 1, "Interpreter threads for the benchmark.", lower_bound=1)
flags.DEFINE_string("json", None, "Also write the reports as JSON to this path.")

_BLOCKS = {"none": None, "auto": "auto", "4x1": (4, 1), "16x1": (16, 1)}

flags.register_validator("model", lambda p: p is not None and os.path.exists(p),
                         message="--model must name an existing SavedModel directory or .h5/.keras file")
flags.register_validator("out", lambda p: p is not None and not os.path.isdir(p)
                         and os.path.isdir(os.path.dirname(os.path.abspath(p))),
                         message="--out must be a file path in an existing directory")
flags.register_validator("block", lambda b: b in _BLOCKS,
                         message=f"--block must be one of {sorted(_BLOCKS)}")
for _name in ("representative_data", "verify_data"):
    flags.register_validator(_name, lambda p: p is None or os.path.isfile(p),
                             message=f"--{_name} must name an existing .npz file")
flags.register_multi_flags_validator(
    ["quantization", "representative_data"],
    lambda f: f["quantization"] != "int8" or f["representative_data"] is not None,
    message="--quantization=int8 needs --representative_data=<calibration .npz>")


def load_npz(path, key=None):
    """Returns the array ``key`` of an .npz (or its only array, or the one named 'x')."""
    import numpy as np  # pylint: disable=import-outside-toplevel

    with np.load(path) as data:
        names = list(data.keys())
        if key is None:
            if len(names) == 1:
                key = names[0]
            elif "x" in names:
                key = "x"
            else:
                raise ValueError(f"{path}: several arrays {names}; choose one with --data_key")
        if key not in names:
            raise ValueError(f"{path}: no array {key!r}; arrays in the file: {names}")
        return data[key]


def load_model(path):
    """Loads a saved Keras model, knowing tfprune's and TF-MOT's pruning wrappers (tf_keras) and
    tfprune's Keras 3 masks (a ``.keras`` file written by Keras 3)."""
    import tfprune  # pylint: disable=import-outside-toplevel  (registers its Keras 3 classes)

    if is_keras3_file(path):
        import keras  # pylint: disable=import-outside-toplevel

        return keras.saving.load_model(path, compile=False)
    return tfprune.load_model(path, compile=False)


def is_keras3_file(path) -> bool:
    """Whether ``path`` is a ``.keras`` archive written by Keras 3 (its metadata.json says)."""
    import zipfile  # pylint: disable=import-outside-toplevel

    if not os.path.isfile(path) or not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        if "metadata.json" not in archive.namelist():
            return False
        try:
            meta = json.loads(archive.read("metadata.json"))
        except ValueError:
            return False
    return str(meta.get("keras_version", "")).startswith("3.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    import tflite_export  # pylint: disable=import-outside-toplevel

    rep = load_npz(FLAGS.representative_data, FLAGS.data_key) if FLAGS.representative_data else None
    ver = load_npz(FLAGS.verify_data, FLAGS.data_key) if FLAGS.verify_data else None
    model = load_model(FLAGS.model)
    out = {}
    try:
        report = tflite_export.export(model, FLAGS.out, quantization=FLAGS.quantization,
                                      representative_data=rep, sparse=FLAGS.sparse,
                                      block=_BLOCKS[FLAGS.block], verify_with=ver,
                                      overwrite=FLAGS.overwrite)
    except FileExistsError as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    except tflite_export.ExportError as e:
        if e.report is not None:
            print(e.report)
        print(f"\nERROR: {e}", file=sys.stderr)
        return 1
    print(report)
    out["export"] = report.to_dict()
    inspected = tflite_export.inspect(FLAGS.out, min_elements=2)
    print("\n" + str(inspected))
    out["inspect"] = inspected.to_dict()
    if FLAGS.benchmark:
        if FLAGS.compare_dense and report.encoding == "sparse":
            with tempfile.TemporaryDirectory() as tmp:
                dense_path = os.path.join(tmp, "dense_twin.tflite")
                tflite_export.export(model, dense_path, quantization=report.quantization,
                                     representative_data=rep, sparse=False, verify_with=ver)
                cmp = tflite_export.compare(dense_path, FLAGS.out, threads=FLAGS.threads,
                                            runs=FLAGS.runs)
                print("\n" + str(cmp))
                out["compare"] = cmp.to_dict()
        else:
            bench = tflite_export.benchmark(FLAGS.out, threads=FLAGS.threads, runs=FLAGS.runs)
            print("\n" + str(bench))
            out["benchmark"] = bench.to_dict()
    if FLAGS.json:
        with open(FLAGS.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=1, default=str)
    return 0


def run():
    flags.mark_flags_as_required(["model", "out"])
    app.run(main)


if __name__ == "__main__":
    run()
