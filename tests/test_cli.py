"""The binaries as a user meets them: one-line errors, out_dir rules, Ctrl-C, nothing half-written."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN = [sys.executable, os.path.join(ROOT, "examples", "train.py")]
TINY = ["--dataset=synthetic", "--epochs=1", "--batch_size=64", "--max_train=128", "--max_test=32", "--verbose=0"]


def train(args, **kw):
    return subprocess.run(TRAIN + TINY + list(args), capture_output=True, text=True, timeout=300, cwd=ROOT, **kw)


def one_line_error(proc, *fragments):
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    lines = [l for l in proc.stderr.splitlines() if any(f in l for f in fragments)]
    assert len(lines) == 1 and all(f in lines[0] for f in fragments), proc.stderr[-3000:]


def test_out_dir_that_is_a_file_is_a_flag_error(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    proc = train(["--method=dense", f"--out_dir={target}"])
    one_line_error(proc, "--out_dir=", "is a file")


def test_another_runs_out_dir_is_refused_unless_overwrite(tmp_path):
    out = tmp_path / "run"
    assert train(["--method=random", "--sparsity=0.5", f"--out_dir={out}"]).returncode == 0
    first = json.loads((out / "result.json").read_text())
    same = train(["--method=random", "--sparsity=0.5", f"--out_dir={out}"])  # a rerun of the same flags is fine
    assert same.returncode == 0, same.stderr[-2000:]
    other = train(["--method=magnitude", "--sparsity=0.5", f"--out_dir={out}"])
    one_line_error(other, "error: out_dir=", "holds the result of another run", "--overwrite")
    assert json.loads((out / "result.json").read_text())["finished_at"] >= first["finished_at"]
    assert json.loads((out / "result.json").read_text())["config"]["method"] == "random"  # untouched
    replaced = train(["--method=magnitude", "--sparsity=0.5", f"--out_dir={out}", "--overwrite"])
    assert replaced.returncode == 0, replaced.stderr[-2000:]
    assert json.loads((out / "result.json").read_text())["config"]["method"] == "magnitude"


def test_a_failed_run_leaves_no_empty_out_dir(tmp_path):
    out = tmp_path / "never"
    proc = train(["--method=synflow", "--sparsity=0.5", f"--out_dir={out}", "--dataset_options_not_a_flag=1"])
    assert proc.returncode != 0 and not out.exists()
    # A run that fails inside: the synthetic dataset refuses an input shape of 0 → error after the out_dir was made.
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from tfprune.experiment import Config, run\n"
            "try:\n    run(Config(dataset='synthetic', epochs=1, verbose=0, out_dir=%r, dataset_options={'num_classes': 1}))\n"
            "except ValueError as e:\n    print('refused', e)\n") % (ROOT, str(out))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert "refused" in proc.stdout, proc.stderr[-2000:]
    assert not out.exists()


def test_ctrl_c_exits_cleanly_with_nothing_half_written(tmp_path):
    out = tmp_path / "lottery"
    proc = subprocess.Popen(TRAIN + ["--dataset=synthetic", "--batch_size=32", "--epochs=3", "--verbose=0",
                                     "--method=lottery", "--sparsity=0.99", f"--out_dir={out}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "run" / "level_1").exists():
        time.sleep(0.2)
    assert (out / "run" / "level_1").exists(), "the run did not reach level 1"
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr and "Traceback" not in stderr
    leftovers = [os.path.join(d, f) for d, _, files in os.walk(out) for f in files if ".tmp" in f]
    assert not leftovers
    assert not (out / "result.json").exists()  # (rerunning the command resumes: tests/test_lottery_kill.py)


def test_flags_and_help_come_before_tensorflow_is_imported():
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import tfprune, tfprune.experiment.flags as f\n"
            "f.define_run_flags()\n"
            "print(sorted(m for m in ('tensorflow', 'tf_keras', 'keras') if m in sys.modules))\n") % ROOT
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"
    help_ = subprocess.run(TRAIN + ["--help"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "--method" in help_.stdout and "--rewind_step" in help_.stdout and "Traceback" not in help_.stderr


def test_make_test_says_why_it_skipped():
    makefile = open(os.path.join(ROOT, "Makefile"), encoding="utf-8").read()
    recipe = makefile[makefile.index("\ntest: "):].split("\n")[2]
    assert "pytest" in recipe and " -rs " in recipe  # pytest's summary lists every skip with its reason
    # and the data-dependent skips give the command that installs the data
    assert "reason=f\"Fashion-MNIST files missing; install with `{data.FASHION_MNIST_INSTALL_HINT}`\"" in open(
        os.path.join(ROOT, "tests", "test_data.py"), encoding="utf-8").read()


def test_an_interrupt_that_surfaces_as_another_exception_still_exits_130():
    """Ctrl-C while TensorFlow unwinds a context: its tf_stack asserts ("Concurrent access?")
    and the KeyboardInterrupt becomes an AssertionError. The binary must still say it was
    interrupted and exit 130, not print a traceback and exit 1."""
    code = (
        "import signal\n"
        "from tfprune.experiment.flags import run_binary\n"
        "def main(argv):\n"
        "    try:\n"
        "        signal.raise_signal(signal.SIGINT)\n"
        "    except KeyboardInterrupt:\n"
        "        raise AssertionError('Concurrent access?')\n"
        "run_binary(main)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 130, proc.stderr[-3000:]
    assert "interrupted:" in proc.stderr and "Traceback" not in proc.stderr
