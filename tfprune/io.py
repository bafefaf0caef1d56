"""Crash-safe file writes shared by every part of tfprune that keeps state on disk.

A file written with these helpers is either absent or complete: the bytes go to a temporary
file in the same directory, are flushed and fsync'ed, and the temporary file is then renamed
over the target (``os.replace`` is atomic on POSIX file systems and on NTFS). A process killed
at any moment therefore never leaves a truncated ``.npz`` or ``.json`` behind, only possibly a
stray ``.<name>.tmp-*`` file that the next write ignores.

Example:
    >>> from tfprune.io import save_json_atomic, load_json, save_npz_atomic, load_npz
    >>> save_json_atomic("run/metrics.json", {"sparsity": 0.9})      # creates run/ if needed
    >>> load_json("run/metrics.json")
    {'sparsity': 0.9}
    >>> save_npz_atomic("run/mask.npz", {"dense": np.ones((4, 2), np.float32)})
    >>> load_npz("run/mask.npz")["dense"].shape
    (4, 2)
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from typing import Any, Iterator, Mapping

import numpy as np

__all__ = ["atomic_path", "atomic_write", "load_json", "load_npz", "save_json_atomic", "save_npz_atomic",
           "to_jsonable"]


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # e.g. Windows: directories cannot be opened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: "str | os.PathLike") -> Iterator[str]:
    """Yields a temporary path next to ``path``; on success it is renamed to ``path``.

    For writers that want a file name (``model.save``, ``np.savez``). On an exception the
    temporary file is removed and ``path`` is left as it was.

    Example:
        >>> with atomic_path("model.h5") as tmp:
        ...     model.save(tmp)
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    suffix = "".join(s for s in (os.path.splitext(base)[1],) if s)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results are meant to be readable like any file
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        _fsync_dir(directory)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def atomic_write(path: "str | os.PathLike", data: "bytes | str", encoding: str = "utf-8") -> None:
    """Writes ``data`` (bytes, or str encoded with ``encoding``) to ``path`` atomically."""
    if isinstance(data, str):
        data = data.encode(encoding)
    elif not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data: expected bytes or str, got {type(data).__name__}.")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()


def to_jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, tuples and non-finite floats made JSON-friendly.

    NaN and ±inf become the strings ``"nan"``, ``"inf"``, ``"-inf"`` (strict JSON has no such
    numbers); tuples become lists; numpy values become Python numbers or lists.
    """
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    return obj


def save_json_atomic(path: "str | os.PathLike", obj: Any, indent: int = 2) -> None:
    """Writes ``obj`` as JSON (keys in insertion order, see :func:`to_jsonable`) atomically."""
    atomic_write(path, json.dumps(to_jsonable(obj), indent=indent) + "\n")


def load_json(path: "str | os.PathLike") -> Any:
    """Reads a JSON file written by :func:`save_json_atomic`."""
    with open(path, "r", encoding="utf-8") as handle:
        return json.load(handle)


def save_npz_atomic(path: "str | os.PathLike", arrays: Mapping[str, np.ndarray], compressed: bool = False) -> None:
    """Writes ``{name: array}`` as an ``.npz`` file atomically (``np.savez[_compressed]``).

    Names may contain any character except that they must be unique; object arrays are
    refused (they would need pickle to load).
    """
    payload = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == object:
            raise TypeError(f"arrays: {name!r} is an object array; allowed: numeric, bool or string arrays.")
        payload[str(name)] = value
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **payload)
    atomic_write(path, buffer.getvalue())


def load_npz(path: "str | os.PathLike") -> "dict[str, np.ndarray]":
    """Reads every array of an ``.npz`` file into memory (the file is closed on return)."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
