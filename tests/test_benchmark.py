"""A smoke test of benchmarks/throughput.py with tiny settings: rows run and count tokens (no timing checks)."""

from __future__ import annotations

import importlib.util
import json
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
    from vlmtune.compose.build import compose

    bench = load_benchmark("compose_gpu")
    composed = compose("tiny-siglip", "tiny-qwen3", tmp_path / "composed")
    cpu = ("--model_dtype", "float32", "--bf16", "false", "--use_cpu", "true", "--activation_checkpointing", "false")
    result = bench.run_row(
        "stage2-lora", composed, tmp_path, steps=2, warmup=1, extra=(*cpu, "--dataloader_num_workers", "0")
    )
    assert result["batch"] == 16 and result["s/step"] > 0
    assert result["hours (1 GPU)"] == pytest.approx(665_000 / result["samples/s"] / 3600)


def test_grpo_step_dry_run_writes_every_field(tmp_path, capsys):
    """benchmarks/grpo_step.py's path (vlmtune grpo's GRPOTrainer, the phase clock, the JSON) on tiny-qwen2-vl."""
    bench = load_benchmark("grpo_step")
    bench.main(["--dry_run", "--json", str(tmp_path / "grpo.json")])
    result = json.loads((tmp_path / "grpo.json").read_text())
    assert list(result) == [
        "row", "device", "model", "dtype", "dry_run", "prompts", "num_generations", "max_completion_length",
        "image_side", "steps", "rollout_s", "train_s", "step_s", "seconds", "tokens_per_s",
        "generated_tokens_per_s", "completion_tokens_per_step", "peak_mem_gib",
    ]  # fmt: skip
    assert result["row"] == "grpo-step" and result["model"] == "tiny-qwen2-vl (dry run)" and result["dry_run"]
    assert (result["prompts"], result["num_generations"], result["max_completion_length"]) == (2, 2, 8)
    assert result["steps"] == 2  # 3 steps, the first untimed
    # The tiny model never stops within 8 tokens at seed 0: 2 x 2 completions of 8 tokens per step.
    assert result["completion_tokens_per_step"] == 32.0
    # The Trainer's non-padding token count: 2 timed steps of 4 sequences, each a 42-token prompt + 8 tokens.
    assert result["tokens_per_s"] * result["seconds"] == pytest.approx(2 * 4 * (42 + 8))
    assert result["rollout_s"] + result["train_s"] == pytest.approx(result["step_s"])  # medians of 2: means
    assert result["rollout_s"] > 0 and result["train_s"] > 0 and result["peak_mem_gib"] > 0
    assert "| tiny-qwen2-vl (dry run) | 2 x 2 | 8 |" in capsys.readouterr().out
