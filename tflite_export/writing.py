"""Where the .tflite goes: checks of ``path`` (before any work) and the atomic write.

The file is written through :func:`tfprune.io.atomic_write` (temporary file in the same
directory, fsync, ``os.replace``; mode 0644), so it is either the old file or the complete new
one.  An existing read-only file is replaced only with ``overwrite=True``.  A failed write
(disk full, a directory this process may not write to) raises the same ``OSError`` subclass
with the target file named; the temporary file is removed.
"""

from __future__ import annotations

import os
import stat

from tfprune import io as tfprune_io


def check_path(path, overwrite: bool = False) -> str:
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
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"path: got {path!r}, but directory {directory!r} is not writable by "
                         "this process; allowed: a file path in a writable directory.")
    if not overwrite and _is_read_only(path):
        raise FileExistsError(f"path: got {path!r}, an existing read-only file; pass "
                              "overwrite=True to replace it, or choose another path.")
    return path


def _is_read_only(path: str) -> bool:
    """An existing file that nobody may write to, or that this process may not write to."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    return not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK)


def write(path: str, data: bytes, overwrite: bool = False) -> None:
    """Writes ``data`` to ``path`` atomically (checking ``path`` again: it may have appeared or
    changed while the model was converted and verified)."""
    path = check_path(path, overwrite)
    try:
        tfprune_io.atomic_write(path, data)
    except OSError as e:
        error = _naming(e, path)
    else:
        return
    raise error  # outside the except block: one error, not two chained ones


def _naming(e: OSError, path: str) -> OSError:
    """``e`` as the same OSError subclass and errno, with a one-line message naming ``path``."""
    reason = e.strerror or " ".join(str(e).split()) or type(e).__name__
    existed = os.path.exists(path)
    error = type(e)(f"path: could not write {path!r}: {reason}"
                    + (f" [errno {e.errno}]" if e.errno else "")
                    + ("; the existing file is unchanged" if existed else "; nothing was written")
                    + " and no partial file was left")
    error.errno = e.errno
    return error
