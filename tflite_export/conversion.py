"""Keras model -> .tflite bytes with the TFLite converter: the dense twin, then its sparse
encoding.

TensorFlow is imported on the first call.  :func:`tflite_export.export` checks the model
through :mod:`tfprune.keras_utils` first, so tfprune has set up its Keras by then.
"""

from __future__ import annotations


def convert(model, quantization: str, calibration: dict | None, sparsity: bool = False) -> bytes:
    """Converts ``model`` with the requested quantization; ``sparsity`` adds the converter's
    ``EXPERIMENTAL_SPARSITY`` pass.  ``calibration`` ({input name: samples}) is needed for int8."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if sparsity else []
    if quantization != "none":
        optimizations.append(tf.lite.Optimize.DEFAULT)
    converter.optimizations = optimizations
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        names = list(calibration)
        n = len(calibration[names[0]])

        def gen():
            for i in range(n):
                yield [calibration[name][i:i + 1] for name in names]

        converter.representative_dataset = gen
    return bytes(converter.convert())


def sparsify(dense_bytes: bytes, model, quantization, calibration) -> bytes:
    """The converter's EXPERIMENTAL_SPARSITY pass, applied to the dense twin itself.

    ``TFLiteConverter.convert`` runs this pass (``mlir_sparsify``) on the finished flatbuffer, so
    calling it on the twin gives the same file with bit-identical quantization; if that private
    function moves, convert again through the public API instead.
    """
    try:
        from tensorflow.lite.python.convert import mlir_sparsify  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover
        return convert(model, quantization, calibration, sparsity=True)
    return bytes(mlir_sparsify(dense_bytes))
