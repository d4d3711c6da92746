# Two commands: `make demo` runs the whole pipeline on synthetic data, `make test` runs the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv test bench clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $@

test: venv
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python tools/bench_metrics.py

clean-venv:
	rm -rf $(VENV)
