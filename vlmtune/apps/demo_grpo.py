"""The GRPO demo: a tiny VLM learns to count squares from a reward alone, on CPU, in minutes.

    python -m vlmtune.apps.demo_grpo                  # what `make demo-grpo` runs
    python -m vlmtune.apps.demo_grpo --shuffle_images # control: images shuffled across prompts, stays at chance

It draws count-the-shapes images with PIL ("How many squares are in the image?", 1-5 squares), then:
1. SFT (`vlmtune.train.train`, full finetune of the random tiny model) on *random* answers: the model learns the
   answer format (one digit 1-5 and the end of turn) but nothing about the images, so it answers at chance.
2. GRPO (`vlmtune.grpo.run.grpo`) from that SFT output, with the `accuracy` reward against the true count only.
Held-out accuracy is measured by greedy generation before and after GRPO; the exit status is 1 unless it starts
at or below 50% and ends at or above 80%.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vlmtune.apps.demo import accuracy
from vlmtune.arguments import CommandParser, DataArguments, ModelArguments, TrainingArguments
from vlmtune.grpo.arguments import GRPOArguments
from vlmtune.grpo.run import grpo
from vlmtune.train import train

QUESTION = "How many squares are in the image?"
PROMPT = f"<image>\n{QUESTION}"  # one prompt form for SFT, GRPO/DPO prompts and held-out samples
COUNTS = (1, 2, 3, 4, 5)
BEFORE_AT_MOST, AFTER_AT_LEAST = 0.5, 0.8


def draw_squares(count: int, rng: np.random.Generator, size: int = 32, grid: int = 4) -> Image.Image:
    """`count` black squares on white, each in its own cell of a grid x grid layout (never overlapping), with a
    little jitter inside the cell. The cells match the tiny models' 8-pixel patches at 32x32."""
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    cell = size // grid
    square = cell - 2
    for index in rng.choice(grid * grid, size=count, replace=False):
        x = (index % grid) * cell + int(rng.integers(0, cell - square + 1))
        y = (index // grid) * cell + int(rng.integers(0, cell - square + 1))
        draw.rectangle([x, y, x + square - 1, y + square - 1], fill="black")
    return image


def write_counting_data(folder: Path, num_train: int, num_eval: int, seed: int, shuffle_images: bool) -> dict:
    """sft.json (random answers), grpo.jsonl (ClevrCount layout: messages, images, solution), eval.json."""
    rng = np.random.default_rng(seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    counts = rng.choice(COUNTS, size=num_train + num_eval)
    names = []
    for index, count in enumerate(counts):
        name = f"images/squares_{index:05d}.png"
        draw_squares(int(count), rng).save(folder / name)
        names.append(name)
    train_names = names[:num_train]
    if shuffle_images:  # the control: a prompt's image no longer shows its solution's count
        train_names = list(rng.permutation(train_names))

    def conversation(name: str, answer: int) -> dict:
        return {
            "image": name,
            "conversations": [
                {"from": "human", "value": PROMPT},
                {"from": "gpt", "value": str(answer)},
            ],
        }

    paths = {"sft": folder / "sft.json", "grpo": folder / "grpo.jsonl", "eval": folder / "eval.json"}
    random_answers = rng.choice(COUNTS, size=num_train)
    paths["sft"].write_text(json.dumps([conversation(n, int(a)) for n, a in zip(names, random_answers, strict=False)]))
    # The prompt text is the SFT and held-out samples' own (`PROMPT`): a policy trained on one prompt form and scored
    # on another answered the training form only (seed 2 at two threads, 22%, before 2026-12-08).
    prompts = [
        {"messages": [{"role": "user", "content": PROMPT}], "images": [n], "solution": str(int(c))}
        for n, c in zip(train_names, counts[:num_train], strict=True)
    ]
    paths["grpo"].write_text("\n".join(json.dumps(p) for p in prompts) + "\n")
    held_out = [conversation(n, int(c)) for n, c in zip(names[num_train:], counts[num_train:], strict=True)]
    paths["eval"].write_text(json.dumps(held_out))
    return paths


# Both counting demos (GRPO and DPO) fully finetune the random tiny model, in every stage.
FULL_FINETUNE = {"llm_mode": "full", "vision_mode": "full", "train_projector": True}


def run_settings(seed: int) -> dict:
    """The training arguments every stage of the counting demos shares."""
    return {"use_cpu": True, "seed": seed, "weight_decay": 0.0, "report_to": "none", "disable_tqdm": False}


def format_only_sft(model_id: str, sft_path: Path, output_dir: Path, epochs: float, seed: int):
    """Stage 1 of the counting demos: SFT on random answers, so the model learns the answer format (one digit
    1-5 and the end of turn) and nothing about the images; returns the trainer (its model answers at chance)."""
    return train(
        ModelArguments(model_id=model_id, **FULL_FINETUNE),
        DataArguments(data_path=str(sft_path), model_max_length=512),
        TrainingArguments(
            output_dir=str(output_dir),
            num_train_epochs=epochs,
            per_device_train_batch_size=16,
            learning_rate=1e-3,
            lr_scheduler_type="cosine",
            warmup_steps=10,
            logging_steps=10,
            **run_settings(seed),
        ),
    )


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m vlmtune.apps.demo_grpo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model_id", default="tiny-llava-1.5", help="A tiny (or any) registered model id.")
    parser.add_argument("--output_dir", default="demo_grpo_output", help="Where data, models and curves go.")
    parser.add_argument("--num_train", type=int, default=1000, help="Training images (prompts).")
    parser.add_argument("--num_eval", type=int, default=200, help="Held-out images.")
    parser.add_argument("--sft_epochs", type=float, default=2, help="Epochs of format-only SFT (random answers).")
    parser.add_argument("--grpo_steps", type=int, default=600, help="GRPO optimizer steps (cosine schedule).")
    parser.add_argument(
        "--learning_rate",
        type=float,
        default=3e-4,
        help="Peak GRPO learning rate, decayed to 0 by a cosine schedule (held constant, 3e-4 collapses late: "
        "seed 2 reached 81%% held-out at step 150 and 2%% at step 600; 1e-3 collapses the entropy early).",
    )
    parser.add_argument("--num_generations", type=int, default=8, help="Completions per prompt.")
    parser.add_argument("--prompts_per_step", type=int, default=8, help="Prompts per GRPO step.")
    parser.add_argument("--shuffle_images", action="store_true", help="Control: shuffle images across prompts.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data and both trainings.")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)

    output_dir = Path(args.output_dir)
    paths = write_counting_data(output_dir / "data", args.num_train, args.num_eval, args.seed, args.shuffle_images)
    started = time.time()
    full, common = FULL_FINETUNE, run_settings(args.seed)
    sft = format_only_sft(args.model_id, paths["sft"], output_dir / "sft", args.sft_epochs, args.seed)
    before = accuracy(sft.model, sft.data_collator, paths["eval"])
    print(f"held-out accuracy before GRPO: {before:.1%} (chance: 20%; after format-only SFT on random answers)")

    trainer = grpo(
        ModelArguments(model_id=args.model_id, model_local_path=str(output_dir / "sft"), **full),
        DataArguments(data_path=str(paths["grpo"]), model_max_length=512),
        TrainingArguments(
            output_dir=str(output_dir / "grpo"),
            max_steps=args.grpo_steps,
            per_device_train_batch_size=args.prompts_per_step,
            learning_rate=args.learning_rate,
            lr_scheduler_type="cosine",  # the decay keeps what was learned (docs/grpo.md, the demo's recipe)
            logging_steps=10,
            **common,
        ),
        GRPOArguments(
            num_generations=args.num_generations,
            max_completion_length=4,
            reward_funcs=["accuracy"],
            loss_type="dapo",
            log_completions_steps=50,
        ),
    )
    after = accuracy(trainer.model, trainer.collator, paths["eval"])
    print(f"held-out accuracy after GRPO: {after:.1%} ({time.time() - started:.0f} s for SFT and GRPO)")
    print(f"reward curve: {output_dir / 'grpo' / 'loss_curve.png'}")
    if before > BEFORE_AT_MOST or after < AFTER_AT_LEAST:
        print(
            f"expected at most {BEFORE_AT_MOST:.0%} before and at least {AFTER_AT_LEAST:.0%} after GRPO",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
