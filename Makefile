# Two entry points, each sets up its own environment (.venv) if missing.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: data reproduce test lint docs clean

## make data: Fashion-MNIST from Debian's package (apt-get as root, sudo -n, else one-line instructions)
data:
	@sh scripts/ensure-data.sh

$(STAMP): pyproject.toml | data
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,io,plot,testing,torch,study]'
	touch $(STAMP)

## make reproduce: derivations, theory checks, quick validation, quick conversion and study, all figures, results/REPORT.md
reproduce: data $(STAMP)
	$(BIN)/python -m l4theory.derivations
	$(BIN)/python -m l4theory.theory.anchors
	$(BIN)/python -m validation run all --quick
	$(BIN)/python -m validation conversion --quick
	$(BIN)/python -m validation study --quick
	$(BIN)/python -m figures all
	$(BIN)/python -m figures report

## make test: the whole suite, statistical tests included
test: data $(STAMP)
	$(BIN)/python -m pytest

## make docs: the documentation site in docs/_build/html (runs the gallery; warnings are errors,
## cross-references nitpicky, local links checked, no network)
DOCS_STAMP := $(VENV)/.installed-docs
DOCS_OPTS  := -W --keep-going -n -q -d docs/_build/doctrees

$(DOCS_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,io,plot,testing,docs,study]'
	touch $(DOCS_STAMP)

docs: data $(DOCS_STAMP)
	MPLBACKEND=Agg $(BIN)/python -m sphinx -b html -E $(DOCS_OPTS) docs docs/_build/html
	MPLBACKEND=Agg $(BIN)/python -m sphinx -b linkcheck $(DOCS_OPTS) docs docs/_build/linkcheck
	@echo "docs: open docs/_build/html/index.html"

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check l4theory validation figures benchmarks models tests

clean:
	rm -rf $(VENV) results .pytest_cache docs/_build docs/auto_examples docs/api/generated docs/api/modules \
		docs/sg_execution_times.rst
