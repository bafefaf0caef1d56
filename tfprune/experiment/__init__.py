"""The experiment harness: configurations, registered procedures, runs, sweeps' building blocks.

It sits above the library (it is its client) and is the only part of tfprune that imports
:mod:`tflite_export`. The binaries (``examples/train.py``, ``examples/demo.py``,
``benchmarks/sweep.py``) are thin layers over it:

* :class:`Config` → :func:`run` / :func:`train` (:mod:`.config`, :mod:`.runner`);
* procedures registered by name with typed settings (:mod:`.registry`, :mod:`.procedures`):
  ``dense``, ``prune_at_init``, ``early``, ``sanity``, ``lottery``, ``finetune``,
  ``tfmot_gradual``; every registered scorer is also a ``--method`` value;
* absl flags generated from both (:mod:`.flags`), with ``--plugin=MODULE``;
* which Keras a run uses (:mod:`.flavor`: tf_keras, or Keras 3 on TensorFlow, JAX or PyTorch);
* offline datasets (:mod:`.data`), the model zoo (:mod:`.models`, both Kerases), TensorBoard summaries
  (:mod:`.summaries`) and the TFLite export step (:mod:`.export`).

Example::

    from tfprune.experiment import Config, run
    result = run(Config(dataset="fashion_mnist", method="synflow", sparsity=0.98, epochs=3,
                        out_dir="/tmp/synflow98"))
    result["test_accuracy"], result["sparsity"]
"""
from tfprune.experiment.config import RESULT_FILE, Config, check_config, config_problems, read_result
from tfprune.experiment.registry import (Procedure, get_procedure, method_names, procedure_names,
                                         register_procedure, setting)
from tfprune.experiment import procedures  # noqa: E402,F401  (registers the built-in procedures)

_RUNNER = ("RunContext", "make_result", "run", "train")


def __getattr__(name):
    """The runner's names, imported on first use: configs, registries and flags need no TensorFlow."""
    if name in _RUNNER:
        from tfprune.experiment import runner

        return getattr(runner, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Config", "Procedure", "RESULT_FILE", "RunContext", "check_config", "config_problems", "get_procedure",
           "make_result", "method_names", "procedure_names", "read_result", "register_procedure", "run", "setting",
           "train"]
