"""DPO on two processes (torchrun, gloo, CPU) computes what one process computes with the same global batch: the
pairs (the data loader's shards), the losses and pair metrics gathered over the processes, the gradients averaged,
and so the parameters after the steps; with each pair as one row (the prompt once, then both replies)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from tests.test_dpo import pairs_file
from tests.test_grpo_distributed import run
from vlmtune.core.modeling import checkpoint_path
from vlmtune.supported_models import get_model

ROOT = Path(__file__).resolve().parent.parent
WORKER = str(ROOT / "tests" / "dpo_ddp_worker.py")


def dpo_args(tmp_path: Path, output: str, *extra: str) -> list[str]:
    return [
        "--model_id", "tiny-qwen2-vl",
        "--data_path", pairs_file(tmp_path, rows=12),
        "--output_dir", str(tmp_path / output),
        "--per_device_train_batch_size", "2",
        "--max_steps", "3",
        "--optim", "sgd",  # Adam's first steps (g / |g|) would blow float-order noise up; SGD keeps it small
        "--learning_rate", "0.5",
        "--lora_dropout", "0",  # dropout masks come from each process's own RNG stream: not comparable
        "--train_projector", "true",  # the projector's gradient flows through the media encoded once per pair
        "--loss_type", "sigmoid", "sft",
        "--prompt_once", "true",  # one row per pair
        "--logging_steps", "1",
        "--seed", "3",
        "--use_cpu", "true",
        "--report_to", "none",
        "--disable_tqdm", "true",
        *extra,
    ]  # fmt: skip


@pytest.mark.slow  # two torchrun processes and a one-process run: 52-73 s measured on the shared 2-core machine
def test_two_processes_train_as_one_process_with_the_same_global_batch(tmp_path):
    """2 processes x 2 pairs per step == 1 process x 2 accumulated micro-batches of 2 pairs (3 steps)."""
    checkpoint_path(get_model("tiny-qwen2-vl"))  # built once here, not by two processes at the same time
    torchrun = Path(sys.executable).parent / "torchrun"
    torchrun = str(torchrun) if torchrun.exists() else "torchrun"
    run(
        [
            torchrun,
            "--standalone",
            "--nproc_per_node",
            "2",
            WORKER,
            *dpo_args(tmp_path, "two"),
            "--ddp_backend",
            "gloo",
        ]
    )
    run([sys.executable, WORKER, *dpo_args(tmp_path, "one", "--gradient_accumulation_steps", "2")])

    ranks = [torch.load(tmp_path / "two" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    one = torch.load(tmp_path / "one" / "rank0.pt", weights_only=False)
    assert [r["world_size"] for r in ranks] == [2, 2] and one["world_size"] == 1
    assert ranks[0]["wrapper"] == "DistributedDataParallel"
    assert ranks[0]["steps"] == ranks[1]["steps"] == one["steps"] == 3
    assert all(r["batcher"] == "SharedPromptCollator" for r in (one, *ranks))  # one row per pair

    # The same losses and pair metrics, the means over the whole global batch on every rank.
    keys = ("loss", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "logps/chosen", "logps/rejected")
    steps = [[entry for entry in run["history"] if "loss" in entry] for run in (one, *ranks)]
    for mine in steps[1:]:
        for entry, expected in zip(mine, steps[0], strict=True):
            for key in keys:
                assert entry[key] == pytest.approx(expected[key], abs=1e-4), key
    assert len({round(entry["loss"], 6) for entry in steps[0]}) == 3  # the parameters moved between steps

    # The same parameters after 3 steps: 1e-6 absolute for float sums in another order (gloo's all-reduce).
    assert ranks[0]["trained"].keys() == one["trained"].keys() and one["trained"]
    assert all(value.abs().sum() > 0 for name, value in one["trained"].items() if "lora_B" in name)  # zero at start
    for name, value in one["trained"].items():
        torch.testing.assert_close(ranks[0]["trained"][name], value, atol=1e-6, rtol=1e-5, msg=name)
        torch.testing.assert_close(ranks[1]["trained"][name], ranks[0]["trained"][name], atol=0, rtol=0)
