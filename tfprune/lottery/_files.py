"""Reading and writing the files of a run directory, every one checked.

Every ``.npz`` and ``.json`` file of a run carries a SHA-256 digest of its content, written in the
same atomic rename as the file (:mod:`tfprune.io`, ``checksum=True``), and a finished phase's
``metrics.json`` (written last) also records the digests of the phase's other files under
``"files"``. Every read here verifies both; a file that does not parse or no longer matches is
refused with one line naming it and saying what to do (for a phase file: delete the phase
directory, the next run retrains that phase). Files without a digest, written before checksums
existed, are read as they are: what is recorded is verified, nothing more.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Mapping

import numpy as np

from tfprune import io
from tfprune.io import CorruptFileError

#: The files of a phase whose digests its ``metrics.json`` records (those that exist).
PHASE_FILES = ("mask.npz", "rewind_weights.npz", "rewind_point.npz", "trained_weights.npz", "sparsity_report.txt")
_RESTART_FILES = ("config.json", "init_weights.npz")


def _holds_run(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, "config.json"))


def advice(path) -> str:
    """What to do about a damaged file of a run, by where it lies."""
    path = os.fspath(path)
    directory, name = os.path.split(path)
    if _holds_run(directory or "."):
        if name in _RESTART_FILES:
            return f"delete the run directory {directory} to start the run over"
        return f"delete {path}, the next run writes it again"
    if _holds_run(os.path.dirname(directory) or "."):
        derived = _derived_phases(os.path.dirname(directory) or ".", os.path.basename(directory))
        if not derived:
            return (f"delete the phase directory {directory} to retrain that phase (the next run does it; the other "
                    "phases are kept)")
        return (f"delete the phase directory {directory} and those derived from it ({', '.join(derived)} in the same "
                "run_dir) to retrain them (the next run does it; the other phases are kept)")
    return "delete it and write it again"


def _derived_phases(run_dir: str, phase: str) -> "list[str]":
    """The phases of ``run_dir`` made from ``phase``'s results: the later levels, and for level 0
    every other phase (pruned from its weights or rewound to its rewind point)."""
    if not phase.startswith("level_") or not phase[6:].isdigit():
        return []
    level = int(phase[6:])
    out = []
    for name in sorted(os.listdir(run_dir)):
        if not os.path.isdir(os.path.join(run_dir, name)) or name == phase:
            continue
        if name.startswith("level_") and name[6:].isdigit():
            if int(name[6:]) > level:
                out.append((int(name[6:]), name))
        elif level == 0:
            out.append((float("inf"), name))
    return [name for _, name in sorted(out)]


def _refused(error: CorruptFileError) -> CorruptFileError:
    return CorruptFileError(error.path, error.problem, advice(error.path))


def read_json(path) -> Any:
    try:
        return io.load_json(path)
    except CorruptFileError as error:
        raise _refused(error) from None


def recorded_digest(path) -> "str | None":
    """The digest of ``path`` recorded in its finished phase's ``metrics.json`` (None: not recorded)."""
    directory, name = os.path.split(os.fspath(path))
    metrics = os.path.join(directory, "metrics.json")
    if name not in PHASE_FILES or not os.path.isfile(metrics) or not _holds_run(os.path.dirname(directory) or "."):
        return None
    files = read_json(metrics).get("files")
    return files.get(name) if isinstance(files, dict) else None


def read_npz(path) -> "dict[str, np.ndarray]":
    """The arrays of a run's ``.npz`` file, verified (its own digest and its phase's record)."""
    try:
        arrays = io.load_npz(path)
    except CorruptFileError as error:
        raise _refused(error) from None
    recorded = recorded_digest(path)
    if recorded is not None and recorded != io.npz_digest(arrays):
        raise CorruptFileError(path, "the content does not match the checksum recorded in its phase's metrics.json "
                                     "(the file was changed after the phase finished)", advice(path))
    return arrays


def write_npz(path, arrays: Mapping[str, np.ndarray], compressed: bool = False) -> None:
    io.save_npz_atomic(path, arrays, compressed=compressed, checksum=True)


def write_json(path, obj) -> None:
    io.save_json_atomic(path, obj, checksum=True)


def phase_digests(directory: str) -> "dict[str, str]":
    """``{file: digest}`` of the phase files in ``directory`` (each read back and verified)."""
    out = {}
    for name in PHASE_FILES:
        path = os.path.join(directory, name)
        if not os.path.isfile(path):
            continue
        if name.endswith(".npz"):
            out[name] = io.npz_digest(read_npz(path))
        else:
            with open(path, "rb") as handle:
                out[name] = hashlib.sha256(handle.read()).hexdigest()
    return out
