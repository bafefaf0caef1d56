"""The files of a lottery run: checksums, damaged and truncated files, stale summaries, old runs
without checksums, read-only copies of finished runs (issue 11, item 5)."""
import builtins
import errno
import json
import os
import shutil
import stat

import numpy as np
import pytest
import tf_keras as keras

from lottery_helpers import FailAt, Interrupt
from tfprune import lottery
from tfprune.io import DIGEST_KEY, CorruptFileError, load_json, load_npz
from tfprune.spec import TrainingSpec

N, BATCH = 96, 32  # 3 steps per epoch


def make_data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6)).astype("float32")
    return x, (x[:, 0] - x[:, 2] > 0).astype("int32")


def build():
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(10, activation="relu", name="a"),
                             keras.layers.Dense(2, name="out")])


def ticket(run_dir, callbacks=(), levels=1):
    training = TrainingSpec(epochs=2, batch_size=BATCH, seed=3, deterministic=True, verbose=0,
                            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                            optimizer={"class_name": "Adam", "config": {"learning_rate": 0.01}},
                            callbacks=list(callbacks))
    return lottery.LotteryTicket(build, make_data(), make_data(1, 48), training=training, run_dir=str(run_dir),
                                 levels=levels, rewind_step=2)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("files") / "run"
    results = ticket(run_dir).run()
    return run_dir, results


@pytest.fixture
def copy(finished, tmp_path):
    run_dir = tmp_path / "copy"
    shutil.copytree(finished[0], run_dir)
    return run_dir


def resave_npz(path, change, keep_digest=True):
    """Rewrites an .npz with ordinary numpy, as a user or a tool would."""
    arrays = dict(np.load(path))
    if not keep_digest:
        arrays.pop(DIGEST_KEY, None)
    change(arrays)
    np.savez(path, **arrays)


def assert_refused(info, path):
    message = str(info.value)
    assert str(path) in message and "\n" not in message, message
    assert "delete" in message


# ----------------------------------------------------------------------------------------------
# files that still parse but were changed
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("keep_digest", [True, False])
def test_inverted_mask_is_refused(copy, keep_digest):
    path = copy / "level_1" / "mask.npz"

    def invert(arrays):
        arrays["a"] = 1 - arrays["a"]

    resave_npz(path, invert, keep_digest)
    lt = ticket(copy)
    for read in (lambda: lt.masks(1), lambda: lt.model(1)):
        with pytest.raises(CorruptFileError) as info:
            read()
        assert_refused(info, path)
        assert str(copy / "level_1") in str(info.value)  # the phase directory to delete


@pytest.mark.parametrize("keep_digest", [True, False])
def test_scaled_rewind_point_is_refused_on_resume(tmp_path, keep_digest):
    run_dir = tmp_path / "r"
    # epoch ends: level 0 has 3 (split at the rewind step 2), level 1's first is #4
    with pytest.raises(Interrupt):
        ticket(run_dir, [FailAt(4)]).run()
    assert (run_dir / "level_0" / "metrics.json").exists() and not (run_dir / "level_1" / "checkpoint.npz").exists()
    path = run_dir / "level_0" / "rewind_point.npz"

    def scale(arrays):
        arrays["w/a::0"] = arrays["w/a::0"] * 1.5

    resave_npz(path, scale, keep_digest)
    with pytest.raises(CorruptFileError) as info:
        ticket(run_dir).run()
    assert_refused(info, path)
    assert not (run_dir / ".lock").exists()


def test_edited_metrics_are_refused(copy):
    path = copy / "level_0" / "metrics.json"
    data = json.loads(path.read_text())
    data["val_accuracy"] = 0.99
    path.write_text(json.dumps(data, indent=2))
    for read in (lambda: lottery.load_results(copy), lambda: ticket(copy).run()):
        with pytest.raises(CorruptFileError) as info:
            read()
        assert_refused(info, path)


@pytest.mark.parametrize("name", ["level_1/trained_weights.npz", "level_1/metrics.json", "level_1/mask.npz"])
def test_truncated_files_name_the_path(copy, name):
    path = copy / name
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    lt = ticket(copy)
    with pytest.raises(CorruptFileError) as info:
        lt.model(1) if name.endswith(".npz") else lottery.load_results(copy)
    assert_refused(info, path)


def test_every_run_file_carries_a_checksum(finished):
    run_dir, _ = finished
    for path in run_dir.rglob("*.npz"):
        assert DIGEST_KEY in np.load(path).files, path
    for path in run_dir.rglob("*.json"):
        assert DIGEST_KEY in json.loads(path.read_text()), path
    # a finished phase also records the digests of its other files
    files = load_json(run_dir / "level_1" / "metrics.json")["files"]
    assert {"mask.npz", "rewind_weights.npz", "trained_weights.npz", "sparsity_report.txt"} <= set(files)


# ----------------------------------------------------------------------------------------------
# summary.json
# ----------------------------------------------------------------------------------------------

def test_stale_summary_is_rewritten_on_resume_and_not_trusted(finished, tmp_path, monkeypatch):
    run_dir = tmp_path / "stale"
    from tfprune.lottery._engine import Engine
    real = Engine.write_summary

    def killed_before_the_last_summary(self, rows, complete, extra=None):
        if complete:
            raise Interrupt("killed between the last metrics.json and summary.json")
        return real(self, rows, complete, extra)

    monkeypatch.setattr(Engine, "write_summary", killed_before_the_last_summary)
    with pytest.raises(Interrupt):
        ticket(run_dir).run()
    monkeypatch.undo()
    assert (run_dir / "level_1" / "metrics.json").exists()
    summary = load_json(run_dir / "summary.json")
    assert not summary["complete"] and len(summary["rows"]) == 1  # stale
    assert [r.name for r in lottery.load_results(run_dir)] == ["level_0", "level_1"]
    results = ticket(run_dir).run()
    assert [r.name for r in results] == ["level_0", "level_1"]
    summary = load_json(run_dir / "summary.json")
    assert summary["complete"] and [r["name"] for r in summary["rows"]] == ["level_0", "level_1"]
    reference = load_json(finished[0] / "summary.json")
    untimed = lambda s: [{k: v for k, v in row.items() if k != "wall_time_s"} for row in s["rows"]]  # noqa: E731
    assert untimed(summary) == untimed(reference)


def test_load_results_does_not_trust_a_stale_sanity_summary(tmp_path):
    training = TrainingSpec(steps=2, batch_size=BATCH, seed=0, verbose=0,
                            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    run_dir = tmp_path / "sanity"
    lottery.sanity_checks(build, make_data(), make_data(1, 48), training=training, run_dir=str(run_dir),
                          method="magnitude", sparsity=0.5, variants=["unmodified", "shuffle"])
    summary = json.loads((run_dir / "summary.json").read_text())
    summary["rows"] = summary["rows"][:2]  # as written before 'shuffle' finished
    summary["complete"] = False
    summary.pop(DIGEST_KEY, None)
    (run_dir / "summary.json").write_text(json.dumps(summary))
    assert [r.name for r in lottery.load_results(run_dir)] == ["level_0", "unmodified", "shuffle"]


# ----------------------------------------------------------------------------------------------
# runs made before checksums; read-only copies
# ----------------------------------------------------------------------------------------------

def strip_checksums(run_dir):
    """Turns a run into one written before checksums existed."""
    for path in run_dir.rglob("*.npz"):
        arrays = dict(np.load(path))
        arrays.pop(DIGEST_KEY, None)
        np.savez(path, **arrays)
    for path in run_dir.rglob("*.json"):
        data = json.loads(path.read_text())
        data.pop(DIGEST_KEY, None)
        data.pop("files", None)
        path.write_text(json.dumps(data, indent=2))


def test_run_without_checksums_still_resumes_identically(finished, tmp_path):
    run_dir = tmp_path / "old"
    with pytest.raises(Interrupt):
        ticket(run_dir, [FailAt(5)]).run()  # level 1's second epoch end: after its first checkpoint
    assert (run_dir / "level_1" / "checkpoint.npz").exists()
    strip_checksums(run_dir)
    results = ticket(run_dir).run()
    reference = finished[1]
    assert [r.val_accuracy for r in results] == [r.val_accuracy for r in reference]
    for level in range(2):
        for name in ("mask.npz", "rewind_weights.npz", "trained_weights.npz"):
            a, b = load_npz(run_dir / f"level_{level}" / name), load_npz(finished[0] / f"level_{level}" / name)
            assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a), (level, name)


@pytest.fixture
def read_only(copy, monkeypatch):
    """``copy`` on read-only media: chmod -R a-w, and (root ignores modes) every write refused with EROFS."""
    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    real_os_open, real_open = os.open, builtins.open

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse()
        return real_os_open(path, flags, *args, **kwargs)

    def open_(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+"):
            refuse()
        return real_open(file, mode, *args, **kwargs)

    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(builtins, "open", open_)
    for name in ("mkdir", "remove", "unlink", "replace", "rename", "rmdir"):
        monkeypatch.setattr(os, name, refuse)
    yield copy
    monkeypatch.undo()
    for path in [copy, *copy.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def test_finished_run_is_readable_on_read_only_media(finished, read_only):
    expected = [r.metrics for r in finished[1]]
    lt = ticket(read_only)
    assert [r.metrics for r in lt.run()] == expected
    assert [r.metrics for r in lottery.load_results(read_only)] == expected
    assert [r.metrics for r in lt.results()] == expected
    model = lt.model(1)
    assert np.array_equal(model.layers[0].layer.kernel.numpy(),
                          load_npz(finished[0] / "level_1" / "trained_weights.npz")["a::0"])


def test_read_only_run_with_a_stale_summary_still_returns_results(finished, copy, monkeypatch):
    summary = json.loads((copy / "summary.json").read_text())
    summary["rows"], summary["complete"] = summary["rows"][:1], False
    summary.pop(DIGEST_KEY, None)
    (copy / "summary.json").write_text(json.dumps(summary))

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    from tfprune.lottery import _rundir
    monkeypatch.setattr(_rundir.RunLock, "acquire", refuse)
    results = ticket(copy).run()
    assert [r.metrics for r in results] == [r.metrics for r in finished[1]]


def test_unfinished_run_on_read_only_media_says_it_needs_a_writable_run_dir(tmp_path, monkeypatch):
    run_dir = tmp_path / "partial"
    with pytest.raises(Interrupt):
        ticket(run_dir, [FailAt(4)]).run()
    real_os_open = os.open

    def os_open(path, flags, *args, **kwargs):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", path)
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    with pytest.raises(OSError) as info:
        ticket(run_dir).run()
    message = str(info.value)
    assert info.value.errno == errno.EROFS and "\n" not in message
    assert f"run_dir: {str(run_dir)!r}" in message and "not finished" in message and "writable" in message


def test_advice_for_a_damaged_phase_names_the_phases_derived_from_it(copy):
    path = copy / "level_0" / "trained_weights.npz"
    resave_npz(path, lambda arrays: arrays.update({"a::0": arrays["a::0"] + 1}), keep_digest=False)
    with pytest.raises(CorruptFileError) as info:
        ticket(copy).model(0)
    message = str(info.value)
    assert str(copy / "level_0") in message and "level_1" in message  # level 1 was pruned from level 0
