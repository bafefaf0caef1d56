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
