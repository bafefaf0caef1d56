"""The Keras 3 seam: the only part of tfprune that knows Keras 3 (``import keras``) models."""
import sys


def is_keras3(obj) -> bool:
    """Whether ``obj`` is a Keras 3 model or layer (checked without importing Keras)."""
    if "keras" not in sys.modules:
        return False
    return any(c.__module__.startswith("keras.") for c in type(obj).__mro__)
