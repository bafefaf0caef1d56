"""TensorBoard summaries of runs: per-layer density and global sparsity per epoch, test metrics."""
from __future__ import annotations

import os

import tensorflow as tf

from tfprune._keras import keras
from tfprune.report import sparsity_report


class DensitySummaries(keras.callbacks.Callback):
    """Writes ``density/<layer>`` and ``sparsity/global`` scalars at every epoch end (and before
    training), for any model: dense, tfprune-wrapped or TF-MOT-wrapped."""

    def __init__(self, log_dir: str):
        super().__init__()
        self.writer = tf.summary.create_file_writer(os.path.join(log_dir, "sparsity"))

    def _write(self, step: int):
        report = sparsity_report(self.model, check_paths=False)
        with self.writer.as_default():
            tf.summary.scalar("sparsity/global", report.sparsity, step=step)
            for row in report.rows:
                tf.summary.scalar(f"density/{row.name}", row.density, step=step)
        self.writer.flush()

    def on_train_begin(self, logs=None):
        self._write(0)

    def on_epoch_end(self, epoch, logs=None):
        self._write(epoch + 1)


class ResultSummaries:
    """``density/<layer>``, ``sparsity/global`` and ``test/accuracy``/``test/loss`` scalars of
    result dicts, one step each (runs on the lottery engine: one step per lottery level)."""

    def __init__(self, log_dir: str):
        self.sparsity = tf.summary.create_file_writer(os.path.join(log_dir, "sparsity"))
        self.test = tf.summary.create_file_writer(os.path.join(log_dir, "test"))

    def write(self, result: dict, step: int) -> None:
        with self.sparsity.as_default():
            tf.summary.scalar("sparsity/global", result["sparsity"], step=step)
            for row in result["report"]["layers"]:
                tf.summary.scalar(f"density/{row['name']}", row["density"], step=step)
        with self.test.as_default():
            tf.summary.scalar("test/accuracy", result["test_accuracy"], step=step)
            tf.summary.scalar("test/loss", result["test_loss"], step=step)
        self.sparsity.flush()
        self.test.flush()


def write_test_metrics(log_dir: str, accuracy, loss, step: int) -> None:
    with tf.summary.create_file_writer(os.path.join(log_dir, "test")).as_default():
        tf.summary.scalar("test/accuracy", accuracy, step=step)
        tf.summary.scalar("test/loss", loss, step=step)
