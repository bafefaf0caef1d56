"""Structured pruning: remove whole neurons / filters and get a genuinely smaller dense model.

A smaller dense model is what speeds up every backend (TFLite/LiteRT, XNNPACK, GPUs) without
sparse kernels. Three steps, each a function you can call on its own:

1. **channel scores** (:func:`channel_scores`): L1/L2 norm of each neuron's / filter's
   weights, or any core scorer (SNIP, GraSP, SynFlow, magnitude, random) summed per output
   channel (:func:`pool_channel_scores`);
2. **plan** (:func:`channel_plan`): the model's channel *groups* (a layer's channels, or the
   channels a residual ``Add`` couples across layers) and which channels survive, allocated
   per group or globally through :func:`tfprune.allocation.allocate_channels`;
3. **surgery** (:func:`shrink`): a new tf_keras model with fewer channels, the weights
   sliced (consumers' input slices, BatchNorm, depthwise kernels, the Dense after a Flatten
   in NHWC order, Concatenate offsets), and a :class:`StructuredReport` of parameters and
   FLOPs per layer before and after.

:func:`prune` does all three. The smaller model's outputs equal those of the *masked
original* (:func:`reference_model`); ``removed="zero"`` (default) zeroes a removed channel
entirely (kernel slice, bias, BatchNorm γ/β), ``removed="fold"`` zeroes only its kernel slice
and folds the constant it still carries into the consumers' biases. See
:mod:`tfprune.structured.surgery`.

Example::

    import tfprune.structured as ts
    small, report = ts.prune(model, 0.75, "l1")      # remove 75% of every layer's channels
    print(report)                                   # channels, params, FLOPs per layer
    small.compile("adam", tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    small.fit(x, y, epochs=1)
    tflite = tf.lite.TFLiteConverter.from_keras_model(small).convert()

    # SNIP scores pooled per filter, one global ranking, per-layer overrides:
    small, report = ts.prune(model, 0.5, "snip", data=(x[:100], y[:100]), scope="global")
    small, report = ts.prune(model, {"conv1": 0.25, "conv2": 0.75}, "l2")
"""
from tfprune.structured.api import ChannelPlan, PruneResult, channel_plan, prune, reference_model, shrink
from tfprune.structured.graph import ChannelGraph, StructuredPruningError
from tfprune.structured.report import LayerChange, StructuredReport, layer_flops
from tfprune.structured.scores import (
    channel_norms,
    channel_scores,
    channel_sizes,
    criterion_keep,
    pool_channel_scores,
)
from tfprune.structured.surgery import InexactFoldWarning

__all__ = [
    "ChannelGraph", "ChannelPlan", "InexactFoldWarning", "LayerChange", "PruneResult", "StructuredPruningError",
    "StructuredReport", "channel_norms", "channel_plan", "channel_scores", "channel_sizes", "criterion_keep",
    "layer_flops", "pool_channel_scores", "prune", "reference_model", "shrink",
]
