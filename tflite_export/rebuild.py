"""Keras 3 models on JAX or PyTorch: rebuilt under the TensorFlow backend in a subprocess.

The TFLite converter takes TensorFlow graphs only, and ``KERAS_BACKEND`` is fixed per process, so
:func:`tflite_export.export` does this for a Keras 3 model whose process runs JAX or PyTorch:

1. here, on the model's own backend: the verification inputs (:mod:`~tflite_export.samples`);
   pruning wrappers stripped (``tfprune.strip``, a new model: the caller's is not changed); the
   stripped model's outputs on the inputs (the **reference**: what the written file must
   reproduce, as in an in-process export); the stripped model saved to a ``.keras`` file, and the
   inputs, reference and calibration samples to an ``.npz``, in a private temporary directory;
2. ``python -m tflite_export._rebuild_worker <dir>`` with ``KERAS_BACKEND=tensorflow`` loads the
   ``.keras`` file (``keras.saving.load_model``, after importing tfprune and the modules of the
   model's own layer classes), checks that its inputs are the same, notes how far its Keras
   outputs are from the reference, and runs the same pipeline as an in-process export (steps 2-8
   of :mod:`~tflite_export.pipeline`) **verifying against the reference**, not against its own
   outputs; it writes the ``.tflite`` atomically only if that passed;
3. here again: the worker's :class:`ExportReport`, or its error, re-raised as it was (an
   ``ExportError`` with its report, a ``ValueError`` for a ``block=`` the masks do not have, an
   ``OSError`` naming the file).  A worker that dies without a result is a one-line
   ``ExportError`` naming its exit status and last error line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile

import numpy as np

from . import keras_side
from .reports import ExportError

WORKER = "tflite_export._rebuild_worker"
MODEL_FILE = "model.keras"
DATA_FILE = "data.npz"
JOB_FILE = "job.json"
RESULT_FILE = "result.pickle"


def describe(backend: str) -> str:
    """``ExportReport.keras`` of a Keras 3 model rebuilt from ``backend``."""
    return (f"Keras 3, {backend} backend: saved to .keras and rebuilt under the TensorFlow backend "
            f"in a subprocess; verified against the {backend} model's own outputs")


def export(model, settings, calibration, vset, backend: str):
    """Exports a Keras 3 model of a JAX / PyTorch process (see the module docstring); returns the
    :class:`~tflite_export.ExportReport` or raises what the export raised."""
    head = f"export refused, nothing written to {settings.path!r}: "
    plain = keras_side.strip(model)
    reference = keras_side.reference_outputs(plain, vset.inputs)  # what an in-process export checks
    with tempfile.TemporaryDirectory(prefix="tflite_export_") as tmp:
        try:
            plain.save(os.path.join(tmp, MODEL_FILE))
        except Exception as e:  # pylint: disable=broad-except
            error = ExportError(
                head + f"the {backend} model could not be saved to a .keras file to rebuild it "
                f"under the TensorFlow backend ({_one_line(e)}); allowed: a model that "
                "keras.saving can save and load (built-in or registered serializable layers)")
        else:
            error = None
        if error is not None:
            raise error  # outside the except block: no chained traceback
        _write_inputs(tmp, plain, settings, calibration, vset, reference, backend,
                      stripped=plain is not model)
        kind, value = _run_worker(tmp, backend, head)
    if kind == "error":
        raise value
    return value


def _write_inputs(directory, model, settings, calibration, vset, reference, backend, stripped):
    names = list(vset.inputs)
    arrays = {f"input_{i}": vset.inputs[n] for i, n in enumerate(names)}
    arrays.update({f"output_{i}": v for i, v in enumerate(reference.values())})
    if calibration is not None:
        arrays.update({f"calibration_{i}": calibration[n] for i, n in enumerate(names)})
    arrays["calibrated"] = vset.calibration
    np.savez(os.path.join(directory, DATA_FILE), **arrays)
    modules, in_main, lambdas = _layer_modules(model)
    job = {
        "settings": dataclasses.asdict(settings),
        "backend": backend,
        "stripped": stripped,
        "input_names": names,
        "output_names": list(reference),
        "calibration": calibration is not None,
        "primary": vset.primary,
        "source": vset.source,
        "parts": [list(p) for p in vset.parts],
        "modules": modules,
        "classes_in_main": in_main,
        "lambda_layers": lambdas,
        "sys_path": [p for p in sys.path if p],
    }
    with open(os.path.join(directory, JOB_FILE), "w", encoding="utf-8") as f:
        json.dump(job, f)


def _layer_modules(model):
    """``(modules, classes, lambdas)``: the modules of the model's own (non-Keras) classes, which
    the worker imports so that their registered classes are known when it loads the file; the
    classes defined in ``__main__`` (a script: the worker cannot import it); the names of the
    Lambda layers (named when the file does not load)."""
    modules, in_main, lambdas = [], [], []
    for obj in [model] + list(keras_side.all_layers(model)):
        module = type(obj).__module__ or ""
        if module == "__main__":
            in_main.append(type(obj).__name__)
        elif not module.startswith(("keras.", "builtins")) and module not in modules:
            modules.append(module)
        if type(obj).__name__ == "Lambda":
            lambdas.append(obj.name)
    return modules, sorted(set(in_main)), lambdas


def _worker_env() -> dict:
    import tfprune  # pylint: disable=import-outside-toplevel

    env = dict(os.environ)
    env["KERAS_BACKEND"] = "tensorflow"
    env.pop("TF_USE_LEGACY_KERAS", None)  # the worker's tf.keras must be Keras 3
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    roots = [os.path.dirname(os.path.dirname(os.path.abspath(m.__file__)))
             for m in (sys.modules[__package__], tfprune)]
    paths = roots + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def _run_worker(directory, backend, head):
    """``("report", ExportReport)`` or ``("error", exception)`` from the worker."""
    command = [sys.executable, "-m", WORKER, directory]
    proc = subprocess.run(command, capture_output=True, text=True, env=_worker_env(),
                          check=False)
    result = os.path.join(directory, RESULT_FILE)
    if os.path.isfile(result):
        with open(result, "rb") as f:
            return pickle.load(f)
    return "error", ExportError(
        head + f"the TensorFlow-backend subprocess that rebuilds the {backend} model exited with "
        f"status {proc.returncode} without a result ({_last_error_line(proc.stderr)})")


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "error" in line]
    line = (errors or lines or ["no error output"])[-1]
    return " ".join(line.split())[:300]


def _one_line(e: BaseException) -> str:
    text = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(e)).split())  # no terminal colours
    return f"{type(e).__name__}: {text[:300]}" if text else type(e).__name__
