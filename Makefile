# The two README commands: `make demo` and `make test`. Each sets up its own virtualenv on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python

.PHONY: setup demo test test-slow test-vllm lint format clean bench demo-compose demo-grpo demo-dpo chromium test-browser

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
	$(PY) -m vlmtune.apps.demo --output_dir demo_output

# Compose a VLM from a tiny SigLIP tower + a tiny Qwen3 LLM, train it in LLaVA's two stages (docs/compose.md).
demo-compose: setup
	$(PY) -m vlmtune.apps.demo_compose --output_dir demo_compose_output

# GRPO learns to count squares from a reward alone (vlmtune/apps/demo_grpo.py; ~3-6 min on 2 CPU cores).
demo-grpo: setup
	$(PY) -m vlmtune.apps.demo_grpo --output_dir demo_grpo_output

# DPO learns to count squares from preference pairs alone (vlmtune/apps/demo_dpo.py; ~4 min on 2 CPU cores).
demo-dpo: setup
	$(PY) -m vlmtune.apps.demo_dpo --output_dir demo_dpo_output

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: lint chromium
	$(PY) -m pytest -q

# tests/test_webui_browser.py drives the web UI in Debian's chromium (Playwright's own browser download needs the
# network): installed here when missing (~30 s with apt-get); without it that test is skipped.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq chromium >/dev/null) || echo "chromium not installed: the browser test is skipped"

test-browser: setup chromium
	$(PY) -m pytest -q -m browser

test-slow: setup
	$(PY) -m pytest -q -m slow

# vLLM serves what vlmtune trains (tests marked vllm), in vLLM's own environment outside the repo: built once by
# scripts/setup_vllm_venv.sh (~6.5 min, ~7 GB), then reused. Cost: see docs/serving.md.
# The web UI's Serve tab runs with .venv (gradio) and serves with $(VLLM_VENV)'s Python (~1 min); GRPO's server
# mode trains in .venv against a rollout server in $(VLLM_VENV)'s Python (one server start, ~2.5 min).
VLLM_VENV ?= /work/vllm-venv
test-vllm: setup
	scripts/setup_vllm_venv.sh $(VLLM_VENV)
	PYTHONPATH=$(CURDIR) OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(VLLM_VENV)/bin/python -m pytest -q -m vllm -p no:cacheprovider tests/test_grpo_vllm.py tests/test_vllm.py
	VLLM_VENV=$(VLLM_VENV) OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q -m vllm tests/test_grpo_rollout_server.py
	VLLM_VENV=$(VLLM_VENV) OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q -m vllm tests/test_webui.py tests/test_webui_security.py

# Training throughput side by side (docs/benchmarks.md); the trl row runs when `pip install trl==1.16.0` was done.
bench: setup
	$(PY) benchmarks/throughput.py --repeats 3

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf demo_output demo_compose_output demo_grpo_output demo_dpo_output .pytest_cache

# `vlmtune validate` time and peak memory per 10,000 generated samples, without and with --model_id (docs/benchmarks.md).
.PHONY: bench-validate
bench-validate: setup
	$(PY) benchmarks/validate_scale.py
