# Two commands: `make demo` runs the whole pipeline on synthetic data (both baselines, CueRator, complex-valued
# fusion, a sweep), `make test` the tests
# (`make app`: the web app on the demo's videos). Both install requirements.lock (exact versions and hashes);
# `make test-latest` runs the tests on the newest versions requirements*.txt admit; `make lock` refreshes the lock.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LATEST := .venv-latest

DEMO := demo

.PHONY: venv demo app test test-latest lock mutants bench gpu-check clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.lock
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --require-hashes -r requirements.lock
	touch $@

demo: venv
	rm -rf $(DEMO)
	@echo "== DEMO: synthetic videos and a small ImageBind with RANDOM weights. The numbers are"
	@echo "== meaningless; this shows the whole pipeline running. Real data: see the README."
	$(BIN)/python tools/make_synthetic_benchmark.py --output $(DEMO)/ovavebench
	PYTHON=$(BIN)/python bash run_baseline_v0.sh --config configs/demo/v0_training_free.yaml
	PYTHON=$(BIN)/python bash run_baseline_v1_train_fully.sh --config configs/demo/v1_fine_tuning.yaml
	PYTHON=$(BIN)/python bash run_cuerator.sh --config configs/demo/cuerator_policy.yaml
	PYTHON=$(BIN)/python bash run_complex_fusion.sh --config configs/demo/complex_fusion_2stream.yaml
	PYTHON=$(BIN)/python bash run_complex_fusion.sh --phase-gan --config configs/demo/complex_fusion_4stream.yaml
	PYTHON=$(BIN)/python bash run_complex_fusion.sh --config configs/demo/complex_fusion_4stream.yaml
	$(BIN)/python sweep.py configs/sweeps/demo_attention.yaml
	@echo "== demo done: outputs, tables and plots in $(DEMO)/runs/ (numbers meaningless: random weights)"

app: venv
	test -d $(DEMO)/ovavebench || $(BIN)/python tools/make_synthetic_benchmark.py --output $(DEMO)/ovavebench
	test -d $(DEMO)/videos || $(BIN)/python tools/make_demo_videos.py --benchmark $(DEMO)/ovavebench --output $(DEMO)/videos
	$(BIN)/python app.py --config configs/demo/app.yaml --videos $(DEMO)/videos

test: venv
	$(BIN)/python -m pytest

# A fresh venv of the newest releases the ranges admit: a release that breaks the toolkit is a failing
# check here, named in the list of versions that differ from the lock, before it reaches a user.
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/python -m pip install --upgrade pip
	$(LATEST)/bin/python -m pip install --upgrade -r requirements-dev.txt
	$(LATEST)/bin/python tools/compare_lock.py
	$(LATEST)/bin/python -m pytest

# The mutation check (mutmut, configured in pyproject.toml): hours on 2 cores, so outside CI. It resumes
# where it stopped; every survivor must be argued in maintenance/survivors.csv.
mutants: venv
	OVAVEL_SHARED=$${OVAVEL_SHARED:-$(abspath ..)/shared} $(BIN)/python -m mutmut run
	$(BIN)/python maintenance/mutation_summary.py

lock: venv
	$(BIN)/python -m uv pip compile requirements-dev.txt --universal --python-version 3.11 --generate-hashes \
		--constraint requirements-lock-constraints.txt --custom-compile-command "make lock" -o requirements.lock

bench: venv
	$(BIN)/python tools/bench_metrics.py

gpu-check: venv
	$(BIN)/python tools/gpu_check.py --output runs/gpu_check

clean-venv:
	rm -rf $(VENV)
