"""Checks of :func:`tflite_export.export`'s arguments, and its calibration / verification inputs.

Every check raises ``ValueError`` with one line naming the argument, the value and what is
allowed (tfprune's message format, :mod:`tfprune.checks`).
"""

from __future__ import annotations

import numbers

import numpy as np

from tfprune import checks

#: ``quantization=`` values; "smallest" tries the others and keeps the smallest verified file.
QUANTIZATIONS = ("none", "float16", "dynamic", "int8", "smallest")
BLOCKS = (None, "auto", (4, 1), (16, 1))

#: Verification tolerances per quantization, as ``(vs_keras, vs_dense_twin)``.  Both are relative
#: errors: ``|tflite - reference| / max|keras output|``, per sample the worst element of any
#: output, the scale taken over all verification samples (:mod:`tflite_export.samples`: a few
#: hundred).  ``vs_keras`` bounds quantization noise (int8/dynamic are loose on purpose: the
#: model is quantized); ``vs_dense_twin`` compares the sparse file with the same model converted
#: without sparse encoding (same quantized weights), so it isolates what the sparse encoding did
#: and can be tight.  int8 allows a few output quantization steps there (block-sparse int8 kernels
#: round differently from dense ones).  Which statistic over the samples is bounded:
#: :data:`KERAS_BOUND` (vs-twin: always the maximum).
TOLERANCES = {
    "none": (1e-4, 1e-4),
    "float16": (1e-2, 1e-3),
    "dynamic": (5e-2, 1e-2),
    "int8": (1e-1, 3e-2),
}

#: The statistic of the per-sample vs-Keras error that the tolerance bounds: the maximum, except
#: for int8.  Its activation ranges are fixed at calibration, so inputs that drive an activation
#: past them are clipped: a few samples in a few hundred are far off (a pruned MNIST MLP: p99
#: 0.055-0.065 but max 0.21-0.31 on 1,000 test digits), and the maximum over N samples keeps
#: growing with N, so no bound on it verified on N samples holds for unseen inputs; the 99th
#: percentile does, within sampling error.  The maximum is reported either way.
KERAS_BOUND = {"none": "max", "float16": "max", "dynamic": "max", "int8": "p99"}


def check_model(model):
    """``model`` if it is a Keras model tfprune works with: tf_keras, or Keras 3 on any backend
    (see :mod:`tfprune.keras_utils`)."""
    from tfprune import keras_utils  # pylint: disable=import-outside-toplevel  (imports TensorFlow)

    keras_utils.require_keras_model(model, "model", keras3=True)
    if keras_utils.is_keras3_model(model) and not _has_inputs(model):
        raise ValueError(
            f"model: Keras 3 model {model.name!r} ({type(model).__name__}) has no symbolic inputs "
            "(a subclassed model), so its input signature is unknown; allowed: a Sequential or "
            "Functional model: wrap it as keras.Model(inputs, model(inputs)) with "
            "inputs = keras.Input(shape).")
    return model


def _has_inputs(model) -> bool:
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def input_names(model) -> list:
    """The model's input names (Keras 3: its ``Input`` layers' names, as the TFLite signature
    has them)."""
    from tfprune import keras_utils  # pylint: disable=import-outside-toplevel

    return keras_utils.input_names(model)


def numpy_dtype(dtype):
    """A tf_keras input's ``tf.DType`` or a Keras 3 input's dtype string as a numpy dtype."""
    return np.dtype(dtype.as_numpy_dtype if hasattr(dtype, "as_numpy_dtype") else str(dtype))


def check_quantization(value) -> str:
    return checks.choice(value, "quantization", QUANTIZATIONS)


def check_block(value):
    """``value`` as one of :data:`BLOCKS` (a list or numpy ints are accepted for a pair)."""
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(b) for b in value):
        value = (int(value[0]), int(value[1]))
    if value is None or (isinstance(value, (str, tuple)) and value in BLOCKS):
        return value
    raise ValueError(f"block: got {value!r}; allowed: {', '.join(map(repr, BLOCKS))} (Keras "
                     "layout: blocks of 4 or 16 along the Dense input axis).")


def check_flag(value, argument: str) -> bool:
    """A Python or numpy bool (not 0 / 1, not a string)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{argument}: got {value!r}; allowed: True, False.")
    return bool(value)


def check_tolerances(value, quantization: str) -> tuple:
    """``(vs_keras, vs_dense_twin)``: :data:`TOLERANCES` for ``quantization``, overridden by
    ``value`` (a float for vs-Keras, or a pair)."""
    tols = TOLERANCES[quantization]
    if value is None:
        return tols
    if _is_positive(value):
        return float(value), tols[1]
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_positive(t) for t in value):
        return float(value[0]), float(value[1])
    raise ValueError(f"tolerance: got {value!r}; allowed: None, a positive float, or a "
                     "(vs_keras, vs_dense_twin) pair of positive floats.")


def check_calibration(quantization: str, representative_data) -> None:
    if quantization == "int8" and representative_data is None:
        raise ValueError("quantization='int8' needs representative_data (calibration samples: an "
                         "array with samples on axis 0, e.g. 100 training inputs)")


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_positive(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value > 0


# --------------------------------------------------------------------------------------------
# Calibration and verification inputs (assembled by :mod:`tflite_export.samples`)


def input_dict(model, data, argname: str) -> dict:
    """Normalises array / list / dict inputs to {input name: float array [n, ...]}."""
    names = input_names(model)
    if isinstance(data, dict):
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"{argname}: missing inputs {missing}; the model's inputs are {names}")
        arrays = [data[n] for n in names]
    elif isinstance(data, (list, tuple)) and len(names) > 1:
        if len(data) != len(names):
            raise ValueError(f"{argname}: got {len(data)} arrays, the model has {len(names)} "
                             f"inputs {names}")
        arrays = list(data)
    else:
        if len(names) != 1:
            raise ValueError(f"{argname}: the model has {len(names)} inputs {names}; pass a list "
                             "or a dict of arrays")
        arrays = [data]
    out = {}
    n = None
    for name, arr, tensor in zip(names, arrays, model.inputs):
        try:
            arr = np.asarray(arr)
        except Exception as e:  # pylint: disable=broad-except
            raise ValueError(f"{argname}: input {name!r} is not array-like: {e}") from None
        want = tuple(tensor.shape[1:])
        if arr.ndim != len(want) + 1 or any(w is not None and w != a for w, a in zip(want, arr.shape[1:])):
            raise ValueError(f"{argname}: input {name!r} has shape {arr.shape}; expected "
                             f"(n_samples,) + {want}")
        if arr.shape[0] == 0:
            raise ValueError(f"{argname}: input {name!r} has no samples")
        if n is not None and arr.shape[0] != n:
            raise ValueError(f"{argname}: inputs have different numbers of samples")
        n = arr.shape[0]
        out[name] = arr.astype(numpy_dtype(tensor.dtype), copy=False)
        check_finite(out[name], argname, name)
    return out


def check_finite(arr: np.ndarray, argname: str, name: str) -> None:
    """Raises ``ValueError`` naming the argument if ``arr`` holds NaN or inf: such inputs make
    the converter crash (int8 calibration) or every verification fail, and the cause is the
    data, not the model."""
    if not np.issubdtype(arr.dtype, np.floating):
        return
    bad = ~np.isfinite(arr)
    if not bad.any():
        return
    per_sample = bad.reshape(len(arr), -1).any(axis=1)
    n_bad = int(bad.sum())
    raise ValueError(
        f"{argname}: input {name!r} has {n_bad} non-finite value{'s' if n_bad > 1 else ''} "
        f"(NaN or inf) in "
        f"{int(per_sample.sum())} of {len(arr)} samples (first: sample {int(per_sample.argmax())}); "
        "allowed: finite numbers. The problem is this input data, not the model: clean or drop "
        "those samples.")


def random_inputs(model, n: int, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    out = {}
    for name, tensor in zip(input_names(model), model.inputs):
        shape = tuple(tensor.shape[1:])
        if any(s is None for s in shape):
            raise ValueError(f"verify_with is required: input {name!r} has an unknown dimension "
                             f"{shape}, so random verification inputs cannot be drawn")
        dtype = numpy_dtype(tensor.dtype)
        floating = getattr(tensor.dtype, "is_floating", None)
        if not (np.issubdtype(dtype, np.floating) if floating is None else floating):
            raise ValueError(f"verify_with is required: input {name!r} is {dtype.name}, "
                             "random verification inputs are drawn only for float inputs")
        out[name] = rng.standard_normal((n,) + shape).astype(dtype)
    return out
