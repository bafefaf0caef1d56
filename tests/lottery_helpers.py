"""Helpers shared by the lottery tests: an in-process 'kill' in the middle of a level."""
import tf_keras as keras


class Interrupt(Exception):
    pass


class FailAt(keras.callbacks.Callback):
    """Raises :class:`Interrupt` at the n-th epoch end seen (an in-process kill mid-level)."""

    def __init__(self, n):
        super().__init__()
        self.n, self.count = n, 0

    def on_epoch_end(self, epoch, logs=None):
        self.count += 1
        if self.count == self.n:
            raise Interrupt(f"killed at epoch end #{self.n}")
