"""A smoke test of benchmarks/throughput.py with tiny settings: rows run and count tokens (no timing checks)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def throughput():
    spec = importlib.util.spec_from_file_location("throughput", ROOT / "benchmarks" / "throughput.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_rows_run_and_report(throughput, tmp_path):
    data = throughput.build_data(tmp_path, count=12, seed=0, max_side=96)
    results = {}
    for row in ("vlmtune+packing", "pad-to-max"):
        argv = ["--steps", "3", "--warmup", "1", "--batch_size", "4", "--model_max_length", "512"]
        argv += ["--row", row, "--data", str(data), "--output", str(tmp_path / "out")]
        results[row] = [throughput.run_row(throughput.parse(argv))]
    packed, padded = results["vlmtune+packing"][0], results["pad-to-max"][0]
    assert packed["steps"] == padded["steps"] == 2
    assert packed["model_tflops_per_s"] > 0 and ("mfu" in packed) == torch.cuda.is_available()  # GPU peak only
    assert packed["padding"] < 0.5 < padded["padding"]  # 512 slots per sample against ~100 real tokens
    table = throughput.format_table(results)
    assert "| vlmtune+packing |" in table and "1.00x" in table


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compose_gpu_configs_are_so400m_and_qwen3_0_6b_shaped():
    planned = load_benchmark("compose_gpu").dry_run()
    assert planned["image_tokens"] == 729
    assert planned["parameters"] == {"vision": 412_987_248, "projector": 2_230_272, "llm": 596_049_920}


def test_compose_gpu_rows_run_on_a_tiny_composed_model(tmp_path):
    """The GPU script's row path (recipe file, data, step timer, extrapolation) on CPU with the tiny parts."""
    from vlmtune.compose import compose

    bench = load_benchmark("compose_gpu")
    composed = compose("tiny-siglip", "tiny-qwen3", tmp_path / "composed")
    cpu = ("--model_dtype", "float32", "--bf16", "false", "--use_cpu", "true", "--activation_checkpointing", "false")
    result = bench.run_row(
        "stage2-lora", composed, tmp_path, steps=2, warmup=1, extra=(*cpu, "--dataloader_num_workers", "0")
    )
    assert result["batch"] == 16 and result["s/step"] > 0
    assert result["hours (1 GPU)"] == pytest.approx(665_000 / result["samples/s"] / 3600)
