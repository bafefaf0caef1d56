"""Lottery, early-pruning and sanity-check runs under a tf.distribute strategy, one per process
(run by tests/test_lottery_distributed.py, which compares the files they write).

    python tests/distributed_checks.py mirrored OUT [lottery early sanity]
                                                        2 logical CPU replicas and one device, same process
    python tests/distributed_checks.py single RUN_DIR   the lottery run on one device
    python tests/distributed_checks.py worker RUN_DIR   one worker of a MultiWorkerMirroredStrategy
                                                        (TF_CONFIG set by the caller)

Every process also writes, beside the run directories, what its replicas held at the end of
each ``fit`` (``<name>.replicas.npz``: every variable of every local replica), so the test can
check that the replicas and the workers agree, not only the chief's files.
Environment: ``LEVELS`` (default 2), ``EPOCH_SLEEP`` seconds after each epoch (to be killed in),
``NO_SEED`` (train with ``seed=None``).
"""
import json
import os
import sys
import time

import numpy as np
import tensorflow as tf

MODE = sys.argv[1]
if MODE == "mirrored":  # before TensorFlow initialises
    from tfprune.lottery import distribute

    DEVICES = distribute.split_cpu(2)

import tf_keras as keras  # noqa: E402

from tfprune import lottery  # noqa: E402
from tfprune.lottery import distribute  # noqa: E402
from tfprune.spec import TrainingSpec  # noqa: E402

LEVELS = int(os.environ.get("LEVELS", "2"))


def make_data(seed, n):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, ((x[:, 0] - x[:, 1] + 0.5 * x[:, 2]) > 0).astype("int32")


def build():
    return keras.Sequential([keras.Input((8,)), keras.layers.Dense(24, activation="relu", name="hidden"),
                             keras.layers.Dense(2, name="output")])


class Replicas(keras.callbacks.Callback):
    """Saves every variable of every local replica at the end of each ``fit`` (the last one wins)."""

    def __init__(self, path, strategy):
        super().__init__()
        self.path, self.strategy = path, strategy

    def on_train_end(self, logs=None):
        arrays = {}
        for variable in self.model.variables:
            values = (self.strategy.experimental_local_results(variable) if self.strategy is not None
                      else [variable])
            for index, value in enumerate(values):
                arrays[f"{variable.name}@{index}"] = np.asarray(value.numpy())
        np.savez(self.path + ".tmp.npz", **arrays)
        os.replace(self.path + ".tmp.npz", self.path)


class Slow(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        time.sleep(float(os.environ.get("EPOCH_SLEEP", "0")))


def training(strategy, replicas_path):
    seed = None if os.environ.get("NO_SEED") else 3
    return TrainingSpec(epochs=2, batch_size=32, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        optimizer={"class_name": "Adam", "config": {"learning_rate": 0.02}}, seed=seed,
                        deterministic=True, verbose=0, distribute=strategy,
                        callbacks=[Replicas(replicas_path, strategy), Slow()])


def run_lottery(run_dir, strategy):
    spec = training(strategy, run_dir + f".{distribute.task_name(strategy)}.replicas.npz")
    return lottery.LotteryTicket(build, make_data(0, 256), make_data(1, 128), run_dir=run_dir, levels=LEVELS,
                                 rewind_step=2, training=spec).run()


def run_early(run_dir, strategy):
    spec = training(strategy, run_dir + ".replicas.npz")
    return lottery.prune_early(build, make_data(0, 256), make_data(1, 128), run_dir=run_dir, method="magnitude",
                               sparsity=0.6, prune_step=3, training=spec)


def run_sanity(run_dir, strategy):
    spec = training(strategy, run_dir + ".replicas.npz")
    return lottery.sanity_checks(build, make_data(0, 256), make_data(1, 128), run_dir=run_dir, method="snip",
                                 sparsity=0.6, variants=["shuffle", "reinit"], training=spec)


if __name__ == "__main__":
    target = sys.argv[2]
    if MODE == "mirrored":
        strategy = distribute.make_strategy("mirrored", cpu_replicas=2)
        assert strategy.num_replicas_in_sync == 2 and len(DEVICES) == 2, DEVICES
        report = {}
        chosen_runs = sys.argv[3:] or ["lottery", "early", "sanity"]
        runs = {"lottery": run_lottery, "early": run_early, "sanity": run_sanity}
        for name, fn in ((n, runs[n]) for n in chosen_runs):
            for kind, chosen in (("mirrored", strategy), ("single", None)):
                t0 = time.perf_counter()
                fn(os.path.join(target, f"{name}_{kind}"), chosen)
                report[f"{name}_{kind}_s"] = time.perf_counter() - t0
        with open(os.path.join(target, "report.json"), "w") as handle:
            json.dump(report, handle)
    elif MODE == "single":
        run_lottery(target, None)
    elif MODE == "worker":
        strategy = distribute.make_strategy("multi_worker")
        run_lottery(target, strategy)
        print(json.dumps({"task": distribute.task_name(strategy), "chief": distribute.is_chief(strategy)}))
    else:
        raise SystemExit(f"mode: got {MODE!r}; allowed: mirrored, single, worker")
