"""GRPO on two processes (torchrun, gloo, CPU) computes what one process computes with the same global batch:
rollouts, whole-group advantages with the batch's std gathered over the processes, DAPO's global token count,
the logged reward means, and so the parameters after the steps."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.test_grpo import PLUGIN, clevr_count_data
from vlmtune.core.modeling import checkpoint_path
from vlmtune.supported_models import get_model

ROOT = Path(__file__).resolve().parent.parent
WORKER = str(ROOT / "tests" / "grpo_ddp_worker.py")


def run(command: list[str], timeout: int = 240) -> None:
    """Run a worker command in its own process group (a hang cannot leave workers behind); fail with its stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail(f"{command[0]} hung for {timeout} s")
    assert process.returncode == 0, stderr[-3000:]


def grpo_args(tmp_path: Path, output: str, *extra: str) -> list[str]:
    return [
        "--model_id", "tiny-qwen2-vl",
        "--data_path", clevr_count_data(tmp_path, rows=8),
        "--eval_data_path", clevr_count_data(tmp_path, rows=3, name="eval.jsonl"),  # 3 prompts on 2 processes
        "--output_dir", str(tmp_path / output),
        "--reward_plugin", str(tmp_path / "rewards.py"),
        "--reward_funcs", "even_tokens",  # differs within every group: every step has a gradient
        "--num_generations", "4",
        "--max_completion_length", "6",
        "--per_device_train_batch_size", "1",
        "--max_steps", "3",
        "--optim", "sgd",  # Adam's first steps (g / |g|) would blow float-order noise up; SGD keeps it small
        "--learning_rate", "0.5",
        "--lora_dropout", "0",  # dropout masks come from each process's own RNG stream: not comparable
        "--logging_steps", "1",
        "--scale_rewards", "batch",  # the std of the whole generation batch: wrong if not gathered
        "--loss_type", "dapo",  # normalised by the tokens of all processes: wrong if not summed
        "--seed", "3",
        "--use_cpu", "true",
        "--report_to", "none",
        "--disable_tqdm", "true",
        *extra,
    ]  # fmt: skip


@pytest.mark.slow  # 27 s on a quiet 2-core machine, 70-100 s while other jobs share the cores (measured)
def test_two_processes_train_as_one_process_with_the_same_global_batch(tmp_path):
    """2 processes x 1 prompt per step == 1 process x 2 accumulated micro-batches of 1 prompt (3 steps): the same
    prompts (the data loader's shards), the same completions (each micro-batch's sampling seed is its place in
    the step's generation batch), whole-batch reward std and token count gathered, the gradients averaged."""
    (tmp_path / "rewards.py").write_text(PLUGIN)
    checkpoint_path(get_model("tiny-qwen2-vl"))  # built once here, not by two processes at the same time
    torchrun = Path(sys.executable).parent / "torchrun"
    torchrun = str(torchrun) if torchrun.exists() else "torchrun"
    two = [torchrun, "--standalone", "--nproc_per_node", "2", WORKER, *grpo_args(tmp_path, "two")]
    run([*two, "--ddp_backend", "gloo"])
    run([sys.executable, WORKER, *grpo_args(tmp_path, "one", "--gradient_accumulation_steps", "2")])

    ranks = [torch.load(tmp_path / "two" / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    one = torch.load(tmp_path / "one" / "rank0.pt", weights_only=False)
    assert [r["world_size"] for r in ranks] == [2, 2] and one["world_size"] == 1
    assert ranks[0]["steps"] == ranks[1]["steps"] == one["steps"] == 3

    # The same rollouts, rewards and losses, logged as the means of the whole generation batch on every rank.
    keys = ("loss", "reward", "reward_std", "completions/mean_length", "frac_reward_zero_std", "entropy")
    steps = [[entry for entry in run["history"] if "loss" in entry] for run in (one, *ranks)]
    for mine in steps[1:]:
        for entry, expected in zip(mine, steps[0], strict=True):
            assert {k: round(entry[k], 4) for k in keys} == {k: round(expected[k], 4) for k in keys}
    assert len({round(entry["reward"], 6) for entry in steps[0]}) > 1  # the steps saw different data
    # Completions stop at different lengths (the worker's eos bias), so the processes hold different token counts
    # and DAPO's normaliser must be the global one (a per-process count fails this test: tried).
    assert all(entry["completions/mean_length"] < 6 for entry in steps[0])
    # The final evaluation: the held-out prompts split over the processes, the replies gathered, the same scores.
    evals = [[entry for entry in run["history"] if "eval_reward" in entry] for run in (one, *ranks)]
    assert len(evals[0]) == 1 and evals[1] == evals[2]
    assert evals[1][0]["eval_rewards/even_tokens/mean"] == pytest.approx(evals[0][0]["eval_rewards/even_tokens/mean"])

    # The same parameters: equal to the bit here (measured); 1e-6 allowed for float sums in another order.
    assert ranks[0]["trained"].keys() == one["trained"].keys() and one["trained"]
    assert all(value.abs().sum() > 0 for name, value in one["trained"].items() if "lora_B" in name)  # zero at start
    for name, value in one["trained"].items():
        torch.testing.assert_close(ranks[0]["trained"][name], value, atol=1e-6, rtol=1e-5, msg=name)
        torch.testing.assert_close(ranks[1]["trained"][name], ranks[0]["trained"][name], atol=0, rtol=0)
