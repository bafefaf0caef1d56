"""Makes the repository root importable and TensorFlow quiet and deterministic in tests."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
