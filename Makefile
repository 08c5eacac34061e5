# Two commands set everything up on a fresh machine (Python >= 3.10 is all it needs):
#   make demo   create .venv, install adrecall, build an index of the sample catalogue, search it
#   make test   create .venv, install adrecall with its test extras, run the whole test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_INDEX ?= demo-index
PYTEST_ARGS ?=

.PHONY: demo test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# the CPU build of torch first, or a dependency would pull a multi-GB CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0

$(VENV)/.installed-base: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed-base

# hybrid search: lexical weight 0 is the one chosen on the catalogue's tuning queries
# (benchmarks/results/hybrid_search.md); the lexical side still answers the Chinese queries,
# which the default English model cannot read
demo: $(VENV)/.installed-base
	$(BIN)/adrecall build --ads index_build/sample_catalogue/ads.csv --out $(DEMO_INDEX) --lexical
	$(BIN)/adrecall search $(DEMO_INDEX) -k 5 --mode hybrid --lexical-weight 0 \
		"cheap way to get to Tokyo" \
		"my car makes a noise when I brake" \
		"learn a language before my trip" \
		"孩子学编程"

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)
