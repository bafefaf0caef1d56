"""Keras 3 layers tfprune prunes, keyed by their path (placeholder; the full version lands with masks)."""
import keras

PRUNABLE = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Conv1D, keras.layers.Conv2D,
            keras.layers.Conv3D, keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
            keras.layers.Conv3DTranspose)


def _key(model, layer):
    prefix = (model.path + "/") if getattr(model, "path", None) else ""
    path = layer.path or layer.name
    return path[len(prefix):] if prefix and path.startswith(prefix) else path


def prunable_kernels(model, include=()):
    out = {}
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, PRUNABLE) and not isinstance(layer, (keras.layers.DepthwiseConv2D,)):
            out[_key(model, layer)] = layer._kernel
    return out
