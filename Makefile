# The two README commands: `make demo` and `make test`. Each sets up its own virtualenv on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup demo test test-slow test-vllm lint format clean bench

# torch==2.14.1 / torchvision==0.29.1 are pinned in requirements.txt: on these machines pip takes them from
# local files (a looser pin downloads several GB).
$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(PY) -m vlmtune.demo --output_dir demo_output

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint
	$(PY) -m pytest -q

test-slow: setup
	$(PY) -m pytest -q -m slow

# vLLM serves what vlmtune trains (tests marked vllm), in vLLM's own environment outside the repo: built once by
# scripts/setup_vllm_venv.sh (~6.5 min, ~7 GB), then reused. Cost: see README "Serving with vLLM".
VLLM_VENV ?= /work/vllm-venv
test-vllm:
	scripts/setup_vllm_venv.sh $(VLLM_VENV)
	PYTHONPATH=$(CURDIR) OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_VENV)/bin/python -m pytest -q -m vllm -p no:cacheprovider tests/test_vllm.py

# Training throughput side by side (docs/benchmarks.md); the trl row runs when `pip install trl==1.16.0` was done.
bench: setup
	$(PY) benchmarks/throughput.py --repeats 3

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf demo_output .pytest_cache
