"""`vlmtune grpo --use_vllm --vllm_mode server` against a `vlmtune rollout-server` the test starts (make test-vllm).

The trainer runs in this Python (no vLLM needed: `RolloutClient` is HTTP), the server in the vLLM environment
($VLLM_VENV, scripts/setup_vllm_venv.sh), fp32 on CPU, bound to 127.0.0.1 with a key from a chmod-600 file. One
server start for the whole module (~10-60 s on CPU): the tests run in file order and the last one kills it
mid-run; the teardown ends it by its PID whatever happened.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.grpo_vllm_helpers import TOLERANCE, check_rollouts, digit_prompts, logp_differences
from tests.test_grpo import PLUGIN, grpo_argv
from vlmtune.arguments import ModelArguments
from vlmtune.core.modeling import set_trainable
from vlmtune.core.outputs import load_for_inference
from vlmtune.errors import ServiceError
from vlmtune.grpo.rollout_client import RolloutClient
from vlmtune.grpo.rollouts import SamplingSettings, completion_logps, training_inputs
from vlmtune.grpo.vllm_rollouts import generate_completions_vllm, push_weights
from vlmtune.supported_models import get_model

pytestmark = pytest.mark.vllm

VLLM_PYTHON = Path(os.environ.get("VLLM_VENV", "/work/vllm-venv")) / "bin" / "python"
REPO = Path(__file__).resolve().parents[1]
START_SECONDS = 300  # vLLM on 2 shared CPU cores: ~10 s alone, a minute or more beside other work
# A failure case must end within its --vllm_server_timeout plus this (Python, torch and the model starting in a
# fresh process on 2 shared cores); subprocess's timeout fails the test past it.
STARTUP_SECONDS = 90
SETTINGS = SamplingSettings(num_generations=3, temperature=0.9, max_completion_length=8)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """(port, key file, process) of a rollout server on tiny-qwen2-vl; ended by PID at the end of the module."""
    if not VLLM_PYTHON.is_file():
        pytest.skip(f"no vLLM environment at {VLLM_PYTHON.parent.parent} (scripts/setup_vllm_venv.sh)")
    folder = tmp_path_factory.mktemp("rollout-server")
    key_file = folder / "key"
    key_file.write_text("a-test-key-of-this-run\n")
    key_file.chmod(0o600)
    port = free_port()
    log = (folder / "server.log").open("w")
    command = [str(VLLM_PYTHON), "-m", "vlmtune.grpo.rollout_server", "tiny-qwen2-vl", "--port", str(port)]
    command += ["--api_key_file", str(key_file), "--dtype", "float32", "--max_model_len", "1024"]
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:
        deadline = time.monotonic() + START_SECONDS
        while "vlmtune rollout-server:" not in (folder / "server.log").read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the rollout server did not start:\n{(folder / 'server.log').read_text()[-3000:]}")
            time.sleep(1)
        yield port, key_file, process
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        log.close()


def client_of(server) -> RolloutClient:
    port, key_file, _ = server
    return RolloutClient.connect("127.0.0.1", port, 60, get_model("tiny-qwen2-vl"), str(key_file))


def test_the_server_refuses_a_request_without_the_key(server):
    port, _, _ = server
    wrong = RolloutClient("127.0.0.1", port, "not-the-key", 10)
    with pytest.raises(ServiceError, match="answered /health with 401"):
        wrong.call("GET", "/health")


def test_pushed_weights_sample_as_the_updated_model(server, tmp_path):
    """LoRA (+ the projector trained fully), one AdamW step, the weights pushed over HTTP: the server's log-probs
    are the updated model's training forward's (as the colocated engine's, tests/test_grpo_vllm.py)."""
    client = client_of(server)
    model, processor, entry = load_for_inference("tiny-qwen2-vl")  # the entry checked against its files
    collator = entry.family.collator(processor, entry.family.reply_end, 1024)
    model = model.float().eval()
    model = set_trainable(model, entry.family.modules, ModelArguments(model_id=entry.model_id), False)
    prompts = digit_prompts(tmp_path)
    push_weights(client, model)  # the server may hold another run's weights
    before = generate_completions_vllm(client, collator, prompts, SETTINGS, seed=7)
    check_rollouts(before, collator, len(prompts), SETTINGS)
    difference, _ = logp_differences(model, collator, before, SETTINGS.temperature)
    assert difference.max() <= TOLERANCE
    again = generate_completions_vllm(client, collator, prompts, SETTINGS, seed=7)
    assert torch.equal(again.completion_ids, before.completion_ids), "a seeded request must sample the same"

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
    model.train()
    inputs = training_inputs(before, collator.reply_token_type_id)
    logps, _ = completion_logps(model, inputs, before.completion_ids.shape[1], SETTINGS.temperature)
    (-(logps * before.completion_mask).sum()).backward()
    optimizer.step()
    model.eval()
    push_weights(client, model)
    after = generate_completions_vllm(client, collator, prompts, SETTINGS, seed=8)
    check_rollouts(after, collator, len(prompts), SETTINGS)
    difference, _ = logp_differences(model, collator, after, SETTINGS.temperature)
    with model.disable_adapter():
        stale, _ = logp_differences(model, collator, after, SETTINGS.temperature)
    print(f"server: max |logp - vLLM| after the push {difference.max():.2e}, old weights {stale.max():.2e}")
    assert difference.max() <= TOLERANCE
    assert stale.max() > 100 * TOLERANCE, "the step did not change the log-probs; the test would be empty"


def grpo_command(tmp_path, port: int, key_file, *extra: str) -> list[str]:
    (tmp_path / "rewards.py").write_text(PLUGIN)
    argv = grpo_argv(tmp_path, "--use_vllm", "true", "--vllm_mode", "server", "--reward_funcs", "even_tokens")
    argv += ["--vllm_server_port", str(port), "--vllm_server_api_key_file", str(key_file), *extra]
    return [sys.executable, "-m", "vlmtune.grpo", *argv]


def run_cli(command: list[str], seconds: float) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, timeout=seconds, env=environment)


def error_lines(stderr: str) -> list[str]:
    """The lines that report an error; a message printed while the progress bar is drawn follows the bar on its
    line (tqdm ends its redraws with no newline), so what comes before the message is left out."""
    lines = [line for line in stderr.splitlines() if "error" in line.lower() or "Traceback" in line]
    return [line[line.find("vlmtune grpo: error:") :] if "vlmtune grpo: error:" in line else line for line in lines]


def test_grpo_trains_two_steps_sampling_from_the_server(server, tmp_path):
    """The trainer (this Python, no vLLM) pushes before steps 0 and 1 and samples every rollout from the server;
    the engine's log-probs stay the training forward's (the media tokens' mass only: tests/test_grpo_vllm.py)."""
    from vlmtune.grpo.arguments import parse_grpo_args
    from vlmtune.grpo.run import grpo

    port, key_file, _ = server
    trainer = grpo(*parse_grpo_args(grpo_command(tmp_path, port, key_file)[3:]))
    assert isinstance(trainer.llm, RolloutClient) and trainer.pushed_step == 1
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(history) == 2
    assert all(entry["sampling/logp_abs_diff"] < 1e-2 for entry in history)
    assert len((tmp_path / "out" / "completions.jsonl").read_text().splitlines()) == 2 * 2 * 4
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


def test_two_training_processes_share_the_server(server, tmp_path):
    """torchrun, 2 processes (gloo): the first pushes the weights, both wait at the barrier, then each samples its
    prompts from the server; the run trains 2 steps and saves."""
    port, key_file, _ = server
    command = grpo_command(tmp_path, port, key_file, "--ddp_backend", "gloo", "--per_device_train_batch_size", "1")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    started = time.monotonic()
    result = run_cli([*torchrun, *command[1:]], 300)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"2 processes, server mode: {time.monotonic() - started:.1f} s")
    rows = (tmp_path / "out" / "completions.jsonl").read_text().splitlines()
    assert len(rows) == 2 * 1 * 4  # the first process's rollouts: two steps, one prompt of four completions
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


def test_a_server_of_another_model_stops_the_run_in_one_line(server, tmp_path):
    port, key_file, _ = server
    command = grpo_command(tmp_path, port, key_file, "--model_id", "tiny-llava-1.5", "--vllm_server_timeout", "10")
    started = time.monotonic()
    result = run_cli(command, 10 + STARTUP_SECONDS)
    assert result.returncode == 1, result.stderr[-2000:]
    assert error_lines(result.stderr) == [
        f"vlmtune grpo: error: the rollout server at 127.0.0.1:{port} serves tiny-qwen2-vl (qwen2-vl), this run "
        "trains tiny-llava-1.5 (llava-1.5): start `vlmtune rollout-server tiny-llava-1.5` (or the run's "
        "--model_local_path)"
    ]
    print(f"wrong model: stopped after {time.monotonic() - started:.1f} s")


def test_no_server_on_the_port_stops_the_run_in_one_line_within_its_timeout(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text("k\n")
    key_file.chmod(0o600)
    port = free_port()
    started = time.monotonic()
    result = run_cli(grpo_command(tmp_path, port, key_file, "--vllm_server_timeout", "5"), 5 + STARTUP_SECONDS)
    assert result.returncode == 1, result.stderr[-2000:]
    assert error_lines(result.stderr) == [
        f"vlmtune grpo: error: no rollout server answered at 127.0.0.1:{port} within 5 s (--vllm_server_timeout): "
        f"start one with `vlmtune rollout-server MODEL --port {port}`, or give its --vllm_server_host / "
        "--vllm_server_port"
    ]
    print(f"unreachable: stopped after {time.monotonic() - started:.1f} s")


def test_a_server_killed_mid_run_stops_the_run_in_one_line(server, tmp_path):
    """Last (it ends the module's server): the run starts against the server, which is killed after the first
    push; the next request fails at once and the run ends with one line."""
    port, key_file, process = server
    command = grpo_command(tmp_path, port, key_file, "--max_steps", "50", "--vllm_server_timeout", "10")
    environment = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    trainer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment)
    try:
        deadline = time.monotonic() + 180
        while not (Path(tmp_path) / "out" / "completions.jsonl").is_file():  # the first rollouts came back
            assert trainer.poll() is None, trainer.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "the run did not sample within 180 s"
            time.sleep(0.5)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
        killed = time.monotonic()
        _, stderr = trainer.communicate(timeout=10 + 20)  # its --vllm_server_timeout, and a step in flight
    finally:
        if trainer.poll() is None:
            os.kill(trainer.pid, signal.SIGKILL)
            trainer.wait()
    print(f"server killed: the run stopped {time.monotonic() - killed:.1f} s later")
    assert trainer.returncode == 1, stderr[-2000:]
    lines = error_lines(stderr)
    assert len(lines) == 1 and lines[0].startswith(f"vlmtune grpo: error: the rollout server at 127.0.0.1:{port} ")
    assert "restart it and continue with --resume_from_checkpoint auto" in lines[0]
