# tfprune — every target does its own set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export TF_CPP_MIN_LOG_LEVEL ?= 2
# pytest workers: 2 on the 2-core CI machine
PYTEST_WORKERS ?= 2

.PHONY: setup data test test-slow test-all demo bench bench-keras3 sweep sanity missing-the-mark clean bazel-test

$(VENV)/.stamp: setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

setup: $(VENV)/.stamp

# Real data that installs offline: Debian's Fashion-MNIST package.
data:
	@if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist; fi

test: setup
	$(PY) -m pytest -q -rs -m "not slow" -n $(PYTEST_WORKERS) -p no:cacheprovider

test-slow: setup data
	$(PY) -m pytest -q -rs -m "slow" -p no:cacheprovider

test-all: test test-slow

# LeNet-300-100 on Fashion-MNIST: dense vs SynFlow 98% vs TF-MOT gradual 98%, one table (docs/training.md).
demo: setup data
	$(PY) examples/demo.py

# Accuracy-vs-sparsity sweep (benchmarks/results/sweep.md). Resumes if interrupted.
SWEEP_DIR ?= benchmarks/out/fashion_mnist
SWEEP_FLAGS ?= --epochs=8 --batch_size=128 --seeds=0,1
sweep: setup data
	nice $(PY) benchmarks/sweep.py --out_dir=$(SWEEP_DIR) $(SWEEP_FLAGS)

# Smoke version of the sweep (a few minutes): 3 sparsities, 1 seed, 1 epoch, data subsets.
bench: setup data
	$(PY) benchmarks/sweep.py --quick --out_dir=benchmarks/out/quick

# Keras 3 on TensorFlow, JAX and PyTorch beside tf_keras: scoring time, masked/dense train step, and
# SynFlow 98% on Fashion-MNIST per backend (BENCHMARKS.md).
bench-keras3: setup data
	$(PY) benchmarks/keras3_backends.py --accuracy --out=benchmarks/results/keras3_backends.md

# "Missing the Mark" (Frankle et al. 2021): the full experiment (resumable; BENCHMARKS.md) and a
# small version that checks the machinery in a few minutes.
MTM_DIR ?= benchmarks/out/missing_the_mark
missing-the-mark: setup data
	nice $(PY) benchmarks/missing_the_mark.py --out_dir=$(MTM_DIR) --seeds=0,1 --epochs=8 --batch_size=128

sanity: setup data
	$(PY) benchmarks/missing_the_mark.py --quick --out_dir=benchmarks/out/missing_the_mark_quick

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache

# Bazel build (Debian's bazel-bootstrap 4.2.3, fully offline; docs/bazel.md).
# Tests run with this Makefile's virtualenv interpreter, $(PY).
BAZEL ?= bazel
bazel-test: setup
	@command -v $(BAZEL) >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bazel-bootstrap; }
	$(BAZEL) test //... --test_tag_filters=-slow --repo_env=TFPRUNE_PYTHON=$(abspath $(PY))
