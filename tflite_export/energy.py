"""Energy per inference of the file :func:`tflite_export.export` wrote, priced as LiteRT runs it
(:mod:`tfprune.energy`: Horowitz 45 nm costs, default :class:`tfprune.EnergyCosts`).

What the file really does:

* data types by quantization: ``none`` float32 throughout; ``float16`` float16 weights,
  float32 activations and arithmetic (the weights are dequantized); ``dynamic`` int8 weights,
  float32 activations, int8 arithmetic (activations quantized on the fly); ``int8`` int8
  throughout (int32 accumulators);
* block-sparse weights (``block 1x4`` / ``block 1x16`` written) run sparse: one index per kept
  block, every weight of a kept block multiplied;
* element-sparse weights (``CSR``, with or without an explicit DENSIFY) are expanded to dense
  once when the model is loaded: every inference reads and multiplies them dense, so they are
  priced dense (a smaller file, not less energy); so is every weight written dense.

tf_keras models and Keras 3 models (exported on the TensorFlow backend, or rebuilt there from
the JAX / PyTorch ones).
"""
from __future__ import annotations

#: quantization -> (weights, activations, arithmetic) data types.
DTYPES = {
    "none": ("float32", "float32", "float32"),
    "float16": ("float16", "float32", "float32"),
    "dynamic": ("int8", "float32", "int8"),
    "int8": ("int8", "int8", "int8"),
}


def _keras_block(encoding: str):
    """``"block 1x4"`` (TFLite layout [out, in]) -> ``(4, 1)`` (Keras layout [in, out])."""
    dims = [int(d) for d in encoding.split()[1].split("x")]
    return tuple(reversed(dims)) if len(dims) == 2 else None


def estimate(model, report):
    """The :class:`tfprune.EnergyEstimate` of the file ``report`` describes, for the stripped
    tf_keras or Keras 3 ``model`` it was converted from (None for anything else)."""
    from tfprune import energy, keras_utils  # pylint: disable=import-outside-toplevel

    from .keras_side import float_kernels  # pylint: disable=import-outside-toplevel

    if not (keras_utils.is_keras_model(model) or keras_utils.is_keras3_model(model)):
        return None
    counts, notes = energy.count_layers(model)  # all dense; block-sparse layers below
    blocks = {}
    if report.encoding == "sparse":
        for t in report.tensors:
            if t.layer and t.final_encoding.startswith("block") and _keras_block(t.final_encoding):
                blocks[t.layer] = _keras_block(t.final_encoding)
        if any(t.final_encoding.startswith("CSR") for t in report.tensors):
            notes.append("element-sparse (CSR) weights are expanded to dense when the model is loaded: priced dense")
    kernels = {name: kernel for name, _, kernel in float_kernels(model)}
    counts = [energy.with_mask(c, kernels[c.name] != 0, blocks[c.name], sparse=True)
              if c.name in blocks and c.name in kernels else c for c in counts]
    weights, activations, arithmetic = DTYPES[report.quantization]
    return energy.estimate(counts, None, weights, activation_dtype=activations, compute_dtype=arithmetic, notes=notes)
