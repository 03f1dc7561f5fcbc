"""GRPO launched as on a cluster, on the GPUs of this machine: accelerate with the repo's ZeRO-3 config, the
rollouts sampled in the training processes or by `vlmtune rollout-server` (the grpo-zero3 and grpo-server rows of
benchmarks/gpu_check.sh; docs/grpo.md "Several processes and nodes").

    python benchmarks/grpo_launch.py --mode zero3 --json grpo-zero3.json     # accelerate, ZeRO-3, model.generate
    python benchmarks/grpo_launch.py --mode server --json grpo-server.json   # + a rollout server (vLLM, CUDA)
    python benchmarks/grpo_launch.py --mode server --print                   # the commands, nothing run

One training process per visible GPU (`--num_processes`, default: all, minus the server's in server mode; on one
GPU the server and the trainer share it). The run: tiny-qwen2-vl, the GRPO demo's counting prompts, 10 steps, a
checkpoint at the end (ZeRO-3 gathers the weights to save it). The server is ended by its PID whatever happens.
Writes one JSON: mode, processes, exit status, seconds, seconds per step (after the first), the first and last
logged reward, the mean `sampling/logp_abs_diff` (server mode: vLLM's log-probs against the training forward's).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
STEPS = 10
SERVER_START_SECONDS = 300
PORT = 8010


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def trainer_command(args: argparse.Namespace, data: str, output_dir: Path, key_file: Path) -> list[str]:
    """`accelerate launch` of vlmtune.grpo with configs/accelerate/1x8_zero3.yaml, the process count overridden."""
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--config_file"]
    launch += [str(HERE / "configs/accelerate/1x8_zero3.yaml"), "--num_processes", str(args.num_processes)]
    if args.mode == "server" and args.gpus > 1:  # GPU 0 is the server's
        launch += ["--gpu_ids", ",".join(str(gpu) for gpu in range(1, args.num_processes + 1))]
    grpo = [
        "-m", "vlmtune.grpo", "--model_id", "tiny-qwen2-vl", "--data_path", data, "--output_dir", str(output_dir),
        "--num_generations", "8", "--per_device_train_batch_size", "2", "--max_completion_length", "48",
        "--max_steps", str(STEPS), "--logging_steps", "1", "--learning_rate", "1e-4", "--bf16", "true",
        "--model_dtype", "bfloat16", "--save_strategy", "steps", "--save_steps", str(STEPS), "--report_to", "none",
        "--log_completions_steps", "100",
    ]  # fmt: skip
    if args.mode == "server":
        grpo += ["--use_vllm", "true", "--vllm_mode", "server", "--vllm_server_port", str(PORT)]
        grpo += ["--vllm_server_api_key_file", str(key_file), "--vllm_server_timeout", "120"]
    return [*launch, *grpo]


def server_command(key_file: Path) -> list[str]:
    return [
        sys.executable, "-m", "vlmtune.grpo.rollout_server", "tiny-qwen2-vl", "--port", str(PORT),
        "--api_key_file", str(key_file), "--dtype", "bfloat16", "--max_model_len", "2048",
    ]  # fmt: skip


def summary(args: argparse.Namespace, output_dir: Path, status: int, seconds: float) -> dict:
    states = sorted(output_dir.glob("checkpoint-*/trainer_state.json"))
    history = json.loads(states[-1].read_text())["log_history"] if states else []
    steps = [entry for entry in history if "loss" in entry]
    result = {"mode": args.mode, "processes": args.num_processes, "exit": status, "seconds": round(seconds, 1)}
    result["steps"] = len(steps)
    if steps:
        result["reward_first"], result["reward_last"] = steps[0].get("reward"), steps[-1].get("reward")
        diffs = [entry["sampling/logp_abs_diff"] for entry in steps if "sampling/logp_abs_diff" in entry]
        result["logp_abs_diff_mean"] = sum(diffs) / len(diffs) if diffs else None
        runtime = [entry for entry in history if "train_runtime" in entry]
        if runtime:
            result["train_runtime_s"] = runtime[0]["train_runtime"]
            result["seconds_per_step"] = runtime[0]["train_runtime"] / max(1, len(steps))
    return result


def wait_for_server(process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while "vlmtune rollout-server:" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the rollout server did not start:\n{log.read_text()[-3000:]}")
        time.sleep(1)


def run(args: argparse.Namespace, scratch: Path) -> dict:
    from vlmtune.apps.demo_grpo import write_counting_data

    data = write_counting_data(scratch / "data", num_train=200, num_eval=10, seed=0, shuffle_images=False)["grpo"]
    key_file = scratch / "key"
    key_file.write_text(secrets.token_urlsafe(32) + "\n")
    key_file.chmod(0o600)
    output_dir = scratch / "out"
    trainer = trainer_command(args, str(data), output_dir, key_file)
    if args.print:
        print(shlex.join(server_command(key_file)) if args.mode == "server" else "(no server)")
        print(shlex.join(trainer))
        return {}
    server = None
    environment = {**os.environ, "PYTHONPATH": str(HERE)}
    try:
        if args.mode == "server":
            log = scratch / "server.log"
            alone = {**environment, "CUDA_VISIBLE_DEVICES": "0"} if args.gpus > 1 else environment
            with log.open("w") as file:
                server = subprocess.Popen(server_command(key_file), stdout=file, stderr=subprocess.STDOUT, env=alone)
            wait_for_server(server, log)
        start = time.monotonic()
        status = subprocess.run(trainer, env=environment).returncode
        return summary(args, output_dir, status, time.monotonic() - start)
    finally:
        if server is not None and server.poll() is None:
            os.kill(server.pid, signal.SIGKILL)
            server.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("zero3", "server"), required=True)
    parser.add_argument("--num_processes", type=int, help="Training processes (default: one per GPU it may use).")
    parser.add_argument("--json", help="Write the result here.")
    parser.add_argument("--print", action="store_true", help="Print the commands; run nothing (any machine).")
    args = parser.parse_args(argv)
    args.gpus = 1 if args.print else gpu_count()
    if args.num_processes is None:
        args.num_processes = args.gpus - 1 if args.mode == "server" and args.gpus > 1 else max(1, args.gpus)
    with tempfile.TemporaryDirectory(prefix="grpo-launch-") as scratch:
        result = run(args, Path(scratch))
    if result:
        print(json.dumps(result))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))
    return 0 if not result or result["exit"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
