"""Data-dependent scores computed on the replicas of a ``tf.distribute`` strategy.

The net is :class:`tfprune.scoring._tfkeras_net.TfKerasNet` (its scoring clone built inside
``strategy.scope()``, so its kernels are mirrored on every replica); only the way the passes over
the batches are combined differs. Each batch of n examples is split across the R replicas in
sync (replica r of the whole strategy, on whichever worker, gets examples
``[floor(r*n/R), floor((r+1)*n/R))``); each replica computes its own mean gradient ḡ_r (or
Hessian-gradient product) over its n_r examples, and the replicas' ``n_r * ḡ_r`` are summed by
one all-reduce (SUM) per batch. Then

    Σ_batches Σ_r n_r·ḡ_r / Σ_batches n

is the example-weighted mean over all the examples given, the same quantity as on one device
(only the order of the float additions differs). GraSP's g is first all-reduced this way, then
each replica computes H·g on its examples with that full g, and those are all-reduced too.

Under ``MultiWorkerMirroredStrategy`` every worker passes the same ``data`` (the same global
batches, as in ``fit``) and computes only its own replicas' slices; every worker gets the same
scores. A batch with fewer examples than replicas is refused (a replica would have none).
"""
from __future__ import annotations

import copy

import tensorflow as tf

from tfprune import _keras, _keras3
from tfprune.scoring._tfkeras_net import TfKerasNet, scoring_clone


def _examples(x) -> int:
    return int(tf.nest.flatten(x)[0].shape[0])


class DistributedNet(TfKerasNet):
    """A tf_keras scoring net whose passes run on every replica of ``strategy``."""

    def __init__(self, strategy, clone, batches, source):
        super().__init__(clone, batches, source=source)
        self.strategy, self._steps = strategy, {}

    def _split(self, x, y):
        """``(x, y)`` as per-replica values: replica r holds its slice of the batch."""
        n, replicas = _examples(x), self.strategy.num_replicas_in_sync

        def value(context):
            r = context.replica_id_in_sync_group
            start, stop = r * n // replicas, (r + 1) * n // replicas
            return tf.nest.map_structure(lambda t: tf.identity(t[start:stop]), (x, y))

        return self.strategy.experimental_distribute_values_from_function(value)

    def _accumulate(self, batches, fn):
        replicas = self.strategy.num_replicas_in_sync

        def replica_sum(x, y):
            n = tf.shape(tf.nest.flatten(x)[0])[0]
            values = [v * tf.cast(n, v.dtype) for v in fn(x, y)]
            return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, values)

        step = self._steps.get(fn)  # one traced step per pass function (iterative SNIP: one for all rounds)
        if step is None:
            step = self._steps[fn] = tf.function(lambda parts: self.strategy.run(replica_sum, args=parts),
                                                 reduce_retracing=True)
        batches = list(batches)
        for x, _ in batches:
            if _examples(x) < replicas:
                raise ValueError(f"data: a batch of {_examples(x)} example(s) cannot be split across the strategy's "
                                 f"{replicas} replicas; give batches of at least {replicas} examples.")
        total, count = None, 0
        for x, y in batches:
            n = _examples(x)
            summed = [self.strategy.experimental_local_results(v)[0] for v in step(self._split(x, y))]
            total = summed if total is None else [a + b for a, b in zip(total, summed)]
            count += n
        return [tf.identity(t) / tf.cast(count, t.dtype) for t in total]


def replica_loss(loss):
    """``loss`` for use inside a replica: a Keras loss object averaging over the batch refuses
    to run under a strategy unless told otherwise (as ``fit`` tells its compiled losses); here
    each replica's mean over its own examples is exactly what :class:`DistributedNet` weights
    by n_r, so a copy of it is allowed to (the user's object is left as it is)."""
    from tfprune.scoring._targets import OutputLosses
    if isinstance(loss, OutputLosses):
        return OutputLosses([None if l is None else replica_loss(l) for l in loss.losses], loss.names)
    if hasattr(loss, "_allow_sum_over_batch_size"):
        loss = copy.copy(loss)
        loss._allow_sum_over_batch_size = True  # noqa: SLF001  (tf_keras' own switch, set by compile)
    return loss


def check_strategy(strategy, model, argument: str = "strategy") -> None:
    if not isinstance(strategy, tf.distribute.Strategy):
        raise TypeError(f"{argument}: expected a tf.distribute.Strategy (e.g. tf.distribute.MirroredStrategy()), "
                        f"got {type(strategy).__name__}.")
    if _keras3.is_keras3(model):
        raise ValueError(f"{argument}: distributed scoring takes tf_keras models; model {model.name!r} is a Keras 3 "
                         "model (score it on one device, then train it under the strategy: docs/distributed.md).")


def loss_net(model, batches, strip_softmax, strategy) -> DistributedNet:
    """The tf_keras loss net of :mod:`tfprune.scoring.nets`, its clone's variables mirrored on
    ``strategy``'s replicas."""
    check_strategy(strategy, model)
    with strategy.scope():
        clone, _ = scoring_clone(model, strip_softmax=strip_softmax)
    return DistributedNet(strategy, clone, batches, _keras.prunable_kernels(model))
