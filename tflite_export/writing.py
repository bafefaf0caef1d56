"""Where the .tflite goes: checks of ``path`` (before any work) and the atomic write.

The file is written through :func:`tfprune.io.atomic_write` (temporary file in the same
directory, fsync, ``os.replace``; mode 0644), so it is either the old file or the complete new
one.
"""

from __future__ import annotations

import os

from tfprune import io as tfprune_io


def check_path(path) -> str:
    """``path`` as a string, if a .tflite can be written there; raises otherwise."""
    if path is None or not str(path):
        raise ValueError(f"path: got {path!r}; allowed: the output .tflite file path.")
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"path: got {path!r}, which is a directory; allowed: a file path such as "
                         f"{os.path.join(path, 'model.tflite')!r}.")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"path: got {path!r}, but directory {directory!r} does not exist; "
                         "allowed: a file path in an existing directory.")
    return path


def write(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (checking ``path`` again: it may have changed while
    the model was converted and verified)."""
    tfprune_io.atomic_write(check_path(path), data)
