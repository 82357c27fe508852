# Two commands on a fresh machine: `make demo` and `make test`. Everything they need is
# installed from here: Python packages into .venv/ (always with -c constraints.txt, which pins
# torch to the local CPU wheel) and the Debian packages for the Cortex-M4 checks.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
SYSTEM_PACKAGES := gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi qemu-system-arm \
    dataset-fashion-mnist espeak-ng
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DIGITS := calibration/digits

.PHONY: setup system-deps demo test test-fast clean

setup: $(VENV)/.installed system-deps

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) torch==2.13.0
	$(PIP) -e '.[dev]'
	touch $@

system-deps:
	@if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null \
	    || [ ! -f /usr/lib/arm-none-eabi/newlib/libc_nano.a ] || ! command -v espeak-ng >/dev/null \
	    || [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	  echo "installing $(SYSTEM_PACKAGES)"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

# The shipped example: train LeNet on scikit-learn digits (deterministic, ~5 s) and build it.
# The .pt2 files are generated, not tracked: torch.export.save records a random id and paths.
DIGITS_MODELS := examples/digits/lenet.pt2 examples/digits/mlp.pt2

$(DIGITS_MODELS): examples/digits/train.py examples/models.py | $(VENV)/.installed
	$(PY) examples/digits/train.py

demo: setup
	$(PY) examples/digits/train.py
	$(VENV)/bin/edgeq build examples/digits/lenet.pt2 --target onnx \
	    --calibration $(DIGITS)/calib.npy --eval-data $(DIGITS)/eval.npy \
	    --eval-labels $(DIGITS)/eval_labels.npy -o build/digits-onnx
	@for t in tflite cortex-m4; do \
	  $(VENV)/bin/edgeq build examples/digits/lenet.pt2 --target $$t \
	    --calibration $(DIGITS)/calib.npy --eval-data $(DIGITS)/eval.npy \
	    --eval-labels $(DIGITS)/eval_labels.npy -o build/digits-$$t \
	    $$( [ $$t = cortex-m4 ] && echo --name digits ) || exit 1; \
	done

test: setup $(DIGITS_MODELS)
	$(PY) -m pytest -q

test-fast: setup $(DIGITS_MODELS)
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf build $(VENV)
