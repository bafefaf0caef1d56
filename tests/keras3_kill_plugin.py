"""A ``--plugin`` for tests/test_train_keras3.py: kills its own process (SIGKILL, no cleanup) right
after the lottery engine writes the first epoch checkpoint of the phase named by
``TFPRUNE_TEST_KILL_PHASE`` (e.g. ``level_2``: level 1 is complete, level 2 half trained).

It registers nothing; it wraps the engine's checkpoint writer, which is what a real kill would
interrupt between (every file is written atomically).
"""
import os
import signal

from tfprune.lottery import _phase

_PHASE = os.environ.get("TFPRUNE_TEST_KILL_PHASE")
_write = _phase._checkpoint


def _checkpoint_then_die(model, path, state):
    _write(model, path, state)
    if _PHASE and os.path.basename(os.path.dirname(path)) == _PHASE:
        os.kill(os.getpid(), signal.SIGKILL)


_phase._checkpoint = _checkpoint_then_die
