"""The one training loop of the procedures that prune before ``fit`` (or not at all):
``dense``, ``prune_at_init`` and ``tfmot_gradual``. Each gives :func:`fit_run` a function that
prunes the freshly built model; the loop compiles, trains, evaluates and builds the result, in
the run's Keras (``ctx.flavor``: tf_keras, or Keras 3 on any backend).

Under a ``tf.distribute`` strategy (``ctx.strategy``, tf_keras) the model is built, scored and
pruned on one device as without one (every worker computes the same masks: same seed, same
data), then copied into the strategy's scope (architecture, weights and masks) and compiled and
trained there; only the chief writes the outputs (:mod:`tfprune.experiment.runner`)."""
from __future__ import annotations

import time
import warnings
from typing import Callable

from tfprune import lottery
from tfprune.lottery import distribute
from tfprune.api import LayerCollapseWarning
from tfprune.experiment import summaries
from tfprune.experiment.runner import RunContext, make_result
from tfprune.report import sparsity_report


def _history(history) -> dict:
    return {k: [float(v) for v in vals] for k, vals in (history.history if history else {}).items()}


def _into_scope(model, strategy):
    """``model`` itself without a strategy; else a copy whose variables (weights, masks, the
    wrappers' step counters) are made in the strategy's scope, holding the same values."""
    if strategy is None:
        return model
    from tfprune._keras import keras
    from tfprune.wrapper import custom_object_scope

    with distribute.scope(strategy), custom_object_scope():
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
    return copy


def fit_run(ctx: RunContext, prune: "Callable | None"):
    """Builds the model, ``prune(model, total_steps) -> (model, method_info)`` (None: dense),
    trains ``epochs`` with one ``fit``, evaluates on the test split; returns ``(model, result)``."""
    config, datasets = ctx.config, ctx.datasets
    model = ctx.build_model()
    total_steps = config.epochs * datasets.steps_per_epoch
    method_info: dict = {}
    t0 = time.perf_counter()
    if prune is not None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", LayerCollapseWarning)
            model, method_info = prune(model, total_steps)
        for w in caught:
            if issubclass(w.category, LayerCollapseWarning):
                ctx.log(f"WARNING: {w.message}")
    prune_time = time.perf_counter() - t0
    initial = sparsity_report(model, check_paths=False)
    ctx.start_weights = lottery.phase_weights(model)  # the ticket's weights: training starts here

    spec = ctx.spec()
    model = _into_scope(model, ctx.strategy)
    with distribute.scope(ctx.strategy):
        model.compile(spec.optimizer(), spec.loss, metrics=list(spec.metrics))
    callbacks = ctx.flavor.fit_callbacks(pruned=prune is not None)
    if ctx.log_dir and distribute.is_chief(ctx.strategy):  # tf_keras only (checked with the config)
        callbacks += [ctx.flavor.keras.callbacks.TensorBoard(log_dir=ctx.log_dir, write_graph=False, profile_batch=0),
                      summaries.DensitySummaries(ctx.log_dir)]
    t0 = time.perf_counter()
    history = model.fit(datasets.train, epochs=spec.epochs, callbacks=callbacks, verbose=spec.verbose,
                        shuffle=False)  # (the dataset is shuffled already, per epoch, from the seed)
    train_time = time.perf_counter() - t0

    test_loss, test_acc = model.evaluate(datasets.test, verbose=0)
    report = sparsity_report(model)
    if ctx.log_dir:
        summaries.write_test_metrics(ctx.log_dir, test_acc, test_loss, step=config.epochs)
    hist = _history(history)
    result = make_result(ctx, test_accuracy=test_acc, test_loss=test_loss,
                         train_accuracy=hist.get("accuracy", [None])[-1], train_loss=hist.get("loss", [None])[-1],
                         report=report.to_dict(), initial_sparsity=initial.sparsity, prune_time=prune_time,
                         train_time=train_time, steps=total_steps, history=hist, method_info=method_info)
    return model, result
