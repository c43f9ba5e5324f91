# Two entry points, each sets up its own environment (.venv) if missing.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: reproduce test lint clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,io]'
	touch $(STAMP)

## make reproduce: derivations, theory checks, quick validation, Figs. 1-5, quick conversion, results/REPORT.md
reproduce: $(STAMP)
	$(BIN)/python -m l4theory.derivations
	$(BIN)/python -m l4theory.theory.anchors
	$(BIN)/python -m validation run all --quick
	$(BIN)/python -m figures all
	$(BIN)/python -m validation conversion --quick
	$(BIN)/python -m figures report

## make test: the whole suite, statistical tests included
test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check l4theory validation figures benchmarks models tests

clean:
	rm -rf $(VENV) results .pytest_cache
