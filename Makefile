# Two commands: `make demo` runs the whole pipeline on synthetic data (both baselines, CueRator, a sweep), `make test` the tests
# (`make app`: the web app on the demo's videos).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

DEMO := demo

.PHONY: venv demo app test bench gpu-check clean-venv

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-app.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $@

demo: venv
	rm -rf $(DEMO)
	@echo "== DEMO: synthetic videos and a small ImageBind with RANDOM weights. The numbers are"
	@echo "== meaningless; this shows the whole pipeline running. Real data: see the README."
	$(BIN)/python tools/make_synthetic_benchmark.py --output $(DEMO)/ovavebench
	PYTHON=$(BIN)/python bash run_baseline_v0.sh --config configs/demo/v0_training_free.yaml
	PYTHON=$(BIN)/python bash run_baseline_v1_train_fully.sh --config configs/demo/v1_fine_tuning.yaml
	PYTHON=$(BIN)/python bash run_cuerator.sh --config configs/demo/cuerator_policy.yaml
	$(BIN)/python sweep.py configs/sweeps/demo_attention.yaml
	@echo "== demo done: outputs, tables and plots in $(DEMO)/runs/ (numbers meaningless: random weights)"

app: venv
	test -d $(DEMO)/ovavebench || $(BIN)/python tools/make_synthetic_benchmark.py --output $(DEMO)/ovavebench
	test -d $(DEMO)/videos || $(BIN)/python tools/make_demo_videos.py --benchmark $(DEMO)/ovavebench --output $(DEMO)/videos
	$(BIN)/python app.py --config configs/demo/app.yaml --videos $(DEMO)/videos

test: venv
	$(BIN)/python -m pytest

bench: venv
	$(BIN)/python tools/bench_metrics.py

gpu-check: venv
	$(BIN)/python tools/gpu_check.py --output runs/gpu_check

clean-venv:
	rm -rf $(VENV)
