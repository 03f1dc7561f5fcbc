"""GRPO step time on one GPU: a Qwen2-VL-2B-shaped model with random weights, LoRA, bf16, through `vlmtune grpo`.

    python benchmarks/grpo_step.py --json grpo.json        # CUDA: the real-size row (benchmarks/gpu_check.sh)
    python benchmarks/grpo_step.py --dry_run               # any machine: the same path on tiny-qwen2-vl, tiny sizes

The run is `vlmtune grpo`'s own: the arguments are parsed by `parse_grpo_args` from a command line, the prompts
and rewards checked by `check_grpo_run` and the trainer built by `grpo_trainer` (both from `vlmtune.grpo.run`),
so rollouts, rewards, advantages and the loss are GRPOTrainer's. Only the weights differ from a real run: the
model is `benchmarks/throughput.py`'s real-size Qwen2-VL-2B architecture with random weights (nothing is
downloaded) and the tiny processor set to the released pixel budget; the dry run loads the registered
tiny-qwen2-vl instead.

The default workload: 8 prompts x 8 generations per optimizer step (one micro-batch of 64 completions), up to
128 completion tokens, LoRA on the language model (vlmtune's default trainable parts), one 448x448 image per
prompt (256 image tokens), rewards `accuracy` and `repetition` on ClevrCount-style square-counting prompts. A
random-init model almost never samples a stop token (one id of 151,936), so nearly every completion runs to
`--max_completion_length` (`completion_tokens_per_step` says how many were generated); and it scores 0 on both
rewards, so every group is tied and its advantages are 0: the forward and backward still run over every token,
the same work as in a real step. (The tiny tokenizer knows 800 of the ids, so completions decode to little text.)

Reported over the steps after `--warmup` (the CUDA clock is synchronised at each stamp); the seconds are
medians per step, the rates totals over those steps:
- rollout_s: from the end of the previous optimizer step to the start of this one, i.e. GRPOTrainer's
  `get_batch_samples`: generation (`model.generate`, most of it), rewards, advantages (and the Trainer's logging
  of the previous step);
- train_s: the Trainer's step: training forward and backward over prompt + completion, the optimizer step;
- step_s: the whole optimizer step (rollout_s + train_s); seconds: all timed steps;
- tokens_per_s: real (non-padding) prompt + completion tokens of the training forward per second of step time;
- generated_tokens_per_s: completion tokens (up to and including the stop token) per second of rollout time;
- peak_mem_gib: CUDA max allocated (on CPU: the process's peak RSS).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

SIZE = "qwen2-vl-2b"
TINY = "tiny-qwen2-vl"
# (per-step prompts, generations, max completion tokens, image side in pixels, steps, warmup) of each mode.
WORKLOADS = {"cuda": (8, 8, 128, 448, 4, 1), "dry_run": (2, 2, 8, 32, 3, 1)}


class PhaseClock(TrainerCallback):
    """Stamps the start of training and the start and end of every optimizer step, plus the tokens seen so far.

    The Trainer calls `get_batch_samples` (GRPOTrainer's rollouts) between one step's end and the next one's
    begin, so the gap is the rollout and begin -> end the training forward/backward and optimizer step.
    """

    def __init__(self):
        self.begins: list[float] = []
        self.ends: list[float] = [0.0]  # ends[0]: training start; ends[i]: end of step i
        self.tokens: list[int] = [0]

    @staticmethod
    def now() -> float:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return time.perf_counter()

    def on_train_begin(self, args, state, control, **kwargs):
        self.ends[0] = self.now()
        self.tokens[0] = state.num_input_tokens_seen

    def on_step_begin(self, args, state, control, **kwargs):
        self.begins.append(self.now())

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(self.now())
        self.tokens.append(state.num_input_tokens_seen)

    def phases(self, warmup: int) -> dict[str, list[float]]:
        """Per timed step (steps after `warmup`): rollout, train and step seconds, and training tokens."""
        steps = range(warmup, len(self.begins))
        return {
            "rollout": [self.begins[i] - self.ends[i] for i in steps],
            "train": [self.ends[i + 1] - self.begins[i] for i in steps],
            "step": [self.ends[i + 1] - self.ends[i] for i in steps],
            "tokens": [self.tokens[i + 1] - self.tokens[i] for i in steps],
        }


def write_prompts(folder: Path, count: int, image_side: int, seed: int) -> Path:
    """`count` ClevrCount-style prompts (messages, one image of squares, solution), as `vlmtune grpo` reads them."""
    from vlmtune.apps.demo_grpo import COUNTS, QUESTION, draw_squares

    rng = np.random.default_rng(seed)
    records = []
    for index in range(count):
        answer = int(rng.choice(COUNTS))
        name = f"squares_{index:03d}.png"
        draw_squares(answer, rng, size=image_side).save(folder / name)
        records.append(
            {
                "messages": [{"role": "user", "content": f"<image>{QUESTION}"}],
                "images": [name],
                "solution": str(answer),
            }
        )
    path = folder / "prompts.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


def grpo_argv(args: argparse.Namespace, data: Path, output_dir: Path, cuda: bool) -> list[str]:
    """The `vlmtune grpo` command line of the benchmark run."""
    precision = ["--bf16", "true", "--model_dtype", "bfloat16"] if cuda else ["--use_cpu", "true"]
    return [
        "--model_id", TINY,  # on CUDA only its processor and registry entry; the weights are real-size, random
        "--data_path", str(data),
        "--output_dir", str(output_dir),
        "--llm_mode", "lora",
        "--reward_funcs", "accuracy", "repetition",
        "--num_generations", str(args.num_generations),
        "--max_completion_length", str(args.max_completion_length),
        "--per_device_train_batch_size", str(args.prompts),
        "--max_steps", str(args.steps),
        "--learning_rate", "1e-5",
        "--logging_steps", "1",
        "--log_completions_steps", str(10**6),
        "--activation_checkpointing", "false",
        "--dataloader_num_workers", "0",
        "--disable_tqdm", "true",
        "--report_to", "none",
        "--seed", str(args.seed),
        *precision,
    ]  # fmt: skip


def real_size_model(attention: str):
    """benchmarks/throughput.py's Qwen2-VL-2B-shaped model (random weights, bf16, on CUDA) and processor."""
    spec = importlib.util.spec_from_file_location("throughput", Path(__file__).with_name("throughput.py"))
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    return throughput.sized_model(SIZE, torch.bfloat16, attention)


def run(args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    from vlmtune.grpo.arguments import parse_grpo_args
    from vlmtune.grpo.run import check_grpo_run, grpo_trainer
    from vlmtune.pipeline import load_model_and_collator

    cuda = not args.dry_run
    data = write_prompts(scratch, args.prompts * args.steps, args.image_side, args.seed)
    grpo_args = parse_grpo_args(grpo_argv(args, data, scratch / "out", cuda))
    model_args, data_args, training_args, _ = grpo_args
    # The Trainer's own count of the training forward's tokens (attention mask sums); a value the command line's
    # boolean parsing of this field cannot spell.
    training_args.include_num_input_tokens_seen = "non_padding"
    entry, rewards, prompts = check_grpo_run(*grpo_args)
    torch.manual_seed(args.seed)
    if cuda:
        model, processor = real_size_model(args.attn)
        family = entry.family  # the family's collator, built as load_model_and_collator builds it
        collator = family.collator(
            processor, family.reply_end, data_args.model_max_length, data_args.pad_to_multiple_of
        )
    else:
        model, processor, collator = load_model_and_collator(entry, model_args, data_args)
    clock = PhaseClock()
    trainer = grpo_trainer(entry, model, processor, collator, prompts, rewards, grpo_args, [clock])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    return summarise(args, clock, trainer.state.log_history)


def summarise(args: argparse.Namespace, clock: PhaseClock, log_history: list[dict]) -> dict[str, Any]:
    phases = clock.phases(args.warmup)
    timed = len(phases["step"])
    if timed < 1:
        raise SystemExit(f"no timed step: {len(clock.begins)} step(s) ran, --warmup {args.warmup}")
    # The Trainer logs every step (--logging_steps 1); completions/mean_length is that step's mean over its
    # prompts x generations completions (one micro-batch per step).
    lengths = [entry["completions/mean_length"] for entry in log_history if "completions/mean_length" in entry]
    completion_tokens = [length * args.prompts * args.num_generations for length in lengths[args.warmup :]]
    seconds = sum(phases["step"])
    if torch.cuda.is_available():
        device, peak = torch.cuda.get_device_name(), torch.cuda.max_memory_allocated() / 2**30
    else:
        device = f"CPU ({os.cpu_count()} cores)"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    result = {
        "row": "grpo-step",
        "device": device,
        "model": f"{TINY} (dry run)" if args.dry_run else f"{SIZE} (random init, LoRA)",
        "dtype": "float32" if args.dry_run else "bfloat16",
        "dry_run": args.dry_run,
        "prompts": args.prompts,
        "num_generations": args.num_generations,
        "max_completion_length": args.max_completion_length,
        "image_side": args.image_side,
        "steps": timed,
        "rollout_s": statistics.median(phases["rollout"]),
        "train_s": statistics.median(phases["train"]),
        "step_s": statistics.median(phases["step"]),
        "seconds": seconds,
        "tokens_per_s": sum(phases["tokens"]) / seconds,
        "generated_tokens_per_s": sum(completion_tokens) / sum(phases["rollout"]),
        "completion_tokens_per_step": statistics.mean(completion_tokens),
        "peak_mem_gib": peak,
    }
    return result


def markdown_row(result: dict[str, Any]) -> str:
    header = (
        "| model | prompts x generations | max completion | rollout s | train s | step s | tok/s "
        "| generated tok/s | peak mem (GiB) | device |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    row = (
        f"| {result['model']} | {result['prompts']} x {result['num_generations']} "
        f"| {result['max_completion_length']} | {result['rollout_s']:.2f} | {result['train_s']:.2f} "
        f"| {result['step_s']:.2f} | {result['tokens_per_s']:,.0f} | {result['generated_tokens_per_s']:,.0f} "
        f"| {result['peak_mem_gib']:.2f} | {result['device']} |"
    )
    return f"{header}\n{row}"


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry_run", action="store_true", help="tiny-qwen2-vl, tiny sizes (automatic without CUDA)")
    parser.add_argument("--prompts", type=int, help="prompts per optimizer step (CUDA 8, dry run 2)")
    parser.add_argument("--num_generations", type=int, help="completions per prompt (CUDA 8, dry run 2)")
    parser.add_argument("--max_completion_length", type=int, help="completion tokens at most (CUDA 128, dry run 8)")
    parser.add_argument("--image_side", type=int, help="side of each prompt's square image (CUDA 448, dry run 32)")
    parser.add_argument("--steps", type=int, help="optimizer steps, the first --warmup untimed (CUDA 4, dry run 3)")
    parser.add_argument("--warmup", type=int, help="untimed first steps (1)")
    parser.add_argument("--attn", default="sdpa", help="CUDA: attention kernel of the real-size model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: running the dry run (tiny-qwen2-vl, tiny sizes)")
        args.dry_run = True
    defaults = WORKLOADS["dry_run" if args.dry_run else "cuda"]
    names = ("prompts", "num_generations", "max_completion_length", "image_side", "steps", "warmup")
    for name, default in zip(names, defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.warmup < 1 or args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup, and --warmup must be at least 1 (the first step is untimed)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    with tempfile.TemporaryDirectory() as scratch:
        result = run(args, Path(scratch))
    print(markdown_row(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
