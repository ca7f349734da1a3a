# Two commands do all the set-up on a fresh machine: `make reproduce` and `make test`.
# Both create .venv when it is missing and install the pinned project into it (`make install`).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SCALE  ?=
PROFILE ?= offline
ONLY   ?=
PYTEST_ARGS ?=

export TQDM_DISABLE ?= 1
export PYTHONHASHSEED := 0

.PHONY: install system-deps test test-fast reproduce book bench lint clean-book

install: $(STAMP)

# Reinstall whenever the pins change.
$(STAMP): pyproject.toml
	bash scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (survey_lib)" >/dev/null
	touch $(STAMP)

system-deps:
	bash scripts/install_system_deps.sh

# The whole suite: unit tests, the three reproductions at SCALE=smoke, the book build at smoke
# scale and its check in headless Chromium. Slow tests (marked `slow`) are left to `make test-slow`.
test: install
	$(PY) -m pytest -m "not slow and not gpu" $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow and not gpu and not notebooks and not book" $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m "slow" $(PYTEST_ARGS)

# make reproduce [SCALE=smoke|cpu|gpu] [PROFILE=offline|paper] [ONLY=name[,name]]
reproduce: install
	$(PY) -m survey_lib.reproduce $(if $(SCALE),--scale $(SCALE)) --profile $(PROFILE) $(if $(ONLY),--only $(ONLY))

book: install
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --all

bench: install
	$(PY) benchmarks/bench_train.py
	$(PY) benchmarks/bench_runs.py
	$(PY) benchmarks/bench_bss.py
	$(PY) benchmarks/bench_data_cache.py
	$(PY) benchmarks/bench_glyphs.py

lint: install
	$(VENV)/bin/ruff check .

clean-book:
	rm -rf _build .jupyter_cache
