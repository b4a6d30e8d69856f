# The README's commands. Every target first sets up .venv (`make install`): idempotent, and
# nothing is rebuilt when nothing it depends on changed.
#
#   make demo      run the main demo (installs its data with `make data` first)
#   make test      the test suite (fast: no `slow` tests); make test-all runs everything
#   make bench     the kernel benchmarks; prints ratios and writes benchmarks/results/
#   make lint      ruff
#   make data      the Debian data packages (Fashion-MNIST, OpenCV's digits) when missing
#   make check-cpu-torch   build and smoke-test against a CPU-only torch in a throwaway venv

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c  # a failing pip or pytest fails the target even through a pipe
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check --quiet
# What a change of requires rebuilding the extension (Python edits show at once: editable install).
NATIVE_INPUTS := CMakeLists.txt pyproject.toml $(shell find csrc cmake -type f 2>/dev/null)

TEMPLATE := examples/plugin-template

.PHONY: install demo test test-all bench lint data check-cpu-torch clean

install: $(VENV)/.installed

$(VENV)/.deps: requirements/torch.txt requirements/dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -r requirements/torch.txt -r requirements/dev.txt 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	touch $@

# --no-build-isolation: compile against the torch in .venv, not a freshly downloaded one.
$(VENV)/.installed: $(VENV)/.deps $(NATIVE_INPUTS)
	$(PIP) install --no-build-isolation --no-deps --editable . 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	$(PY) -c "import vision_kernels as vk; info = vk.build_info()['native']; assert info['loaded'], info['reason']; print('vision_kernels._C: CPU', info['cpu_capability'], '| CUDA kernels:', info['cuda_architectures'] or 'no')"
	touch $@

# The plugin template, installed like a third-party family: its tests prove the entry-point path.
$(VENV)/.template: $(VENV)/.installed $(TEMPLATE)/pyproject.toml
	$(PIP) install --no-build-isolation --no-deps --editable $(TEMPLATE) 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
	touch $@

# The demo's data come from `make data` (Debian packages); where they cannot be installed (no apt,
# no network) the demo still runs, on scikit-learn's digits, and says so.
demo: install
	$(MAKE) --no-print-directory data || echo "make data failed: the demo falls back to scikit-learn's digits"
	$(VENV)/bin/vk demo cgan --device auto

test: install $(VENV)/.template
	$(PY) -m pytest -m "not slow" -q tests $(TEMPLATE)/tests

test-all: install $(VENV)/.template
	$(PY) -m pytest -q tests $(TEMPLATE)/tests

bench: install
	$(PY) -m pytest benchmarks -o addopts="" --benchmark-only --benchmark-min-rounds=10 --benchmark-json=build/benchmark.json -q
	$(PY) benchmarks/report.py build/benchmark.json --readme README.md

# A CPU-only torch must build too (CUDA kernels skipped even where nvcc exists): a throwaway venv.
check-cpu-torch:
	tools/check_cpu_only_torch.sh

lint: install
	$(VENV)/bin/ruff check vision_kernels cli plugins tests benchmarks examples

# Real data without a network: Debian packages (the datasets `fashion-mnist` and `opencv-digits`).
DATA_PACKAGES := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz=dataset-fashion-mnist \
	/usr/share/doc/opencv-doc/examples/data/digits.png=opencv-doc
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
data:
	@missing=""; for entry in $(DATA_PACKAGES); do [ -e "$${entry%%=*}" ] || missing="$$missing $${entry#*=}"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; $(SUDO) apt-get install -y -q $$missing; \
	else echo "data: Fashion-MNIST and OpenCV's digits are installed"; fi

clean:
	rm -rf build $(VENV)/.installed
