"""A GRPO run killed with SIGKILL between two checkpoints resumes (`--resume_from_checkpoint auto`) to the same end
as an uninterrupted run: the same prompts per step, the same sampled completions (each micro-batch's sampling seed
comes from the run's seed and the step), the same dropout masks (the Trainer's saved RNG state), so the same
logged rewards and losses and the same final weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch
from safetensors.torch import load_file

from tests.test_grpo import PLUGIN, clevr_count_data
from vlmtune.core.trainer import is_complete_checkpoint

MAX_STEPS, SAVE_STEPS, KILL_AT_STEP = 5, 2, 3  # 6 prompts, 2 per step: the resume lands in the middle of epoch 1

# The real `vlmtune grpo` in a child process with one thread; with KILL_AT_STEP set it kills itself with SIGKILL
# at the end of that step (checkpoint-2 written, checkpoint-4 not yet): no chance to clean up, as in a crash.
RUN = textwrap.dedent(
    """
    import logging, os, signal, sys
    from transformers import TrainerCallback
    from vlmtune.grpo.arguments import parse_grpo_args
    from vlmtune.grpo.run import grpo

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if str(state.global_step) == os.environ.get("KILL_AT_STEP"):
                os.kill(os.getpid(), signal.SIGKILL)

    logging.basicConfig(level=logging.INFO)
    grpo(*parse_grpo_args(sys.argv[1:]), callbacks=[KillAt()])
    """
)


def run(tmp_path, output: str, *extra: str, kill_at_step: int | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("KILL_AT_STEP", None)
    if kill_at_step:
        environment["KILL_AT_STEP"] = str(kill_at_step)
    argv = [
        "--model_id", "tiny-qwen2-vl",
        "--data_path", str(tmp_path / "clevr.jsonl"),
        "--output_dir", str(tmp_path / output),
        "--reward_plugin", str(tmp_path / "rewards.py"),
        "--reward_funcs", "even_tokens",
        "--num_generations", "4",
        "--max_completion_length", "6",
        "--per_device_train_batch_size", "2",
        "--max_steps", str(MAX_STEPS),
        "--save_strategy", "steps",
        "--save_steps", str(SAVE_STEPS),
        "--learning_rate", "1e-2",
        "--logging_steps", "1",
        "--seed", "5",
        "--use_cpu", "true",
        "--report_to", "none",
        "--disable_tqdm", "true",
        *extra,
    ]  # fmt: skip
    return subprocess.run([sys.executable, "-c", RUN, *argv], env=environment, capture_output=True, timeout=600)


def logged_steps(output_dir) -> dict[int, dict[str, float]]:
    state = json.loads((output_dir / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())
    keys = ("loss", "reward", "reward_std", "grad_norm", "entropy", "completions/mean_length")
    return {entry["step"]: {k: entry[k] for k in keys} for entry in state["log_history"] if "loss" in entry}


@pytest.mark.slow  # three runs of the real CLI: 37 s of CPU, 105 s on the shared 2-core machine (measured)
def test_a_killed_grpo_run_resumes_to_the_same_end(tmp_path):
    (tmp_path / "rewards.py").write_text(PLUGIN)
    clevr_count_data(tmp_path, rows=6)
    reference = run(tmp_path, "reference")
    assert reference.returncode == 0, reference.stderr.decode()[-2000:]

    killed = run(tmp_path, "killed", kill_at_step=KILL_AT_STEP)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    killed_dir = tmp_path / "killed"
    assert is_complete_checkpoint(killed_dir / "checkpoint-2") and not (killed_dir / "checkpoint-4").exists()

    resumed = run(tmp_path, "killed", "--resume_from_checkpoint", "auto")
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert "resuming from" in resumed.stderr.decode() and "checkpoint-2" in resumed.stderr.decode()

    expected, got = logged_steps(tmp_path / "reference"), logged_steps(killed_dir)
    assert sorted(got) == sorted(expected) == list(range(1, MAX_STEPS + 1))
    assert len({round(entry["reward"], 6) for entry in expected.values()}) > 1  # the steps saw different rollouts
    for step in range(1, MAX_STEPS + 1):
        assert got[step] == pytest.approx(expected[step], rel=1e-6, abs=1e-7), f"step {step} differs"
    weights, reference_weights = (
        load_file(d / "adapter_model.safetensors") for d in (killed_dir, tmp_path / "reference")
    )
    assert weights.keys() == reference_weights.keys()
    for name, value in reference_weights.items():
        torch.testing.assert_close(weights[name], value, atol=1e-6, rtol=1e-6, msg=name)
