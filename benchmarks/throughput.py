"""Training throughput, side by side on the same model, the same data and the same machine.

    python benchmarks/throughput.py                        # CPU: tiny-qwen2-vl, every row, a markdown table
    python benchmarks/throughput.py --model_id tiny-llava-1.5 --repeats 3
    python benchmarks/throughput.py --size qwen2-vl-2b     # GPU: real-size architecture, random weights
    python benchmarks/throughput.py --size qwen2-vl-7b --activation_checkpointing

Rows (each runs in its own subprocess, so that peak memory is its own):
- `vlmtune`: the default, batches padded to their longest sample, random order;
- `vlmtune+group`: `--group_by_length` (estimated lengths, vlmtune.data.lengths);
- `vlmtune+packing`: `--packing`, one padding-free row per batch (vlmtune.core.packing);
- `pad-to-max`: what a minimal toolkit does: every sample padded to `model_max_length`, processor per sample;
- `trl`: TRL's `SFTTrainer` with its `DataCollatorForVisionLanguageModeling` (if `trl` is installed; it is
  not in requirements.txt: `pip install trl==1.16.0`, the version checked against transformers 5.23).

Every row trains the same model (the family's default trainable parts: LoRA on the language model, the
projector fully) with the HF Trainer for the same number of steps at the same batch size, on the same data:
a mix built from scikit-learn's digits (varied answer lengths, single- and multi-turn, 1-2 images of varied
sizes and aspect ratios, some samples text-only). The first `--warmup` steps are not timed.

Columns:
- effective tok/s: non-padding tokens (image tokens included) per second of wall-clock time;
- tok/CPU-s: the same per second of this process's CPU time, which other jobs on a shared machine disturb
  less than the wall clock (the medians of `--repeats` runs are shown);
- samples/s; padding: the fraction of processed token slots that were padding;
- peak mem: CUDA max allocated on a GPU, else the process's peak RSS (model, data and Python included);
- MFU (GPU only): model FLOPs per second / the device's peak (`--peak_tflops`, default 989 = H100/H200 bf16
  dense). FLOPs convention: 6 * N * tokens for every part that is trained or that gradients pass through (the
  language model, also under LoRA: the usual convention), 2 * N * patches for a frozen vision tower (forward
  only), 6 * N * patches when it trains; plus attention 6 * layers * hidden * sum(len^2) over the real sample
  lengths (forward: 4 * len^2 * hidden per layer for scores and values, halved by the causal mask; x3 with
  the backward). N excludes embedding tables; the projector counts with the language model
  (an overcount below 1% of N for Qwen2-VL-7B). Padding is never counted as useful work.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from transformers import TrainerCallback

ROWS = ("vlmtune", "vlmtune+group", "vlmtune+packing", "pad-to-max", "trl")
TRL_VERSION = "1.16.0"
WORDS = "the digit is written in black ink on a white page and it looks like a number that".split()
DIGIT_NAMES = "zero one two three four five six seven eight nine".split()

# Real-size Qwen2-VL architectures (from the released configs), built with random weights: nothing downloaded.
SIZES: dict[str, dict[str, Any]] = {
    "qwen2-vl-2b": {
        "text": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28},
        "text_heads": (12, 2),
        "tie_word_embeddings": True,
    },
    "qwen2-vl-7b": {
        "text": {"hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28},
        "text_heads": (28, 4),
        "tie_word_embeddings": False,
    },
}


# --- the data mix -----------------------------------------------------------------------------------------


def build_data(folder: Path, count: int, seed: int, max_side: int) -> Path:
    """`count` LLaVA-format samples over digit images of varied sizes; returns the train.json path."""
    from sklearn.datasets import load_digits

    rng = random.Random(seed)
    digits = load_digits()
    records = []
    for i in range(count):
        kind = rng.random()
        n_images = 0 if kind < 0.2 else (1 if kind < 0.75 else 2)
        images, labels = [], []
        for j in range(n_images):
            index = rng.randrange(len(digits.images))
            width, height = rng.randint(28, max_side), rng.randint(28, max_side)
            pixels = (digits.images[index] / 16.0 * 255).astype(np.uint8)
            name = f"img{i}_{j}.png"
            Image.fromarray(pixels).resize((width, height), Image.NEAREST).convert("RGB").save(folder / name)
            images.append(name)
            labels.append(DIGIT_NAMES[digits.target[index]])
        # Answer lengths from 1 to ~150 words, log-uniform: many short answers, a few long ones.
        words = int(round(np.exp(rng.uniform(0, np.log(150)))))
        answer = " ".join([*labels, *(WORDS[(i + k) % len(WORDS)] for k in range(words))]) + "."
        question = "<image>\n" * n_images + ("Which digits are shown?" if images else "Tell me about digits.")
        turns = [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
        if rng.random() < 0.3:
            turns += [{"from": "human", "value": "Are you sure?"}, {"from": "gpt", "value": "Yes, I am sure."}]
        record: dict[str, Any] = {"conversations": turns}
        if images:
            record["image"] = images
        records.append(record)
    path = folder / "train.json"
    path.write_text(json.dumps(records))
    return path


# --- counting what each batch holds -----------------------------------------------------------------------


class CountingCollator:
    """Wraps a collator and records, per batch: samples, real tokens, token slots, sum of len^2, vision patches."""

    def __init__(self, collator, patch_area: int):
        self.collator = collator
        self.patch_area = patch_area
        self.batches: list[dict[str, int]] = []

    def __call__(self, features):
        batch = self.collator(features)
        input_ids = batch["input_ids"]
        if batch.get("attention_mask") is not None:
            lengths = batch["attention_mask"].sum(dim=1).tolist()
        else:  # packed rows: the encoded samples' own lengths (a row's padding segment is not a sample)
            lengths = [len(feature["input_ids"]) for feature in features]
        pixels = batch.get("pixel_values")
        if pixels is None:
            patches = 0
        elif pixels.dim() == 2:  # Qwen-VL: one row per patch
            patches = pixels.shape[0]
        else:  # [images, channels, height, width] (or with a tile dim): area / patch area
            patches = pixels[..., 0, :, :].numel() // self.patch_area
        self.batches.append(
            {
                "samples": len(features),
                "tokens": int(sum(lengths)),
                "slots": int(input_ids.numel()),
                "square": int(sum(length * length for length in lengths)),
                "patches": int(patches),
            }
        )
        return batch


class StepClock(TrainerCallback):
    """Stamps the wall-clock and the process CPU time at the end of every optimizer step."""

    def __init__(self):
        self.stamps: list[float] = []
        self.cpu_stamps: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.stamps.append(time.perf_counter())
        self.cpu_stamps.append(time.process_time())


# --- models -----------------------------------------------------------------------------------------------


def sized_model(size: str, dtype: torch.dtype, attention: str, device: str = "cuda"):
    """A real-size Qwen2-VL with random weights and the tiny processor set to the released pixel budget."""
    from transformers import AutoModelForImageTextToText, Qwen2VLConfig

    from vlmtune.core.modeling import checkpoint_path
    from vlmtune.supported_models import get_model

    entry = get_model("tiny-qwen2-vl")
    _, processor = entry.family.load(checkpoint_path(entry))
    processor.image_processor.size.shortest_edge = 56 * 56
    processor.image_processor.size.longest_edge = 28 * 28 * 1280  # the released max_pixels
    tiny = Qwen2VLConfig.from_pretrained(checkpoint_path(entry))
    spec = SIZES[size]
    heads, kv_heads = spec["text_heads"]
    text = {
        **spec["text"],
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "vocab_size": 151936,  # the real table; the tiny tokenizer's ids all fall inside it
        "max_position_embeddings": 32768,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        "bos_token_id": tiny.text_config.bos_token_id,
        "eos_token_id": tiny.text_config.eos_token_id,
        "pad_token_id": tiny.text_config.pad_token_id,
    }
    vision = {
        "depth": 32,
        "embed_dim": 1280,
        "hidden_size": spec["text"]["hidden_size"],
        "num_heads": 16,
        "mlp_ratio": 4,
    }
    config = Qwen2VLConfig(
        text_config=text,
        vision_config=vision,
        image_token_id=tiny.image_token_id,
        video_token_id=tiny.video_token_id,
        vision_start_token_id=tiny.vision_start_token_id,
        vision_end_token_id=tiny.vision_end_token_id,
        tie_word_embeddings=spec["tie_word_embeddings"],
    )
    with torch.device(device):
        model = AutoModelForImageTextToText.from_config(config, attn_implementation=attention, dtype=dtype)
    return model, processor


def load(args):
    from vlmtune.arguments import ModelArguments
    from vlmtune.core.modeling import load_model
    from vlmtune.supported_models import get_model

    model_id = "tiny-qwen2-vl" if args.size else args.model_id
    model_args = ModelArguments(model_id=model_id, llm_mode=args.llm_mode, attn_implementation=args.attn)
    if args.size:
        model, processor = sized_model(args.size, torch.bfloat16, args.attn or "sdpa")
    else:
        model, processor = load_model(get_model(model_id), model_args)
    return get_model(model_id), model, processor, model_args


# --- one row ----------------------------------------------------------------------------------------------


def training_arguments(args, output_dir: str, cls):
    return cls(
        output_dir=output_dir,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=1e-4,
        logging_steps=10**6,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        seed=args.seed,
        use_cpu=not torch.cuda.is_available(),
        bf16=torch.cuda.is_available(),
        dataloader_num_workers=0,
        activation_checkpointing=args.activation_checkpointing,
        remove_unused_columns=False,
    )


def vlmtune_trainer(row: str, args, entry, model, processor, model_args, callbacks):
    from vlmtune.arguments import DataArguments, TrainingArguments
    from vlmtune.core.modeling import set_trainable
    from vlmtune.core.packing import packing_collator
    from vlmtune.core.trainer import VLMTrainer
    from vlmtune.data.lengths import cached_lengths
    from vlmtune.pipeline import lazy_dataset, read_data

    family = entry.family
    data_args = DataArguments(data_path=str(args.data), model_max_length=args.model_max_length)
    samples = read_data(data_args.data_path, family, data_args)
    pad_to = args.model_max_length if row == "pad-to-max" else None  # every batch padded to model_max_length
    collator = family.collator(processor, family.reply_end, args.model_max_length, pad_to)
    dataset = lazy_dataset(samples, family, collator, data_args)
    training_args = training_arguments(args, args.output, TrainingArguments)
    if row == "vlmtune+group":
        training_args.train_sampling_strategy = "group_by_length"
        dataset.lengths = cached_lengths(samples, collator, None)
    batcher = packing_collator(model, family, collator) if row == "vlmtune+packing" else collator
    model = set_trainable(model, family.modules, model_args, args.activation_checkpointing)
    counting = CountingCollator(batcher, patch_area(model))
    trainer = VLMTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=counting,
        processing_class=processor,
        prefixes=family.modules,
        part_lrs={},
        callbacks=callbacks,
    )
    return trainer, counting


def trl_trainer(args, entry, model, processor, model_args, callbacks):
    import datasets
    from trl import SFTConfig, SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

    from vlmtune.core.modeling import set_trainable

    rows = []
    for record in json.loads(Path(args.data).read_text()):
        roles = {"human": "user", "gpt": "assistant"}
        messages = [
            {"role": roles[turn["from"]], "content": turn["value"].replace("<image>\n", "")}
            for turn in record["conversations"]
        ]
        images = [Image.open(args.data.parent / name).convert("RGB") for name in record.get("image", [])]
        rows.append({"messages": messages, "images": images})
    dataset = datasets.Dataset.from_list(rows)
    model = set_trainable(model, entry.family.modules, model_args, args.activation_checkpointing)
    collator = DataCollatorForVisionLanguageModeling(processor, max_length=args.model_max_length)
    counting = CountingCollator(collator, patch_area(model))
    config = training_arguments(args, args.output, SFTConfig)
    config.max_length = args.model_max_length
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=processor,
        data_collator=counting,
        callbacks=callbacks,
    )
    return trainer, counting


def patch_area(model) -> int:
    vision = getattr(model.config, "vision_config", None)
    patch = getattr(vision, "patch_size", 14) if vision is not None else 14
    return patch * patch


def flops(counts: dict[str, int], model, prefixes, vision_trains: bool) -> float:
    """Model FLOPs of the counted batches (the convention in this module's docstring)."""
    from vlmtune.core.modeling import part_of

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    sizes = {"vision": 0, "text": 0}
    for name, parameter in base.named_parameters():
        if "embed_tokens" in name or "lora_" in name or "original_module" in name:
            continue  # embeddings are lookups; adapters are tiny; PEFT keeps a frozen copy of saved modules
        part = part_of(name, prefixes)
        sizes["vision" if part == "vision_encoder" else "text"] += parameter.numel()
    text_config = base.config.get_text_config()
    attention = 6 * text_config.num_hidden_layers * text_config.hidden_size * counts["square"]
    vision_factor = 6 if vision_trains else 2
    return 6 * sizes["text"] * counts["tokens"] + vision_factor * sizes["vision"] * counts["patches"] + attention


def run_row(args) -> dict[str, Any]:
    torch.manual_seed(args.seed)
    entry, model, processor, model_args = load(args)
    clock = StepClock()
    if args.row == "trl":
        trainer, counting = trl_trainer(args, entry, model, processor, model_args, [clock])
    else:
        trainer, counting = vlmtune_trainer(args.row, args, entry, model, processor, model_args, [clock])
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    trainer.train()
    timed = counting.batches[args.warmup : len(clock.stamps)]
    seconds = clock.stamps[-1] - clock.stamps[args.warmup - 1]
    cpu_seconds = clock.cpu_stamps[-1] - clock.cpu_stamps[args.warmup - 1]
    totals = {key: sum(batch[key] for batch in timed) for key in timed[0]}
    result = {
        "row": args.row,
        "tokens_per_s": totals["tokens"] / seconds,
        "tokens_per_cpu_s": totals["tokens"] / cpu_seconds,
        "samples_per_s": totals["samples"] / seconds,
        "padding": 1 - totals["tokens"] / totals["slots"],
        "steps": len(timed),
        "seconds": seconds,
    }
    model_flops = flops(totals, trainer.model, entry.family.modules, args.vision_trains)
    result["model_tflops_per_s"] = model_flops / seconds / 1e12
    if torch.cuda.is_available():
        result["peak_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
        result["mfu"] = result["model_tflops_per_s"] / args.peak_tflops
    else:
        result["peak_mem_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux
    return result


# --- the table --------------------------------------------------------------------------------------------


def format_table(results: dict[str, list[dict[str, Any]]], reference: str = "pad-to-max") -> str:
    lines = [
        "| row | effective tok/s | vs pad-to-max | tok/CPU-s | vs pad-to-max | samples/s | padding "
        "| peak mem (GiB) | MFU |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    medians = {
        row: {key: statistics.median(r[key] for r in runs) for key in runs[0] if key != "row"}
        for row, runs in results.items()
        if runs
    }
    base = medians.get(reference, {}).get("tokens_per_s")
    cpu_base = medians.get(reference, {}).get("tokens_per_cpu_s")
    for row, runs in results.items():
        if not runs:
            continue
        m = medians[row]
        ratio = f"{m['tokens_per_s'] / base:.2f}x" if base else "-"
        cpu_ratio = f"{m['tokens_per_cpu_s'] / cpu_base:.2f}x" if cpu_base else "-"
        mfu = f"{100 * m['mfu']:.1f}%" if "mfu" in m else "-"
        lines.append(
            f"| {row} | {m['tokens_per_s']:,.0f} | {ratio} | {m['tokens_per_cpu_s']:,.0f} | {cpu_ratio} "
            f"| {m['samples_per_s']:.2f} | {100 * m['padding']:.1f}% "
            f"| {m['peak_mem_gib']:.2f} | {mfu} |"
        )
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--model_id", default="tiny-qwen2-vl", help="registered model id (CPU: a tiny-* id)")
    parser.add_argument("--size", choices=sorted(SIZES), help="GPU: a real-size Qwen2-VL with random weights")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated rows among {', '.join(ROWS)}")
    parser.add_argument("--samples", type=int, default=160, help="samples in the data mix")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="optimizer steps per row (the first --warmup untimed)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--model_max_length", type=int, default=2048, help="vlmtune's default")
    parser.add_argument("--max_side", type=int, default=448, help="largest image side in pixels in the mix")
    parser.add_argument("--repeats", type=int, default=1, help="runs per row; the table shows medians")
    parser.add_argument("--llm_mode", default="lora", choices=["lora", "full"])
    parser.add_argument("--attn", default=None, help="attention kernel (default: the model's; GPU: sdpa)")
    parser.add_argument("--activation_checkpointing", action="store_true")
    parser.add_argument("--peak_tflops", type=float, default=989.0, help="device peak for MFU (bf16 dense)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data_dir", type=Path, help="where to write the data mix (default: a temp folder)")
    parser.add_argument("--json", type=Path, help="also write every run's numbers to this JSON file")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row in this process
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.vision_trains = False  # the default --vision_mode frozen
    if args.warmup < 1 or args.steps <= args.warmup:
        parser.error("--steps must exceed --warmup, and --warmup must be at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    if args.row:  # a child process: one row, numbers to args.result
        args.result.write_text(json.dumps(run_row(args)))
        return
    if args.size and not torch.cuda.is_available():
        raise SystemExit("--size builds a real-size model for a GPU; on CPU use a tiny-* --model_id")
    rows = [row.strip() for row in args.rows.split(",") if row.strip()]
    unknown = sorted(set(rows) - set(ROWS))
    if unknown:
        raise SystemExit(f"unknown rows {unknown}; choose among {', '.join(ROWS)}")
    if "trl" in rows and importlib.util.find_spec("trl") is None:
        print(f"skipping trl: not installed (pip install trl=={TRL_VERSION}; kept out of requirements.txt)")
        rows.remove("trl")
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        data = build_data(data_dir, args.samples, args.seed, args.max_side)
        results: dict[str, list[dict[str, Any]]] = {row: [] for row in rows}
        passthrough = list(argv if argv is not None else sys.argv[1:])  # a child ignores --rows and --repeats
        for repeat in range(args.repeats):
            for row in rows:  # interleaved, so that a slow spell of a shared machine hits every row alike
                result_file = Path(scratch) / f"{row}-{repeat}.json"
                command = [sys.executable, __file__, *passthrough, "--row", row, "--result", str(result_file)]
                command += ["--data", str(data), "--output", str(Path(scratch) / "out")]
                child = subprocess.run(command, capture_output=True, text=True)
                if child.returncode != 0:
                    print(f"{row}: failed\n{child.stderr[-3000:]}", file=sys.stderr)
                    continue
                results[row].append(json.loads(result_file.read_text()))
                print(f"{row} (run {repeat + 1}/{args.repeats}): {results[row][-1]['tokens_per_s']:,.0f} tok/s")
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    model = args.size or args.model_id
    print(
        f"\n{model}, {args.samples} samples, batch {args.batch_size}, {args.steps - args.warmup} timed steps, "
        f"model_max_length {args.model_max_length}, {device}, {time.strftime('%Y-%m-%d')}\n"
    )
    print(format_table(results))
    if args.json:
        args.json.write_text(json.dumps({"device": device, "model": model, "results": results}, indent=1))


if __name__ == "__main__":
    main()
