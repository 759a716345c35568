# Surrogate Studio set-up. `make run` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.deps-stamp
# Test files run in two processes (pytest-xdist; a file's tests stay together): most tests
# wait on child processes, Ray actors or models loading, and the suite took 9 min alone.
TEST_WORKERS ?= 2
# What Qt (xcb) and offscreen OpenGL need on Debian; installed when missing and we are root.
# libseccomp2 keeps MediaPipe off the network, strace checks that (docs/privacy.md).
DEBS := xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libegl1 \
        libegl-mesa0 libgl1-mesa-dri libosmesa6 libgl1 libglib2.0-0 libfontconfig1 libdbus-1-3 \
        libseccomp2 strace

.PHONY: setup run test models system-deps lint bench evaluate evaluation-report screenshot figures clean

setup: system-deps $(STAMP) models

system-deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "warning: missing Debian packages:$$missing"; \
	    echo "         install them with: sudo apt-get install$$missing"; \
	  fi; \
	fi

$(PY):
	python3 -m venv $(VENV)

$(STAMP): pyproject.toml requirements.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.txt -e '.[dev,ray]'
	touch $@

models: $(STAMP)
	$(PY) -m studio.core.fetch_models

run: setup
	$(PY) -m studio gui

test: setup
	$(VENV)/bin/lint-imports
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(VENV)/bin/ruff check studio tests benchmarks
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) benchmarks/bench_analysis.py
	$(PY) benchmarks/bench_generator.py
	$(PY) benchmarks/bench_3d.py
	$(PY) benchmarks/bench_batch.py
	$(PY) benchmarks/bench_scale.py
	$(PY) benchmarks/bench_evaluate.py
	$(PY) benchmarks/bench_realism.py
	QT_QPA_PLATFORM=offscreen $(PY) benchmarks/bench_gui.py

figures: setup
	$(PY) docs/make_figures.py $(if $(wildcard ../shared/data/utkface),--research,)

screenshot: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" env QT_QPA_PLATFORM=xcb $(PY) docs/make_screenshot.py docs/screenshot.png

evaluate: setup
	$(PY) -m studio evaluate-analysis
	$(PY) -m studio evaluate-generator
	$(PY) -m studio evaluate-3d

# The privacy/utility report committed as docs/evaluation.md (observations are cached).
DATA ?= ../shared/data
evaluation-report: setup
	$(PY) -m studio evaluate --data $(DATA)/genki4k --data $(DATA)/celeba-id \
	  --data $(DATA)/utkface --out docs/evaluation --markdown docs/evaluation.md

clean:
	rm -rf $(VENV) models/third_party .pytest_cache
