"""Energy per inference: MACs and memory traffic priced per operation (Horowitz, ISSCC 2014).

A first-order model in the spirit of Han et al. (NeurIPS 2015): what a network needs for one
example is counted per layer (MACs actually needed: dense, kept weights for unstructured
sparsity, kept blocks for block sparsity, the smaller model after structured pruning; weight,
index and activation bytes moved) and priced with :class:`EnergyCosts` (pJ per operation, per
32-bit SRAM / DRAM / register access, on-chip size, index width: every assumption a documented
parameter). The result, :class:`EnergyEstimate`, is pJ and µJ per inference per layer with
compute vs memory. It is an estimate for comparing models, not a measurement of a device.

* :mod:`~tfprune.energy.costs`: :class:`EnergyCosts`, the data types (float32, float16, int8);
* :mod:`~tfprune.energy.estimate`: :class:`LayerCount` -> :func:`estimate` -> :class:`EnergyEstimate`
  (the formulas);
* :mod:`~tfprune.energy.counts`: :func:`layer_macs`, :func:`count_layers`, :func:`with_mask` and
  :func:`estimate_energy` (a tf_keras or Keras 3 model and its masks).

``tfprune.sparsity_report``, ``tfprune.structured.prune``'s report and ``tflite_export.export``'s
report carry an estimate (``report.energy``; before and after for structured pruning).
"""
from tfprune.energy.costs import DTYPE_BYTES, EnergyCosts
from tfprune.energy.counts import count_layers, estimate_energy, layer_macs, with_mask
from tfprune.energy.estimate import EnergyEstimate, LayerCount, LayerEnergy, estimate

__all__ = ["DTYPE_BYTES", "EnergyCosts", "EnergyEstimate", "LayerCount", "LayerEnergy", "count_layers", "estimate",
           "estimate_energy", "layer_macs", "with_mask"]
