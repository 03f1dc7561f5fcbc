"""Crash safety: a run killed with SIGKILL part-way resumes from its last complete checkpoint and ends exactly as
an uninterrupted run does (same step count, same losses, so the same data order and random state)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import digit_png
from vlmtune.arguments import parse_args
from vlmtune.core.trainer import is_complete_checkpoint, last_complete_checkpoint
from vlmtune.train import train

MAX_STEPS, SAVE_STEPS, KILL_AT_STEP = 8, 2, 5

# Runs the real training in a child process; with KILL_AT_STEP set, it kills itself with SIGKILL at the end of that
# step (after the checkpoint of step 4 was written): no chance to clean up, as in a crash or a preemption. Every
# run is a child process with one thread, so that all three runs compute bit for bit alike.
RUN = textwrap.dedent(
    """
    import logging, os, signal, sys
    from transformers import TrainerCallback
    from vlmtune.arguments import parse_args
    from vlmtune.train import train

    class KillAt(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if str(state.global_step) == os.environ.get("KILL_AT_STEP"):
                os.kill(os.getpid(), signal.SIGKILL)

    logging.basicConfig(level=logging.INFO)
    train(*parse_args(sys.argv[1:]), callbacks=[KillAt()])
    """
)


@pytest.fixture
def data_path(tmp_path):
    records = []
    for i in range(12):
        name = digit_png(tmp_path, f"d{i}.png", i % 10)
        turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": str(i % 10)}]
        records.append({"image": name, "conversations": turns})
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records))
    return str(path)


def argv(data_path: str, output_dir, *extra: str) -> list[str]:
    return [
        "--model_id=tiny-qwen2-vl",
        f"--data_path={data_path}",
        f"--output_dir={output_dir}",
        f"--max_steps={MAX_STEPS}",
        "--per_device_train_batch_size=2",
        "--learning_rate=1e-3",
        "--logging_steps=1",
        "--save_strategy=steps",
        f"--save_steps={SAVE_STEPS}",
        "--use_cpu=true",
        "--report_to=none",
        "--disable_tqdm=true",
        "--seed=0",
        *extra,
    ]


def run(output_dir, data_path: str, *extra: str, kill_at_step: int | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, "OMP_NUM_THREADS": "1"}
    environment.pop("KILL_AT_STEP", None)
    if kill_at_step:
        environment["KILL_AT_STEP"] = str(kill_at_step)
    command = [sys.executable, "-c", RUN, *argv(data_path, output_dir, *extra)]
    return subprocess.run(command, env=environment, capture_output=True, timeout=600)


def losses(output_dir) -> dict[int, float]:
    state = json.loads((output_dir / f"checkpoint-{MAX_STEPS}" / "trainer_state.json").read_text())
    return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}


def test_a_killed_run_resumes_to_the_same_end(tmp_path, data_path):
    reference = run(tmp_path / "reference", data_path)
    assert reference.returncode == 0, reference.stderr.decode()[-2000:]

    killed_dir = tmp_path / "killed"
    killed = run(killed_dir, data_path, kill_at_step=KILL_AT_STEP)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    assert is_complete_checkpoint(killed_dir / "checkpoint-4")
    assert not (killed_dir / "adapter_model.safetensors").exists()  # the run never reached its end
    # A kill in the middle of writing the next checkpoint leaves a folder without trainer_state.json.
    partial = killed_dir / "checkpoint-6"
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"half a file")
    assert last_complete_checkpoint(killed_dir) == killed_dir / "checkpoint-4"

    resumed = run(killed_dir, data_path, "--resume_from_checkpoint=auto")
    assert resumed.returncode == 0, resumed.stderr.decode()[-2000:]
    assert "resuming from" in resumed.stderr.decode() and "checkpoint-4" in resumed.stderr.decode()

    expected, got = losses(tmp_path / "reference"), losses(killed_dir)
    assert sorted(got) == sorted(expected) == list(range(1, MAX_STEPS + 1))
    for step in range(1, MAX_STEPS + 1):
        assert got[step] == pytest.approx(expected[step], rel=1e-5), f"loss differs at step {step}"
    assert (killed_dir / "adapter_model.safetensors").is_file()


def test_auto_resume_without_a_checkpoint_starts_afresh(tmp_path, data_path):
    trainer = train(*parse_args(argv(data_path, tmp_path / "fresh", "--resume_from_checkpoint=auto", "--max_steps=2")))
    assert trainer.state.global_step == 2
