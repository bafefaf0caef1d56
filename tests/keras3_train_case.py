"""One backend's half of tests/test_train_keras3.py: ``python tests/keras3_train_case.py BACKEND OUT``.

Imports ``examples/train.py`` with ``--keras=3 --backend=BACKEND`` on its command line, so the
binary itself sets ``KERAS_BACKEND`` before anything imports Keras, then runs its ``main`` on
the tiny synthetic dataset once per method (flags parsed again for each run, as
tests/test_train.py does): ``OUT/<name>/`` holds each run's outputs, ``OUT/backend.txt`` the
backend Keras ran on. The test reads the files.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
backend, out = sys.argv[1], sys.argv[2]
sys.argv = ["train.py", "--keras=3", f"--backend={backend}"]

from absl import flags  # noqa: E402

from examples import train  # noqa: E402  (sets KERAS_BACKEND from sys.argv)

TINY = ["--keras=3", f"--backend={backend}", "--dataset=synthetic", "--epochs=1", "--batch_size=64",
        "--max_train=256", "--max_test=64", "--verbose=0"]
#: name → flags of one run (LOTTERY is also run from the command line by the test, killed and resumed).
LOTTERY = ["--method=lottery", "--sparsity=0.75", "--prune_fraction=0.5", "--rewind_step=1", "--epochs=2"]
RUNS = {
    "dense": ["--method=dense"],
    "synflow": ["--method=synflow", "--sparsity=0.9"],
    "synflow_again": ["--method=synflow", "--sparsity=0.9"],
    "snip_shuffle": ["--method=snip", "--sparsity=0.9", "--sanity=shuffle"],
    "magnitude_reinit": ["--method=magnitude", "--sparsity=0.8", "--sanity=reinit"],
    "synflow_early": ["--method=synflow", "--sparsity=0.9", "--early_step=2"],
    "gem_miner": ["--method=gem_miner", "--sparsity=0.9", "--search_epochs=2"],
    "lottery": LOTTERY,
}

if __name__ == "__main__":
    FLAGS = flags.FLAGS
    os.makedirs(out, exist_ok=True)
    for name, argv in RUNS.items():
        FLAGS.unparse_flags()
        FLAGS(["train.py"] + TINY + argv + [f"--out_dir={os.path.join(out, name)}"])
        assert train.main(["train.py"]) == 0, name
    import keras

    with open(os.path.join(out, "backend.txt"), "w") as f:
        f.write(keras.backend.backend())
