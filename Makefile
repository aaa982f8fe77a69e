# Quick start: `make demo` runs the main job on the embedded local server, `make test` runs
# every check. Both create the virtualenv and install the project on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo ray-demo test lint typecheck unit bench bench-corpus corpus record screenshots clean

$(STAMP): pyproject.toml
	@echo "make: creating $(VENV) and installing datalab-ocr with its dev extras (about a minute, once)..."
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)
	@echo "make: $(VENV) is ready"

demo: $(STAMP)
	$(BIN)/python examples/demo.py

ray-demo: $(STAMP)
	$(BIN)/python examples/ray_ingest.py --nodes 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

corpus: $(STAMP)
	$(BIN)/python benchmarks/corpus/fetch_corpus.py

bench-corpus: corpus
	$(BIN)/python benchmarks/bench_corpus.py

screenshots: $(STAMP)
	$(BIN)/python docs/make_screenshot.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
