"""tfprune.io: atomic writes."""
import json
import os

import numpy as np
import pytest

from tfprune import io


def test_json_and_npz_roundtrip(tmp_path):
    io.save_json_atomic(tmp_path / "a" / "m.json", {"x": np.float32(0.5), "n": np.int64(3), "t": (1, 2),
                                                    "bad": float("nan"), "arr": np.arange(3)})
    assert io.load_json(tmp_path / "a" / "m.json") == {"x": 0.5, "n": 3, "t": [1, 2], "bad": "nan", "arr": [0, 1, 2]}
    arrays = {"dense::0": np.ones((3, 2), np.float32), "w/x::1": np.arange(4)}
    io.save_npz_atomic(tmp_path / "w.npz", arrays)
    back = io.load_npz(tmp_path / "w.npz")
    assert set(back) == set(arrays) and all(np.array_equal(back[k], arrays[k]) for k in arrays)


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "metrics.json"
    io.save_json_atomic(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            with open(tmp, "w") as handle:
                handle.write('{"v": 2, "trunc')
            raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"v": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]
    with pytest.raises(TypeError, match="object array"):
        io.save_npz_atomic(tmp_path / "o.npz", {"o": np.array([{}], dtype=object)})
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]


def test_atomic_write_replaces(tmp_path):
    io.atomic_write(tmp_path / "f.txt", "one")
    io.atomic_write(tmp_path / "f.txt", b"two")
    assert (tmp_path / "f.txt").read_text() == "two"
    with pytest.raises(TypeError, match="data: expected bytes or str"):
        io.atomic_write(tmp_path / "f.txt", 3)


def test_atomic_files_are_readable_like_ordinary_files(tmp_path):
    import stat

    from tfprune.io import save_json_atomic
    path = tmp_path / "r.json"
    save_json_atomic(path, {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


# ----------------------------------------------------------------------------------------------
# issue 11: checksums, damaged files, disk full
# ----------------------------------------------------------------------------------------------

def test_checksummed_files_verify_and_refuse_tampering(tmp_path):
    arrays = {"k::0": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, bool)}
    io.save_npz_atomic(tmp_path / "w.npz", arrays, checksum=True)
    io.save_json_atomic(tmp_path / "m.json", {"acc": 0.5, "rows": [1, 2]}, checksum=True)
    back = io.load_npz(tmp_path / "w.npz")  # the digest is checked and not returned
    assert set(back) == set(arrays) and all(np.array_equal(back[k], arrays[k]) for k in arrays)
    assert io.load_json(tmp_path / "m.json") == {"acc": 0.5, "rows": [1, 2]}
    # a file edited with ordinary tools keeps parsing, but no longer matches its digest
    raw = dict(np.load(tmp_path / "w.npz"))
    raw["k::0"] = raw["k::0"] * 2
    np.savez(tmp_path / "w.npz", **raw)
    with pytest.raises(io.CorruptFileError, match=r"w\.npz.*checksum"):
        io.load_npz(tmp_path / "w.npz")
    data = json.loads((tmp_path / "m.json").read_text())
    data["acc"] = 0.9
    (tmp_path / "m.json").write_text(json.dumps(data))
    with pytest.raises(io.CorruptFileError, match=r"m\.json.*checksum"):
        io.load_json(tmp_path / "m.json")
    # files without a digest (written before checksums, or by other tools) are read as they are
    np.savez(tmp_path / "plain.npz", a=np.ones(2))
    assert set(io.load_npz(tmp_path / "plain.npz")) == {"a"}


@pytest.mark.parametrize("name", ["w.npz", "m.json"])
def test_truncated_file_error_names_the_path(tmp_path, name):
    path = tmp_path / name
    if name.endswith(".npz"):
        io.save_npz_atomic(path, {"a": np.arange(1000, dtype=np.float32)})
    else:
        io.save_json_atomic(path, {"a": list(range(100))})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(io.CorruptFileError) as info:
        (io.load_npz if name.endswith(".npz") else io.load_json)(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert isinstance(info.value, ValueError) and info.value.path == str(path)


@pytest.mark.parametrize("failing", ["fsync", "write"])
def test_disk_full_names_the_file_and_leaves_no_temp(tmp_path, monkeypatch, failing):
    import errno

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    io.save_json_atomic(tmp_path / "old.json", {"v": 1})
    if failing == "fsync":
        monkeypatch.setattr(os, "fsync", full)
    else:  # the bytes do not fit: the write itself fails
        real_open = open

        class Full:
            def __init__(self, handle):
                self.handle = handle

            def write(self, data):
                full()

            def __getattr__(self, name):
                return getattr(self.handle, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.handle.close()

        monkeypatch.setattr(io, "open", lambda f, mode="r", *a, **k: Full(real_open(f, mode, *a, **k))
                            if "w" in mode else real_open(f, mode, *a, **k), raising=False)
    for target, write in [(tmp_path / "old.json", lambda p: io.save_json_atomic(p, {"v": 2})),
                          (tmp_path / "new.npz", lambda p: io.save_npz_atomic(p, {"a": np.ones(3)}))]:
        with pytest.raises(OSError) as info:
            write(target)
        assert info.value.errno == errno.ENOSPC
        assert str(target) in str(info.value) and info.value.filename == str(target)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["old.json"]
    assert io.load_json(tmp_path / "old.json") == {"v": 1}
