"""Keras model -> .tflite bytes with the TFLite converter: the dense twin, then its sparse
encoding.

TensorFlow is imported on the first call.  :func:`tflite_export.export` checks the model
through :mod:`tfprune.keras_utils` first, so tfprune has set up its Keras by then.  A converter
failure (``ConverterError``, e.g. an op TFLite has no kernel for) becomes an
:class:`~tflite_export.ExportError` naming the op and the Keras layer it comes from.
"""

from __future__ import annotations

import contextlib
import io
import re

from tfprune.logs import quiet_native_logs

from .keras_side import all_layers
from .reports import ExportError

OPS_GUIDE = "https://www.tensorflow.org/lite/guide/ops_compatibility"


def convert(model, quantization: str, calibration: dict | None, sparsity: bool = False,
            path: str | None = None) -> bytes:
    """Converts ``model`` with the requested quantization; ``sparsity`` adds the converter's
    ``EXPERIMENTAL_SPARSITY`` pass.  ``calibration`` ({input name: samples}) is needed for int8.
    ``path``: the export's target, named in the :class:`ExportError` a converter failure raises."""
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
    try:
        # the converter's INFO/WARNING lines (errors come through), and the "Saved artifact at
        # ..." lines Keras 3's model.export prints on stdout while a Keras 3 model is converted
        with quiet_native_logs(), contextlib.redirect_stdout(io.StringIO()):
            return bytes(converter.convert())
    except Exception as e:  # pylint: disable=broad-except
        if type(e).__name__ != "ConverterError":
            raise
        error = converter_error(str(e), model, path, quantization)
    raise error  # outside the except block: no chained TensorFlow traceback


def sparsify(dense_bytes: bytes, model, quantization, calibration, path=None) -> bytes:
    """The converter's EXPERIMENTAL_SPARSITY pass, applied to the dense twin itself.

    ``TFLiteConverter.convert`` runs this pass (``mlir_sparsify``) on the finished flatbuffer, so
    calling it on the twin gives the same file with bit-identical quantization; if that private
    function moves, convert again through the public API instead.
    """
    try:
        from tensorflow.lite.python.convert import mlir_sparsify  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover
        return convert(model, quantization, calibration, sparsity=True, path=path)
    with quiet_native_logs():
        return bytes(mlir_sparsify(dense_bytes))


# --------------------------------------------------------------------------------------------
# Converter failures


def unsupported_ops(message: str) -> tuple[list, bool]:
    """``(op types, needs_select)`` parsed from a ConverterError's text: the TensorFlow ops with
    no TFLite builtin kernel, and whether TF Select (flex) kernels exist for all of them."""
    ops = re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)
    for line in message.splitlines():
        m = re.match(r"\s*(?:Custom ops|TF Select ops):\s*(.+)$", line)
        if m:
            ops += [op.strip() for op in m.group(1).split(",") if op.strip()]
    unique = list(dict.fromkeys(ops))
    return unique, bool(unique) and "ERROR_NEEDS_CUSTOM_OPS" not in message


def layers_with_ops(model, op_types) -> dict:
    """``{op type: Keras layer name}`` for the ops of ``op_types`` in the model's traced graph
    (the layer is the innermost name scope that is a layer name, or one with a ``_<n>`` suffix
    added: Keras 3 scopes a layer called twice, or traced again, as ``odd_op_1``).  Best effort:
    ``{}`` if the model cannot be traced."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    try:
        specs = [tf.TensorSpec(t.shape, t.dtype) for t in model.inputs]
        fn = tf.function(lambda *xs: model(list(xs) if len(xs) > 1 else xs[0], training=False))
        graph_def = fn.get_concrete_function(*specs).graph.as_graph_def()
    except Exception:  # pylint: disable=broad-except
        return {}
    names = {layer.name for layer in all_layers(model)}
    nodes = list(graph_def.node) + [n for f in graph_def.library.function for n in f.node_def]
    found = {}
    for node in nodes:
        if node.op in op_types and node.op not in found:
            scopes = node.name.split("/")[:-1]
            layer = next((s for s in reversed(scopes) if s in names), None) or next(
                (re.sub(r"_\d+$", "", s) for s in reversed(scopes)
                 if re.sub(r"_\d+$", "", s) in names), None)
            if layer is not None:
                found[node.op] = layer
    return found


def converter_error(message: str, model, path, quantization) -> ExportError:
    """One-line :class:`ExportError` for a ConverterError (full text in ``.converter_message``)."""
    head = f"export refused, nothing written to {path!r}: "
    ops, select = unsupported_ops(message)
    if ops:
        where = layers_with_ops(model, set(ops))
        named = ", ".join(f"op {op}" + (f" (layer {where[op]!r})" if op in where else "")
                          for op in ops)
        layers = sorted(set(where.values()))
        fix = (f"replace or remove layer{'s' if len(layers) > 1 else ''} "
               + ", ".join(map(repr, layers)) if layers else "replace the layers that use it")
        need = ("TF Select (flex) kernels, which tflite_export does not enable" if select
                else "a custom op kernel")
        text = (head + f"the TFLite converter cannot convert {named}: no TFLite builtin kernel "
                f"(it would need {need}); allowed: layers made of TFLite builtin ops "
                f"({OPS_GUIDE}); {fix}")
    else:
        first = next((line.strip() for line in message.splitlines() if "error:" in line),
                     message.strip().splitlines()[0] if message.strip() else "")
        text = (head + f"the TFLite converter failed (quantization={quantization!r}): "
                f"{' '.join(first.split())[:300]}; the converter's full output is in "
                "err.converter_message")
    error = ExportError(text)
    error.converter_message = message
    return error
