"""``export``: pruned Keras model -> sparse .tflite that is verified against Keras in LiteRT.

Pipeline (each step is recorded in the returned :class:`ExportReport`):

1. Strip pruning wrappers (tfprune's and TF-MOT's ``PruneLowMagnitude``) and copy the model with
   every ``-0.0`` weight rewritten as ``+0.0`` (TF-MOT masking leaves ``-0.0`` in about half of
   the zeros; they compress worse and are not what the mask means).  The caller's model is never
   modified.  (:mod:`~tflite_export.keras_side`)
2. Convert once *without* sparse encoding (with the requested quantization): the **dense twin**.
3. Sparse-encode the twin with the converter's ``EXPERIMENTAL_SPARSITY`` pass.
   (:mod:`~tflite_export.conversion`)
4. Check every sparse weight against the known-wrong combinations of TF 2.21 / LiteRT 2.x and
   store the offending ones dense (see :data:`KNOWN_ISSUES`, :mod:`~tflite_export.rules`).
5. Run the candidate and the twin under both op resolvers (default = XNNPACK, and
   ``BUILTIN_WITHOUT_DEFAULT_DELEGATES``) on a few hundred verification inputs
   (:mod:`~tflite_export.samples`) and compare with Keras and with each other
   (:data:`TOLERANCES`, :mod:`~tflite_export.verification`).  If the sparse candidate fails,
   fall back to the dense twin; if that fails too, raise :class:`ExportError`.
6. Never keep a sparse file that is larger than its dense twin.  (Steps 2-6:
   :mod:`~tflite_export.steps`.)
7. After a dense fallback, try the other quantizations and name the smallest verified one that
   is smaller (``ExportReport.fallback_line()``); ``quantization="smallest"`` tries them all and
   keeps the smallest verified file (:mod:`~tflite_export.options`).
8. Write the file atomically (``tfprune.io``: temporary file in the same directory +
   ``os.replace``, mode 0644) only after verification passed (:mod:`~tflite_export.writing`).
9. Estimate the written file's energy per inference (``report.energy``, :mod:`tfprune.energy`):
   its data types, block-sparse weights run sparse, element-sparse ones densified at load
   (:mod:`~tflite_export.energy`).

Which Keras (dispatch by model type; same steps, same rules and fallbacks, same report):

* **tf_keras** (Keras 2) models: all in this process, as above.
* **Keras 3, TensorFlow backend**: all in this process too (the converter takes Keras 3
  TensorFlow models).  Step 1 strips tfprune's Keras 3 ``MaskedLayer`` wrappers
  (``tfprune.strip``, a new model); a model tfprune masked in place is not stripped (that would
  change the caller's model) and is exported as it is: its masked weights are +0.0 already.
  ``ExportReport.keras`` says ``"Keras 3, tensorflow backend ..."``.
* **Keras 3, JAX or PyTorch backend**: the verification inputs and the model's own outputs on
  them (the reference) are computed here, on its backend; the stripped model is saved to a
  temporary ``.keras`` file and the inputs, reference and calibration data to an ``.npz``; a
  subprocess with ``KERAS_BACKEND=tensorflow`` rebuilds the model and runs steps 2-8 verifying
  the .tflite against the **original backend's** outputs (:mod:`~tflite_export.rebuild`).  Its
  failures are one-line :class:`ExportError` s naming why (a class it cannot import, a file it
  cannot load, its exit status and last error line).
* Keras 3 subclassed models (no symbolic inputs) are refused (``ValueError``): wrap them as
  ``keras.Model(inputs, model(inputs))``.
"""

from __future__ import annotations

import dataclasses

from . import arguments, energy, keras_side, options, samples, steps, writing
from .inspection import gzip_size
from .reports import ExportError, ExportReport


def export(model, path, quantization="none", representative_data=None, sparse=True, block=None,
           verify_with=None, tolerance=None, overwrite=False) -> ExportReport:
    """Exports a (pruned) Keras model to a sparse .tflite that is verified in LiteRT.

    Args:
      model: a Keras model of the kind tfprune prunes: tf_keras
        (:func:`tfprune.keras_utils.is_keras_model`), or a Sequential / Functional Keras 3 model
        on any backend (:func:`tfprune.keras_utils.is_keras3_model`; JAX and PyTorch models are
        rebuilt under TensorFlow in a subprocess, see above); tfprune / TF-MOT pruning wrappers
        are stripped first (on a copy).
      path: where to write the .tflite.  Written atomically (mode 0644), and only if verification
        passed.
      quantization: ``"none"`` (float32), ``"float16"`` (float16 weights), ``"dynamic"``
        (dynamic-range int8 weights, float activations) or ``"int8"`` (int8 weights and
        activations calibrated on ``representative_data``; float32 model input/output), or
        ``"smallest"``: try those four (int8 only with ``representative_data``) and keep the
        smallest file that passes verification (``report.candidates`` says what each gave).
      representative_data: calibration samples (array with samples on axis 0; a list or a dict of
        arrays for multi-input models).  Required for ``"int8"``: the first 200 samples
        calibrate; all of them (up to 1,200) are verification inputs too.  Must be finite.
      sparse: encode weights with >= 30% zeros sparse (``EXPERIMENTAL_SPARSITY``).  ``False``
        writes the dense twin.
      block: ``None``: whatever the converter does.  ``(4, 1)`` / ``(16, 1)``: check that every
        Dense kernel with >= 30% zeros is zero in whole (b, 1) blocks along its input axis (Keras
        layout [in, out], i.e. 1xb in TFLite's [out, in]) and raise ``ValueError`` if not.
        ``"auto"``: detect and report the block structure per layer.  The fast paths are 1x4 for
        float32 and 1x16 for int8 FULLY_CONNECTED weights; conv weights are always element-wise.
      verify_with: verification inputs (same forms as ``representative_data``; finite): held-out
        real inputs make the error bound hold for real inputs.  Default: the first 16 samples of
        ``representative_data`` if given, else 16 standard-normal samples of the model's input
        shape drawn with seed 0.  Either way representative_data and fresh in-range inputs are
        added, a few hundred in all (:mod:`~tflite_export.samples`).
      tolerance: override :data:`TOLERANCES` for this call: a float (vs-Keras tolerance) or a
        ``(vs_keras, vs_dense_twin)`` pair.
      overwrite: replace ``path`` even if it is an existing read-only file (a writable one is
        always replaced).

    Returns:
      :class:`ExportReport` (``print(report)``, ``report.to_dict()``).

    Raises:
      ValueError: bad arguments (the message names the argument, the value and what is allowed).
      FileExistsError: ``path`` is a read-only file and ``overwrite`` is False.
      ExportError: neither the sparse model nor its dense twin passed verification, or the
        converter failed (the message names the op and layer); nothing was written
        (``err.report`` has the details).
      OSError: the file could not be written (the message names it; no partial file is left).

    Example (``model``: a small tf_keras model):

        >>> import tflite_export
        >>> pruned = tfprune.prune_at_init(model, "magnitude", sparsity=0.9)
        >>> report = tflite_export.export(pruned, "lenet.tflite", block="auto")
        >>> report.written, report.stripped, report.encoding   # print(report): encodings, fallbacks, parity, sizes
        (True, True, 'sparse')
        >>> round(report.to_dict()["size_ratio_vs_dense_twin"], 1)
        0.5
    """
    quantization = arguments.check_quantization(quantization)
    block = arguments.check_block(block)
    sparse = arguments.check_flag(sparse, "sparse")
    overwrite = arguments.check_flag(overwrite, "overwrite")
    path = writing.check_path(path, overwrite)
    arguments.check_model(model)
    arguments.check_calibration(quantization, representative_data)
    arguments.check_tolerances(tolerance, "none" if quantization == "smallest" else quantization)
    calibration, vset = samples.build(model, representative_data, verify_with)
    settings = Settings(path, quantization, sparse, block, tolerance, overwrite)

    backend = keras3_backend(model)
    if backend not in (None, "tensorflow"):  # JAX / PyTorch: rebuilt under TensorFlow
        from . import rebuild  # pylint: disable=import-outside-toplevel

        return rebuild.export(model, settings, calibration, vset, backend)
    stripped = keras_side.strip(model)
    return convert_verify_write(stripped, settings, calibration, vset,
                                stripped=stripped is not model,
                                keras="tf_keras" if backend is None else KERAS3_IN_PROCESS)


#: ``ExportReport.keras`` of a Keras 3 model on the TensorFlow backend.
KERAS3_IN_PROCESS = "Keras 3, tensorflow backend (converted in this process)"


@dataclasses.dataclass
class Settings:
    """:func:`export`'s checked arguments that the conversion, verification and write use."""

    path: str
    quantization: str
    sparse: bool
    block: object
    tolerance: object
    overwrite: bool


def keras3_backend(model):
    """The Keras 3 backend of ``model`` (this process's), or None for a tf_keras model."""
    from tfprune import keras_utils  # pylint: disable=import-outside-toplevel

    return keras_utils.keras3_backend() if keras_utils.is_keras3_model(model) else None


def convert_verify_write(model, settings: Settings, calibration, vset, stripped=False,
                         keras="tf_keras", reference=None, notes=()) -> ExportReport:
    """Steps 2-8 on a stripped model in this process (a tf_keras model, or a Keras 3 model on the
    TensorFlow backend): canonical copy, convert, verify, write.  ``reference``: the Keras
    outputs on ``vset`` to verify against (default: ``model``'s own); ``notes`` go in the
    report."""
    path, quantization = settings.path, settings.quantization
    work, n_fixed, restore = keras_side.canonical_copy(model)
    job = steps.Job(work, path, settings.sparse, settings.block, settings.tolerance, calibration,
                    vset, stripped=stripped, negative_zeros_fixed=n_fixed, keras=keras,
                    notes=list(notes), _reference=reference)
    overwrite = settings.overwrite
    report = None
    try:
        if quantization == "smallest":
            report, chosen = options.smallest(job)
        else:
            report = job.new_report(quantization)
            chosen = steps.run(job, report)
            if report.fell_back():
                options.suggest(job, report, len(chosen))
        writing.write(path, chosen, overwrite)
    except ExportError as e:
        if e.report is None:
            e.report = report
        raise
    finally:
        if restore is not None:  # the model could not be cloned: put its weights back
            work.set_weights(restore)
    report.written = True
    report.size_bytes = len(chosen)
    report.gzip_bytes = gzip_size(chosen)
    report.energy = energy.estimate(work, report)
    return report
