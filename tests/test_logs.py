"""TensorFlow's native start-up lines stay out of the user's output; real errors come through."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOISE_MARKERS = ("I0000", "W0000", "cuInit", "absl::InitializeLog", "oneDNN", "cuda drivers",
                 "To enable the following instructions")


def run(code: str):
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/root")}  # no TF_CPP_MIN_LOG_LEVEL
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env=env)


def test_import_tfprune_prints_no_tensorflow_start_up_lines_and_leaves_the_environment_alone():
    proc = run("import os, tfprune, tensorflow as tf\n"
               "print(tf.reduce_sum(tf.ones(3)).numpy(), os.environ.get('TF_CPP_MIN_LOG_LEVEL'))")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["3.0", "None"]
    assert not [m for m in NOISE_MARKERS if m in proc.stderr], proc.stderr


def test_quiet_native_logs_keeps_real_lines_in_order():
    proc = run(
        "import os, sys\n"
        "from tfprune.logs import quiet_native_logs\n"
        "with quiet_native_logs():\n"
        "    os.write(2, b'I0000 00:00:1795994379.536315    4532 port.cc:153] oneDNN custom operations are on.\\n')\n"
        "    os.write(2, b'E0000 00:00:1795994382.881575    4532 some_op.cc:52] a real error\\n')\n"
        "    print('a Python warning', file=sys.stderr)\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "print('done')\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if "some_op" in l or "Python warning" in l or "oneDNN" in l
             or "XNNPACK" in l]
    assert lines == ["E0000 00:00:1795994382.881575    4532 some_op.cc:52] a real error", "a Python warning"]
