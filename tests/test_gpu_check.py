"""`benchmarks/gpu_check.sh --dry_run`: the GPU check's CPU-checkable parts run, and every row is accounted for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GPU_ROWS = [
    "qlora-cuda",
    "zero2",
    "zero3",
    "fsdp2",
    "throughput-2b",
    "packing-flash-attn",
    "throughput-7b-lora",
    "grpo-step",
    "grpo-zero3",
    "grpo-server",
]


@pytest.mark.slow
def test_dry_run_runs_the_cpu_rows_and_lists_every_gpu_row(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path / "gc"), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks/gpu_check.sh"), "--dry_run"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = {row["row"]: row for row in json.loads((tmp_path / "gc/results.json").read_text())}
    assert rows["cpu-qlora"]["status"] == "ok", (tmp_path / "gc/cpu-qlora.log").read_text()[-2000:]
    assert rows["cpu-throughput"]["status"] == "ok"
    assert rows["cpu-throughput"]["result"]  # the throughput script's numbers were read back
    assert rows["cpu-grpo"]["status"] == "ok", (tmp_path / "gc/cpu-grpo.log").read_text()[-2000:]
    assert rows["cpu-grpo"]["result"]["dry_run"] is True and rows["cpu-grpo"]["result"]["tokens_per_s"] > 0
    for name in GPU_ROWS:  # not run on CPU: either waiting for the GPU or for a package
        assert rows[name]["status"] == "dry run: not run" or rows[name]["status"].startswith("skipped: needs")
    assert "vllm-cuda" in rows
    table = (tmp_path / "gc/results.md").read_text()
    assert all(f"| {name} |" in table for name in rows)
