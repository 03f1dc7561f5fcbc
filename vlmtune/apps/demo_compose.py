"""The compose demo: build a VLM from a tiny SigLIP tower and a tiny Qwen3 LLM, then train it in LLaVA's two stages
on scikit-learn's handwritten digits, on CPU.

    python -m vlmtune.apps.demo_compose                      # what `make demo-compose` runs
    python -m vlmtune.apps.demo_compose --output_dir demo_compose_output --stage2_epochs 8
    python -m vlmtune.apps.demo_compose --projector pixel_shuffle --output_dir demo_pixel_shuffle  # Idefics3's

1. `vlmtune compose --vision tiny-siglip --llm tiny-qwen3` (random parts: the point is the recipe, not the parts);
2. stage 1 with configs/compose/llava15_stage1.yaml: only the projector trains (LLM and tower frozen);
3. stage 2 with configs/compose/llava15_stage2_full.yaml, started from stage 1's output with --model_local_path.
The recipes' GPU settings (bf16, batch 256/128, one epoch of 558K/665K samples) are overridden for 1,497 digits
on a CPU: float32, batch 16, several epochs, higher learning rates (a random tiny LLM is far from a trained one).
Held-out accuracy is measured by greedy generation after each stage; the exit status is 1 below 90% after stage 2.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from vlmtune.apps.demo import TARGET_ACCURACY, accuracy, write_digits_dataset
from vlmtune.arguments import CommandParser, parse_args
from vlmtune.compose.build import compose
from vlmtune.core.outputs import run_model_args
from vlmtune.supported_models import get_family
from vlmtune.train import train

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "compose"  # the repository's configs/compose


def run_stage(
    recipe: str,
    family_id: str,
    model_dir: Path,
    output_dir: Path,
    train_path: Path,
    epochs: float,
    lr: float,
    seed: int,
):
    """Train one stage from `model_dir` with a recipe file plus the CPU-scale overrides; returns the trainer."""
    argv = [
        "--config", str(CONFIGS / recipe), "--model_id", family_id,
        "--model_local_path", str(model_dir),
        "--data_path", str(train_path),
        "--output_dir", str(output_dir),
        "--model_dtype", "float32", "--bf16", "false", "--use_cpu", "true", "--activation_checkpointing", "false",
        "--per_device_train_batch_size", "16", "--gradient_accumulation_steps", "1",
        "--num_train_epochs", str(epochs), "--learning_rate", str(lr),
        "--model_max_length", "512", "--logging_steps", "20", "--seed", str(seed),
    ]  # fmt: skip
    return train(*parse_args(argv))


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m vlmtune.apps.demo_compose",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--output_dir", default="demo_compose_output", help="Where data, models and curves go.")
    parser.add_argument("--stage1_epochs", type=float, default=4, help="Projector-only epochs over the digits.")
    parser.add_argument("--stage1_lr", type=float, default=1e-2, help="Stage-1 peak learning rate.")
    parser.add_argument("--stage2_epochs", type=float, default=6, help="Full-LLM epochs over the digits.")
    parser.add_argument("--stage2_lr", type=float, default=1e-3, help="Stage-2 peak learning rate.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data split, the projector and training.")
    parser.add_argument(
        "--projector", default="mlp2x_gelu", help="vlmtune compose's --projector (pixel_shuffle: Idefics3's class)."
    )
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)

    output_dir = Path(args.output_dir)
    train_path, eval_path = write_digits_dataset(output_dir / "data", seed=args.seed)
    composed = output_dir / "composed"
    if not (composed / "config.json").exists():
        compose("tiny-siglip", "tiny-qwen3", composed, projector=args.projector, seed=args.seed)
    family_id = run_model_args(composed)["model_id"]  # llava-composed, or idefics3-composed for pixel_shuffle
    print(f"composed tiny-siglip + tiny-qwen3 into {composed} ({family_id})", flush=True)
    family = get_family(family_id)
    model, processor = family.load(str(composed))
    before = accuracy(model, family.collator(processor, family.reply_end, 512), eval_path)
    print(f"held-out accuracy of the composed model: {before:.1%} (chance: 10%)", flush=True)
    started = time.time()
    scores = []
    for stage, recipe, epochs, lr in (
        (1, "llava15_stage1.yaml", args.stage1_epochs, args.stage1_lr),
        (2, "llava15_stage2_full.yaml", args.stage2_epochs, args.stage2_lr),
    ):
        source = composed if stage == 1 else output_dir / "stage1"
        trainer = run_stage(recipe, family_id, source, output_dir / f"stage{stage}", train_path, epochs, lr, args.seed)
        collator = family.collator(trainer.processing_class, family.reply_end, 512)
        scores.append(accuracy(trainer.model, collator, eval_path))
        print(f"held-out accuracy after stage {stage}: {scores[-1]:.1%} ({time.time() - started:.0f} s)", flush=True)
    print(f"stage-2 model: {output_dir / 'stage2'} (loads with AutoModelForImageTextToText.from_pretrained)")
    if scores[-1] < TARGET_ACCURACY:
        print(f"below the {TARGET_ACCURACY:.0%} target after stage 2", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
