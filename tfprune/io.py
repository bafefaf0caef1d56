"""Crash-safe file writes shared by every part of tfprune that keeps state on disk.

A file written with these helpers is either absent or complete: the bytes go to a temporary
file in the same directory, are flushed and fsync'ed, and the temporary file is then renamed
over the target (``os.replace`` is atomic on POSIX file systems and on NTFS). A process killed
at any moment therefore never leaves a truncated ``.npz`` or ``.json`` behind, only possibly a
stray ``.<name>.tmp-*`` file that the next write ignores. A write that fails (disk full, read-only
media) raises an ``OSError`` naming the target file and removes its temporary file.

With ``checksum=True`` a file carries a SHA-256 digest of its content (the ``.npz`` entry or JSON
key :data:`DIGEST_KEY`), written in the same atomic rename. The loaders verify the digest when
there is one and do not return it; a file that no longer matches it, or that does not parse,
raises :class:`CorruptFileError` naming the file.

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
import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from typing import Any, Iterator, Mapping

import numpy as np

__all__ = ["DIGEST_KEY", "CorruptFileError", "atomic_path", "atomic_write", "json_digest", "load_json", "load_npz",
           "npz_digest", "save_json_atomic", "save_npz_atomic", "to_jsonable"]

#: The ``.npz`` entry / JSON key holding a file's SHA-256 content digest (``checksum=True``).
DIGEST_KEY = "__tfprune_sha256__"


class CorruptFileError(ValueError):
    """A file that does not parse or no longer matches its recorded checksum; ``path`` is the file."""

    def __init__(self, path, problem: str, advice: str = "delete it and write it again"):
        self.path, self.problem, self.advice = os.fspath(path), problem, advice
        super().__init__(f"{self.path}: {problem}; {advice}.")


def _write_error(error: OSError, path: str) -> OSError:
    """``error`` as an ``OSError`` of the same errno that names the file being written."""
    if getattr(error, "filename", None) == path:
        return error
    reason = error.strerror or str(error) or type(error).__name__
    return OSError(error.errno, f"{reason} (while writing this file; a previous version of it, if any, is "
                                "unchanged)", path)


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
    base = os.path.basename(path)
    suffix = "".join(s for s in (os.path.splitext(base)[1],) if s)
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{base}.tmp-", suffix=suffix, dir=directory)
    except OSError as error:
        raise _write_error(error, path) from error
    try:
        os.close(fd)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600 files; results are meant to be readable like any file
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(error, OSError):
            raise _write_error(error, path) from error
        raise
    _fsync_dir(directory)


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


def json_digest(obj: Any) -> str:
    """SHA-256 of a JSON value (after :func:`to_jsonable`), independent of indentation and key order."""
    text = json.dumps(to_jsonable(obj), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def npz_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of ``{name: array}``: names, dtypes, shapes and values (not the zip container)."""
    digest = hashlib.sha256()
    for name in sorted(str(n) for n in arrays if n != DIGEST_KEY):
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}\0{value.dtype.str}\0{value.shape}\0".encode("utf-8"))
        digest.update(memoryview(value).cast("B") if value.size else b"")
    return digest.hexdigest()


def save_json_atomic(path: "str | os.PathLike", obj: Any, indent: int = 2, checksum: bool = False) -> None:
    """Writes ``obj`` as JSON (keys in insertion order, see :func:`to_jsonable`) atomically.

    ``checksum=True`` (``obj`` a dict) adds the key :data:`DIGEST_KEY`, checked by :func:`load_json`.
    """
    obj = to_jsonable(obj)
    if checksum:
        if not isinstance(obj, dict):
            raise TypeError(f"obj: a checksum needs a dict (the digest is one of its keys), got {type(obj).__name__}.")
        obj = {k: v for k, v in obj.items() if k != DIGEST_KEY}
        obj[DIGEST_KEY] = json_digest(obj)
    atomic_write(path, json.dumps(obj, indent=indent) + "\n")


def _damaged(path, error: Exception) -> CorruptFileError:
    return CorruptFileError(path, f"damaged or truncated file, it does not parse ({type(error).__name__}: "
                                  f"{str(error).splitlines()[0] if str(error) else 'no detail'})")


def _mismatch(path) -> CorruptFileError:
    return CorruptFileError(path, "the content does not match its checksum (the file was changed after it was "
                                  "written)")


def load_json(path: "str | os.PathLike") -> Any:
    """Reads a JSON file written by :func:`save_json_atomic` (checking its digest if it has one)."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            obj = json.load(handle)
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError
        raise _damaged(path, error) from None
    if isinstance(obj, dict) and DIGEST_KEY in obj:
        recorded = obj.pop(DIGEST_KEY)
        if recorded != json_digest(obj):
            raise _mismatch(path)
    return obj


def save_npz_atomic(path: "str | os.PathLike", arrays: Mapping[str, np.ndarray], compressed: bool = False,
                    checksum: bool = False) -> None:
    """Writes ``{name: array}`` as an ``.npz`` file atomically (``np.savez[_compressed]``).

    Names may contain any character except that they must be unique; object arrays are
    refused (they would need pickle to load). ``checksum=True`` adds the entry
    :data:`DIGEST_KEY` (:func:`npz_digest`), checked by :func:`load_npz`.
    """
    payload = {}
    for name, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == object:
            raise TypeError(f"arrays: {name!r} is an object array; allowed: numeric, bool or string arrays.")
        if str(name) != DIGEST_KEY:
            payload[str(name)] = value
    if checksum:
        payload[DIGEST_KEY] = np.asarray(npz_digest(payload))
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, **payload)
    atomic_write(path, buffer.getvalue())


def load_npz(path: "str | os.PathLike") -> "dict[str, np.ndarray]":
    """Reads every array of an ``.npz`` file into memory (the file is closed on return), checking
    its digest if it has one (the digest entry is not returned)."""
    try:
        loaded = np.load(os.fspath(path), allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("an .npy array, not an .npz archive")
        with loaded as data:
            arrays = {name: data[name] for name in data.files}
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise _damaged(path, error) from None
    if DIGEST_KEY in arrays:
        recorded = arrays.pop(DIGEST_KEY)
        if str(recorded) != npz_digest(arrays):
            raise _mismatch(path)
    return arrays
