# Two commands do all the set-up on a fresh machine: `make reproduce` and `make test`.
# Both create .venv when it is missing and install the pinned project into it (`make install`).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
SCALE  ?=
PROFILE ?= offline
ONLY   ?=
EXECUTOR ?=
RAY_ADDRESS ?=
# Overrides of the protocol, space-separated KEY=VALUE pairs (no spaces inside one), e.g.
#   make reproduce SCALE=smoke ONLY=l2sp_vs_bss SET="methods.L2-SP.alpha=1.0 seeds=[0,1]"
SET    ?=
PYTEST_ARGS ?=

export TQDM_DISABLE ?= 1
export PYTHONHASHSEED := 0

.PHONY: FORCE install system-deps test test-fast reproduce book bench lint clean-book

install: $(STAMP)
	@$(PY) -m survey_lib.kernel >/dev/null

# The stamp holds the path of the checkout it was installed for: a moved or copied checkout
# (whose editable install and kernel spec point at the old path) is reinstalled.
STAMP_HERE := $(shell test "$$(cat $(STAMP) 2>/dev/null)" = "$(CURDIR)" && echo yes)

# Reinstall whenever the pins change (or the checkout moved, above). `python -m
# survey_lib.kernel` then repairs a kernel spec whose interpreter no longer exists.
$(STAMP): pyproject.toml $(if $(STAMP_HERE),,FORCE)
	bash scripts/install_system_deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,ray]'
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (survey_lib)" >/dev/null
	echo "$(CURDIR)" > $(STAMP)

FORCE:

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

# make reproduce [SCALE=smoke|cpu|gpu] [PROFILE=offline|paper] [ONLY=name[,name]] [SET="k=v ..."]
#                [EXECUTOR=local|ray] [RAY_ADDRESS=host:port]
reproduce: install
	$(PY) -m survey_lib.reproduce $(if $(SCALE),--scale $(SCALE)) --profile $(PROFILE) $(if $(ONLY),--only $(ONLY)) $(foreach kv,$(SET),--set '$(kv)') $(if $(EXECUTOR),--executor $(EXECUTOR)) $(if $(RAY_ADDRESS),--ray-address $(RAY_ADDRESS))

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
