"""The demo: teach a tiny VLM to read handwritten digits (scikit-learn's bundled set), on CPU, in minutes.

    python -m vlmtune.apps.demo                       # what `make demo` runs
    python -m vlmtune.apps.demo --model_id tiny-llava-1.5 --output_dir demo_output/llava

It writes the digits as PNG files with a LLaVA-style train/held-out JSON, measures held-out accuracy by
greedy generation before and after finetuning the random tiny model, and saves the loss curve. Full
finetuning is used because LoRA on a freshly random model has nothing useful to adapt.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vlmtune.arguments import CommandParser, DataArguments, ModelArguments, TrainingArguments
from vlmtune.core.checkpoint import checked_entry
from vlmtune.core.evaluation import exact_match
from vlmtune.core.inference import generate_replies
from vlmtune.core.modeling import load_model
from vlmtune.data.formats import load_samples
from vlmtune.supported_models import get_model
from vlmtune.train import train

QUESTION = "Which digit is shown in the image?"
TARGET_ACCURACY = 0.9


def write_digits_dataset(folder: Path, num_eval: int = 300, seed: int = 0) -> tuple[Path, Path]:
    """sklearn's 1,797 8x8 digits as 32x32 PNGs plus train.json / eval.json in the LLaVA format."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(digits.images))
    records = []
    for index in order:
        pixels = (digits.images[index] / 16.0 * 255).astype(np.uint8)
        name = f"digit_{index:04d}.png"
        Image.fromarray(pixels).resize((32, 32), Image.NEAREST).save(images_dir / name)
        records.append(
            {
                "image": f"images/{name}",
                "conversations": [
                    {"from": "human", "value": f"<image>\n{QUESTION}"},
                    {"from": "gpt", "value": str(digits.target[index])},
                ],
            }
        )
    train_path, eval_path = folder / "train.json", folder / "eval.json"
    train_path.write_text(json.dumps(records[num_eval:], indent=1))
    eval_path.write_text(json.dumps(records[:num_eval], indent=1))
    return train_path, eval_path


def accuracy(model, collator, eval_path: Path) -> float:
    """Held-out exact match of greedy replies, as `--eval_metric exact_match` scores it (surrounding whitespace
    ignored: a GRPO policy may answer " 3", which its accuracy reward counts as 3)."""
    samples = load_samples(eval_path)
    replies = generate_replies(model, collator, samples, max_new_tokens=4)
    return exact_match(replies, [sample.turns[-1].text for sample in samples])["exact_match"]


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(
        prog="vlmtune demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model_id", default="tiny-qwen2-vl", help="A tiny (or any) registered model id.")
    parser.add_argument("--output_dir", default="demo_output", help="Where data, model and loss curve go.")
    parser.add_argument("--epochs", type=float, default=6, help="Training epochs over the 1,497 training digits.")
    parser.add_argument("--learning_rate", type=float, default=1e-3, help="Peak learning rate (cosine schedule).")
    parser.add_argument("--batch_size", type=int, default=16, help="Samples per training step.")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)

    output_dir = Path(args.output_dir)
    train_path, eval_path = write_digits_dataset(output_dir / "data")
    model_args = ModelArguments(model_id=args.model_id, llm_mode="full", vision_mode="full", train_projector=True)
    data_args = DataArguments(data_path=str(train_path), model_max_length=512)
    training_args = TrainingArguments(
        output_dir=str(output_dir / "model"),
        num_train_epochs=args.epochs,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=20,
        weight_decay=0.0,
        logging_steps=10,
        use_cpu=True,
        seed=0,
        disable_tqdm=False,
    )

    entry = checked_entry(get_model(args.model_id))  # as train does: a conventional family's fields derived
    model, processor = load_model(entry, model_args)
    collator = entry.family.collator(processor, entry.family.reply_end, data_args.model_max_length)
    before = accuracy(model, collator, eval_path)
    print(f"held-out accuracy before finetuning: {before:.1%} (chance: 10%)", flush=True)

    started = time.time()
    trainer = train(model_args, data_args, training_args)
    after = accuracy(trainer.model, collator, eval_path)
    print(f"held-out accuracy after finetuning:  {after:.1%} ({time.time() - started:.0f} s of training)")
    print(f"loss curve: {Path(training_args.output_dir) / 'loss_curve.png'}")
    if after < TARGET_ACCURACY:
        print(f"below the {TARGET_ACCURACY:.0%} target: the training signal is wrong somewhere", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # through the CLI, for its one-line errors
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["demo", *sys.argv[1:]]))
