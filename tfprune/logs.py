"""TensorFlow's native start-up log lines, kept out of the user's output (errors never are).

TensorFlow's C++ runtime prints INFO/WARNING lines at import and device initialisation
(``oneDNN custom operations are on``, ``Could not find cuda drivers``, ``failed call to cuInit``
on a machine without a GPU, CPU feature notes) and LiteRT prints ``Created TensorFlow Lite
XNNPACK delegate``. The ones printed before absl logging is initialised ignore
``TF_CPP_MIN_LOG_LEVEL``, so they are filtered where they are printed:

* :func:`quiet_tensorflow_import` (installed by ``import tfprune`` when TensorFlow is not imported
  yet) makes the first ``import tensorflow`` of the process, whoever does it, run with
  ``TF_CPP_MIN_LOG_LEVEL=2`` for the import only (TensorFlow reads it once; the environment is
  restored afterwards) and with the native stderr filtered by :func:`quiet_native_logs`, devices
  initialised inside the filter. It changes nothing else about the import.
* :func:`quiet_native_logs` runs a block with file descriptor 2 captured, then writes back every
  captured line except the known noise above (:data:`NOISE`): real errors, Python warnings and
  tracebacks come through, in their order.

Example:
    >>> import sys
    >>> with quiet_native_logs():
    ...     print("kept", file=sys.stderr)
    ...     print("I0000 00:00:1.5 42 port.cc:153] oneDNN custom operations are on.", file=sys.stderr)
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

from tfprune._import_hook import ImportHook, install

__all__ = ["NOISE", "quiet_native_logs", "quiet_tensorflow_import"]

#: Lines dropped by :func:`quiet_native_logs`: native INFO/WARNING records (``I``/``W`` + date),
#: absl's pre-initialisation banner, TensorFlow's CPU-instructions note, the cuInit error of a
#: machine without a GPU, and LiteRT's delegate notice.
NOISE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] .*"
    r"|E\d{4} \d\d:\d\d:\d+\.\d+ +\d+ cuda_\w+\.cc:\d+\] failed call to cuInit.*"
    r"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags\."
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)\s*$")


@contextlib.contextmanager
def quiet_native_logs():
    """Runs the block with stderr (fd 2, native code included) captured; afterwards re-emits
    every captured line that is not :data:`NOISE`."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (some notebooks): nothing to filter
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode("utf-8", "replace").splitlines(keepends=True)
                    if not NOISE.match(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


class _QuietTensorFlow(ImportHook):
    """Runs the real ``import tensorflow`` quietly (see :mod:`tfprune._import_hook`: a spec asked
    for, as Keras 3 does to see whether TensorFlow is installed, imports nothing)."""

    name = "tensorflow"

    def load(self, module):
        previous = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        try:
            with quiet_native_logs():
                self._loader.exec_module(module)
                module.config.list_physical_devices()
        finally:
            if previous is None:
                os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
            else:
                os.environ["TF_CPP_MIN_LOG_LEVEL"] = previous


def quiet_tensorflow_import() -> None:
    """Makes the process's first ``import tensorflow`` quiet (see the module docstring); a no-op once
    TensorFlow is imported (nothing is left to hide) or the hook is already installed."""
    install(_QuietTensorFlow)
