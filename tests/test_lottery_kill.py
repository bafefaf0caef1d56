"""A lottery run in a subprocess killed with SIGKILL in the middle of a level, then resumed,
ends identical to an uninterrupted run (masks, weights, metrics)."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tfprune.io import load_json, load_npz

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import tf_keras as keras
    from tfprune import lottery
    from tfprune.spec import TrainingSpec

    def make_data(seed, n):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=(n, 8)).astype("float32")
        return x, (x[:, 0] - x[:, 1] > 0).astype("int32")

    def build():
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu", name="hidden"),
                                 keras.layers.Dropout(0.2, name="drop"), keras.layers.Dense(2, name="output")])

    class Slow(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            time.sleep(float(os.environ.get("EPOCH_SLEEP", "0")))

    def run(run_dir, callbacks=()):
        training = TrainingSpec(
            epochs=3, batch_size=32, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            optimizer={"class_name": "Adam", "config": {"learning_rate": 0.01}}, seed=5, deterministic=True,
            callbacks=list(callbacks))
        return lottery.LotteryTicket(build, make_data(0, 160), make_data(1, 64), run_dir=run_dir, levels=3,
                                     rewind_step=2, training=training).run()

    if __name__ == "__main__":
        run(sys.argv[1], [Slow()])
""")


@pytest.mark.slow
def test_sigkill_mid_level_then_resume_is_identical(tmp_path):
    script = tmp_path / "lottery_job.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), EPOCH_SLEEP="0.4", TF_CPP_MIN_LOG_LEVEL="3")
    killed_dir = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(killed_dir)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    checkpoint = killed_dir / "level_1" / "checkpoint.npz"
    deadline = time.time() + 240
    while not checkpoint.exists():
        assert proc.poll() is None, "the job ended before it could be killed"
        assert time.time() < deadline, "no checkpoint in level_1 after 240 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed_dir / "level_1" / "metrics.json").exists()  # really killed mid-level
    assert (killed_dir / ".lock").exists()  # a dead process's lock, taken over below

    sys.path.insert(0, str(tmp_path))
    try:
        import lottery_job
    finally:
        sys.path.remove(str(tmp_path))
    resumed = lottery_job.run(str(killed_dir))
    reference = lottery_job.run(str(tmp_path / "reference"))
    assert [r.val_accuracy for r in resumed] == [r.val_accuracy for r in reference]
    for level in range(4):
        a, b = killed_dir / f"level_{level}", tmp_path / "reference" / f"level_{level}"
        ma, mb = load_json(a / "metrics.json"), load_json(b / "metrics.json")
        ma.pop("wall_time_s"), mb.pop("wall_time_s")
        assert ma == mb, level
        for name in ("mask.npz", "rewind_weights.npz", "trained_weights.npz"):
            fa, fb = load_npz(a / name), load_npz(b / name)
            assert all(np.array_equal(fa[k], fb[k]) for k in fa) and set(fa) == set(fb), (level, name)
