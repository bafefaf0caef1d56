"""The TensorFlow-backend half of exporting a Keras 3 JAX / PyTorch model (:mod:`~tflite_export.rebuild`).

``KERAS_BACKEND=tensorflow python -m tflite_export._rebuild_worker <dir>``: ``<dir>`` holds the
plain model (``model.keras``), the verification inputs, the reference outputs (the original
backend's) and the calibration samples (``data.npz``) and the export's settings
(``job.json``).  Loads the model, runs steps 2-8 of the export verifying against the reference,
and writes ``result.pickle``: ``("report", ExportReport)`` or ``("error", exception)``.
"""

from __future__ import annotations

import importlib
import json
import os
import pickle
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(directory: str) -> int:
    try:
        payload = ("report", run(directory))
    except BaseException as e:  # pylint: disable=broad-except  (everything goes back to the caller)
        payload = ("error", e)
    try:
        data = pickle.dumps(payload)
    except Exception:  # pylint: disable=broad-except  (an exception that does not pickle)
        error = payload[1]
        data = pickle.dumps(("error", RuntimeError(f"{type(error).__name__}: {error}")))
    tmp = os.path.join(directory, "result.pickle.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, os.path.join(directory, "result.pickle"))
    return 0


def run(directory: str):
    import numpy as np  # pylint: disable=import-outside-toplevel

    from . import keras_side, pipeline, rebuild, samples  # pylint: disable=import-outside-toplevel
    from .reports import ExportError  # pylint: disable=import-outside-toplevel

    with open(os.path.join(directory, rebuild.JOB_FILE), encoding="utf-8") as f:
        job = json.load(f)
    settings = pipeline.Settings(**job["settings"])
    if isinstance(settings.block, list):
        settings.block = tuple(settings.block)
    if isinstance(settings.tolerance, list):
        settings.tolerance = tuple(settings.tolerance)
    backend = job["backend"]
    head = f"export refused, nothing written to {settings.path!r}: "
    for path in job["sys_path"]:  # the caller's import path, for the modules of its layer classes
        if path not in sys.path:
            sys.path.append(path)

    import keras  # pylint: disable=import-outside-toplevel

    import tfprune  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import  (registers its Keras 3 classes)
    from tfprune import keras_utils  # pylint: disable=import-outside-toplevel

    if keras.backend.backend() != "tensorflow":
        raise ExportError(head + f"the subprocess got Keras backend {keras.backend.backend()!r}, "
                          "not 'tensorflow' (KERAS_BACKEND)")
    not_imported = []
    for module in job["modules"]:
        try:
            importlib.import_module(module)
        except Exception as e:  # pylint: disable=broad-except
            not_imported.append(f"{module} ({type(e).__name__}: {e})")
    try:
        # safe_mode=False: the file was written a moment ago by this export, from the caller's
        # model, in a private directory; Lambda layers need it
        model = keras.saving.load_model(os.path.join(directory, rebuild.MODEL_FILE), compile=False,
                                        safe_mode=False)
    except Exception as e:  # pylint: disable=broad-except
        hints = []
        if job["classes_in_main"]:
            hints.append(f"classes defined in the calling script (__main__: "
                         f"{', '.join(job['classes_in_main'])}) cannot be imported by the "
                         "subprocess: define them in an importable module and register them "
                         "(keras.saving.register_keras_serializable)")
        if job["lambda_layers"]:
            hints.append(f"Lambda layers ({', '.join(job['lambda_layers'])}) rarely survive a "
                         ".keras round trip (a lambda loses the global names it uses, a library "
                         "function is not found by name): use a custom layer, registered with "
                         "keras.saving.register_keras_serializable in an importable module")
        if not_imported:
            hints.append("could not import " + "; ".join(not_imported))
        error = ExportError(head + f"the {backend} model, saved to .keras, could not be loaded "
                            f"under the TensorFlow backend ({_load_reason(e)})"
                            + ("; " + "; ".join(hints) if hints else ""))
    else:
        error = None
    if error is not None:
        raise error

    names = job["input_names"]
    if keras_utils.input_names(model) != names:
        raise ExportError(head + f"the model rebuilt under TensorFlow has inputs "
                          f"{keras_utils.input_names(model)}, the {backend} model {names}")
    with np.load(os.path.join(directory, rebuild.DATA_FILE)) as data:
        inputs = {n: data[f"input_{i}"] for i, n in enumerate(names)}
        reference = {n: data[f"output_{i}"] for i, n in enumerate(job["output_names"])}
        calibration = ({n: data[f"calibration_{i}"] for i, n in enumerate(names)}
                       if job["calibration"] else None)
        calibrated = data["calibrated"]
    vset = samples.VerificationSet(inputs, job["primary"], job["source"],
                                   [tuple(p) for p in job["parts"]], calibrated)
    notes = [_rebuild_note(keras_side.reference_outputs(model, inputs), reference, backend, head)]
    return pipeline.convert_verify_write(model, settings, calibration, vset,
                                         stripped=job["stripped"], keras=rebuild.describe(backend),
                                         reference=reference, notes=notes)


def _load_reason(e: BaseException) -> str:
    """The innermost reason of a ``keras.saving.load_model`` failure, in one line (Keras nests
    one "could not be deserialized ... Exception encountered: ..." per enclosing layer)."""
    from . import rebuild  # pylint: disable=import-outside-toplevel

    text = str(e)
    marker = "Exception encountered:"
    if marker in text:
        inner = " ".join(text.rsplit(marker, 1)[1].split("Full object config")[0].split())
        return f"{type(e).__name__}: {inner[:300]}"
    return rebuild._one_line(e)


def _rebuild_note(rebuilt: dict, reference: dict, backend: str, head: str) -> str:
    """How far the TensorFlow rebuild's Keras outputs are from the original backend's (for
    information: the file is verified against the original's)."""
    import numpy as np  # pylint: disable=import-outside-toplevel

    from .reports import ExportError  # pylint: disable=import-outside-toplevel

    shapes = {k: v.shape for k, v in rebuilt.items()}
    want = {k: v.shape for k, v in reference.items()}
    if list(shapes.values()) != list(want.values()):
        raise ExportError(head + f"the model rebuilt under TensorFlow has outputs {shapes}, the "
                          f"{backend} model {want}")
    scale = max(max(float(np.abs(v).max()) for v in reference.values()), 1e-12)
    diff = max(float(np.abs(np.asarray(a, np.float64) - b).max())
               for a, b in zip(rebuilt.values(), reference.values()))
    return (f"rebuilt under the TensorFlow backend: its Keras outputs differ from the {backend} "
            f"model's by at most {diff / scale:.3g} (relative to max|keras output|); the file is "
            f"verified against the {backend} outputs")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(f"usage: python -m {__spec__.name if __spec__ else 'tflite_export._rebuild_worker'} "
              "<job directory>", file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
