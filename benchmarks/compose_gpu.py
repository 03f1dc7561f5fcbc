"""The compose recipe at real size on one GPU: step time and peak memory of LLaVA's stages, extrapolated to its data.

    python benchmarks/compose_gpu.py --dry_run            # CPU: build the configs, count parameters and image tokens
    python benchmarks/compose_gpu.py                      # CUDA: every row, a markdown table (docs/benchmarks.md)
    python benchmarks/compose_gpu.py --rows stage1 --steps 20

The model: a SigLIP so400m-patch14-384 tower (27 layers, 1152 wide, 729 image tokens per image) and a
Qwen3-0.6B-shaped language model (28 layers, 1024 wide, vocabulary 151,936, tied embeddings), both with random
weights, composed by `vlmtune compose` (so the real compose path runs at real size) and trained in bf16 with
vlmtune's own `train` and the recipe files in configs/compose/ (overridden here: `--max_steps`, no
gradient accumulation, the per-device batch below). Rows:
- stage1: configs/compose/llava15_stage1.yaml (projector only), per-device batch 32;
- stage2-lora: llava15_stage2_lora.yaml (LoRA r128/alpha256 on the LLM, projector full), per-device batch 16;
- stage2-full: llava15_stage2_full.yaml (LLM and projector full), per-device batch 16.
Data: synthetic LLaVA-format samples, one 384x384 image each; stage 1 a one-sentence caption (as LLaVA's 558K
BLIP captions), stage 2 a question and a ~100-word answer (LLaVA's 665K mix is longer on average and has
multi-turn samples: the extrapolation is a lower bound for stage 2). The tokenizer is vlmtune's tiny trained BPE,
so text tokens per word differ from Qwen's; the image tokens (729), which dominate, are exact.

Columns: seconds per optimizer step at the per-device batch (median after `--warmup` steps), samples/s, peak CUDA
memory (max allocated), and the hours one GPU would take for LLaVA-1.5's 558K (stage 1) / 665K (stage 2) samples
at that rate (data loading included, as in a real run; 8 GPUs: divide by about 8).
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "stage1": ("llava15_stage1.yaml", 32, 558_000),
    "stage2-lora": ("llava15_stage2_lora.yaml", 16, 665_000),
    "stage2-full": ("llava15_stage2_full.yaml", 16, 665_000),
}
IMAGE_SIZE, PATCH_SIZE = 384, 14


def vision_config():
    from transformers import SiglipVisionConfig

    # google/siglip-so400m-patch14-384's vision tower.
    return SiglipVisionConfig(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=27,
        num_attention_heads=16,
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        vision_use_head=False,
    )


def text_config(tokenizer):
    from transformers import Qwen3Config

    # Qwen/Qwen3-0.6B's shape; the special-token ids are the (tiny) tokenizer's.
    return Qwen3Config(
        vocab_size=151_936,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=40_960,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def chatml_tokenizer():
    from vlmtune.loaders.tiny import train_tokenizer

    return train_tokenizer(
        {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )


def dry_run() -> dict:
    """The configs and what they imply, built on the meta device (no memory, no GPU)."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    config = LlavaConfig(
        vision_config=vision_config(),
        text_config=text_config(chatml_tokenizer()),
        vision_feature_layer=-2,
        vision_feature_select_strategy="full",
        image_seq_length=(IMAGE_SIZE // PATCH_SIZE) ** 2,
    )
    with torch.device("meta"):
        model = LlavaForConditionalGeneration(config)
    count = {
        part: sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix))
        for part, prefix in (
            ("vision", "model.vision_tower."),
            ("projector", "model.multi_modal_projector."),
            ("llm", "model.language_model."),
        )
    }
    return {"image_tokens": config.image_seq_length, "parameters": count, "rows": list(RECIPES)}


def build_parts(folder: Path) -> tuple[Path, Path]:
    """Random-weight SigLIP so400m-384 and Qwen3-0.6B-shaped checkpoints, written as compose reads them."""
    from transformers import Qwen3ForCausalLM, SiglipImageProcessor, SiglipVisionModel

    vision, llm = folder / "siglip", folder / "qwen3"
    torch.manual_seed(0)
    SiglipVisionModel(vision_config()).to(torch.bfloat16).save_pretrained(vision)
    SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}).save_pretrained(vision)
    tokenizer = chatml_tokenizer()
    Qwen3ForCausalLM(text_config(tokenizer)).to(torch.bfloat16).save_pretrained(llm)
    tokenizer.save_pretrained(llm)
    return vision, llm


def write_data(folder: Path, stage: str, count: int) -> Path:
    """`count` LLaVA-format samples with a 384x384 noise image: a caption (stage 1) or a long answer (stage 2)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    words = "the a small large red blue cat dog sits on near table window street and with of in picture shows".split()
    records = []
    for i in range(count):
        image = folder / f"{i % 32}.png"
        if not image.exists():
            Image.fromarray(rng.integers(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)).save(image)
        length = 12 if stage == "stage1" else 100
        answer = " ".join(rng.choice(words, length)).capitalize() + "."
        prompt = "<image>\nDescribe the image briefly." if stage == "stage1" else "<image>\nWhat is happening here?"
        turns = [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}]
        records.append({"image": str(image), "conversations": turns})
    path = folder / f"{stage}.json"
    path.write_text(json.dumps(records))
    return path


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


class StepTimer(TrainerCallback):
    """Wall-clock seconds of each optimizer step (data loading of the step included)."""

    def __init__(self):
        self.times: list[float] = []
        self.started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        synchronize()
        self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        synchronize()
        self.times.append(time.perf_counter() - self.started)


def run_row(row: str, composed: Path, folder: Path, steps: int, warmup: int, extra: tuple[str, ...] = ()) -> dict:
    """Train one row; `extra` arguments override the recipe (the CPU smoke test runs a tiny model this way)."""
    from vlmtune.arguments import parse_args
    from vlmtune.train import train

    recipe, batch, samples = RECIPES[row]
    data = write_data(folder, row, batch * (steps + 1))
    argv = [
        "--config", str(ROOT / "configs" / "compose" / recipe), "--model_local_path", str(composed),
        "--data_path", str(data), "--output_dir", str(folder / row), "--max_steps", str(steps),
        "--per_device_train_batch_size", str(batch), "--gradient_accumulation_steps", "1",
        "--dataloader_num_workers", "4", "--save_strategy", "no", "--disable_tqdm", "true", *extra,
    ]  # fmt: skip
    timer = StepTimer()
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    trainer = train(*parse_args(argv), callbacks=[timer])
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    step = statistics.median(timer.times[warmup:])
    del trainer
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return {
        "row": row,
        "batch": batch,
        "s/step": step,
        "samples/s": batch / step,
        "peak GiB": peak,
        "samples": samples,
        "hours (1 GPU)": samples / (batch / step) / 3600,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dry_run", action="store_true", help="Build the configs only (CPU); print what they imply.")
    parser.add_argument("--rows", nargs="+", choices=list(RECIPES), default=list(RECIPES), help="Rows to run.")
    parser.add_argument("--steps", type=int, default=12, help="Optimizer steps per row.")
    parser.add_argument("--warmup", type=int, default=4, help="First steps left out of the median.")
    args = parser.parse_args(argv)
    if args.dry_run:
        print(json.dumps(dry_run(), indent=1))
        return 0
    if not torch.cuda.is_available():
        print("compose_gpu.py needs a CUDA GPU (use --dry_run on a CPU)", file=sys.stderr)
        return 2
    from vlmtune.compose.build import compose

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        composed = compose(*map(str, build_parts(folder)), folder / "composed")
        print(f"built and composed the parts in {time.perf_counter() - started:.0f} s", flush=True)
        results = [run_row(row, composed, folder, args.steps, args.warmup) for row in args.rows]
    print(f"\n{torch.cuda.get_device_name()}, bf16, {(IMAGE_SIZE // PATCH_SIZE) ** 2} image tokens per sample\n")
    print("| row | per-device batch | s/step | samples/s | peak memory (GiB) | LLaVA-1.5 samples | hours on 1 GPU |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['row']} | {r['batch']} | {r['s/step']:.3f} | {r['samples/s']:.1f} | {r['peak GiB']:.1f} "
            f"| {r['samples']:,} | {r['hours (1 GPU)']:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
