"""Small sparse tf_keras models built with numpy masks, and readers for exported .tflite files."""

import os


import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402


def mlp(dims, seed=0, name=None):
    """Dense stack dims[0] -> dims[1] -> ... with ReLU between layers."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input((dims[0],), name="x")
    x = inp
    for i, d in enumerate(dims[1:]):
        x = keras.layers.Dense(d, activation="relu" if i < len(dims) - 2 else None,
                               name=f"fc{i}")(x)
    return keras.Model(inp, x, name=name)


def cnn(seed=0):
    keras.utils.set_random_seed(seed)
    inp = keras.Input((12, 12, 1), name="img")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv0")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv1")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(32, activation="relu", name="fc0")(x)
    x = keras.layers.Dense(10, name="fc1")(x)
    return keras.Model(inp, x)


def mask(shape, sparsity, block=None, rng=None):
    """Random keep-mask for a kernel; ``block=(b, 1)`` zeroes whole b x 1 blocks along axis -2."""
    rng = rng if rng is not None else np.random.default_rng(0)
    if block is None:
        return rng.random(shape) >= sparsity
    k = np.zeros(shape, bool).reshape(-1, shape[-2], shape[-1])
    b = block[0]
    nb = -(-shape[-2] // b)
    keep = rng.random((k.shape[0], nb, shape[-1])) >= sparsity
    full = np.repeat(keep, b, axis=1)[:, :shape[-2], :]
    return full.reshape(shape)


def sparsify(model, sparsity, block=None, seed=0, layers=None, negative_zeros=True):
    """Zeroes kernels in place (all Dense/Conv2D, or only ``layers``): element-wise or in blocks.

    With ``negative_zeros`` the pruned entries become -0.0 where the weight was negative, like
    TF-MOT's ``weight * mask``.
    """
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if not isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)):
            continue
        if layers is not None and layer.name not in layers:
            continue
        spec = layers[layer.name] if isinstance(layers, dict) else (sparsity, block)
        w = layer.get_weights()
        m = mask(w[0].shape, spec[0], spec[1], rng)
        kernel = w[0] * m if negative_zeros else np.where(m, w[0], 0.0).astype(w[0].dtype)
        layer.set_weights([kernel] + w[1:])
    return model


def inputs(model, n=8, seed=1):
    shape = tuple(model.inputs[0].shape[1:])
    return np.random.default_rng(seed).standard_normal((n,) + shape).astype(np.float32)


def run_tflite(path, x, resolver):
    """Runs a .tflite one sample at a time; returns stacked outputs (single-output models)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {}
    if resolver == "builtin":
        kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    it = Interpreter(model_path=str(path), **kwargs)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    ys = []
    for row in x:
        it.set_tensor(inp["index"], row[None].astype(inp["dtype"]))
        it.invoke()
        ys.append(it.get_tensor(out["index"])[0].copy())
    return np.stack(ys)


def rel_err(y, ref):
    return float(np.abs(np.asarray(y, np.float64) - ref).max() / np.abs(ref).max())


def float_buffers(path):
    """(tensor name, values) of every float32/float16 constant buffer, read back from the file."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    out = []
    for sg in model.subgraphs:
        for t in sg.tensors:
            data = model.buffers[t.buffer].data
            if data is None or t.type not in (0, 1):
                continue
            dtype = np.float32 if t.type == 0 else np.float16
            out.append((t.name, np.frombuffer(np.asarray(data, np.uint8).tobytes(), dtype)))
    return out


def op_names(path):
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    return [flatbuffer_utils.opcode_to_name(model, op.opcodeIndex)
            for sg in model.subgraphs for op in sg.operators]
