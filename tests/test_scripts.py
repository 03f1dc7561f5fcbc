"""The launch scripts compose the command of each docs/training.md example (DRY_RUN=1 prints it, runs nothing)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
CONFIGS = SCRIPTS.parent / "configs"


def dry_run(script: str, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DRY_RUN": "1", **variables}
    for name in ("DISTRIBUTED", "NUM_GPUS", "NNODES", "NODE_RANK", "MASTER_ADDR"):
        if name not in variables:
            env.pop(name, None)
    return subprocess.run(["bash", str(SCRIPTS / script), *args], capture_output=True, text=True, env=env)


def command_of(script: str, *args: str, **variables: str) -> str:
    result = dry_run(script, *args, **variables)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_one_gpu_runs_python_and_passes_extra_arguments_last():
    command = command_of("finetune.sh", "--max_steps", "3")
    assert command.startswith("python -m vlmtune.train") and command.rstrip().endswith("--max_steps 3")
    assert "--deepspeed" not in command and "--fsdp" not in command


@pytest.mark.parametrize(
    ("script", "variables", "expected"),
    [
        ("finetune.sh", {"NUM_GPUS": "4"}, ["--nproc_per_node 4", "--nnodes 1"]),
        ("finetune.sh", {"NUM_GPUS": "4", "DISTRIBUTED": "zero3"}, [f"--deepspeed {CONFIGS}/deepspeed_zero3.json"]),
        ("finetune_zero2.sh", {}, ["--nproc_per_node 8", f"--deepspeed {CONFIGS}/deepspeed_zero2.json"]),
        ("finetune_zero3.sh", {"NUM_GPUS": "2"}, ["--nproc_per_node 2", "--deepspeed", "deepspeed_zero3.json"]),
        ("finetune_fsdp2.sh", {}, [f"--fsdp --fsdp_config {CONFIGS}/fsdp2.json --activation_checkpointing false"]),
        (
            "finetune_multinode.sh",
            {"NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1", "DISTRIBUTED": "zero2"},
            ["--nnodes 2 --node_rank 1 --nproc_per_node 8 --master_addr 10.0.0.1", "deepspeed_zero2.json"],
        ),
    ],
)
def test_several_gpus_use_torchrun_with_the_chosen_engine(script, variables, expected):
    command = command_of(script, **variables)
    assert command.startswith("torchrun ") and "-m vlmtune.train" in command
    for words in expected:
        assert words in command


def test_wrong_engine_and_missing_node_settings_are_refused():
    result = dry_run("finetune.sh", DISTRIBUTED="zero4")
    assert result.returncode != 0 and "DISTRIBUTED must be none, zero2, zero3 or fsdp2" in result.stderr
    result = dry_run("finetune_multinode.sh", NNODES="2")
    assert result.returncode != 0 and "set NODE_RANK" in result.stderr
