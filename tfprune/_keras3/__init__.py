"""The Keras 3 seam: the only part of tfprune that knows Keras 3 (``import keras``) models."""
import sys


def is_keras3(obj) -> bool:
    """Whether ``obj`` is a Keras 3 model or layer (checked without importing Keras)."""
    if "keras" not in sys.modules:
        return False
    return any(c.__module__.startswith("keras.") for c in type(obj).__mro__)


def require_prunable(model, argument: str = "model"):
    """The model's prunable kernels; a clear error when it has none."""
    from tfprune._keras3.layers import prunable_kernels

    kernels = prunable_kernels(model)
    if not kernels:
        raise ValueError(f"{argument}: Keras 3 model {model.name!r} has no prunable layer (Dense, EinsumDense, "
                         "Conv1D/2D/3D or their transposes).")
    return kernels
