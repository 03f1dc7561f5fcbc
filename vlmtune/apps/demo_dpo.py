"""The DPO demo: a tiny VLM learns to count squares from preference pairs alone, on CPU, in minutes.

    python -m vlmtune.apps.demo_dpo                    # what `make demo-dpo` runs
    python -m vlmtune.apps.demo_dpo --swap_at_random   # control: chosen/rejected swapped at random, stays at chance

It draws the GRPO demo's count-the-shapes images ("How many squares are in the image?", 1-5 squares), then:
1. SFT (`vlmtune.train.train`, full finetune of the random tiny model) on *random* answers: the model learns the
   answer format (one digit 1-5 and the end of turn) but nothing about the images, so it answers at chance.
2. DPO (`vlmtune.dpo.run.dpo`) from that SFT output on pairs: the true count chosen, a wrong count rejected,
   with the `sppo_hard` loss (each reply's log-ratio to the reference pulled to +-1/(2 beta)). Plain `sigmoid`
   DPO was measured here too (lr 1e-4, beta 0.1 or 1, 2 epochs): it separates the training pairs (reward
   accuracy 0.95-1.0) by lowering the end of turn after wrong digits instead of raising the right digit, and
   ends at 17.5-18.5% held-out; `sppo_hard` raises the chosen reply itself.
Held-out accuracy is measured by greedy generation before and after DPO; the exit status is 1 unless it starts
at or below 50% and ends at or above 85% (with `--swap_at_random`: unless it ends below 50%).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from vlmtune.apps.demo import accuracy
from vlmtune.apps.demo_grpo import COUNTS, FULL_FINETUNE, format_only_sft, run_settings, write_counting_data
from vlmtune.arguments import CommandParser, DataArguments, ModelArguments, TrainingArguments
from vlmtune.dpo.arguments import DPOArguments
from vlmtune.dpo.run import dpo

BEFORE_AT_MOST, AFTER_AT_LEAST = 0.5, 0.85


def write_pairs(prompts_path: Path, seed: int, swap_at_random: bool) -> Path:
    """pairs.jsonl from the GRPO demo's prompts: the true count (`solution`) chosen, another count rejected;
    the control swaps the two in a random half of the pairs, so the preferences carry no information."""
    rng = np.random.default_rng(seed + 1)
    pairs = []
    for line in prompts_path.read_text().splitlines():
        record = json.loads(line)
        right = record.pop("solution")
        wrong = str(int(rng.choice([count for count in COUNTS if str(count) != right])))
        chosen, rejected = (wrong, right) if swap_at_random and rng.random() < 0.5 else (right, wrong)
        pairs.append({**record, "chosen": chosen, "rejected": rejected})
    path = prompts_path.parent / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(pair) for pair in pairs) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(
        prog="python -m vlmtune.apps.demo_dpo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model_id", default="tiny-llava-1.5", help="A tiny (or any) registered model id.")
    parser.add_argument("--output_dir", default="demo_dpo_output", help="Where data, models and curves go.")
    parser.add_argument("--num_train", type=int, default=1000, help="Training images (pairs).")
    parser.add_argument("--num_eval", type=int, default=200, help="Held-out images.")
    parser.add_argument("--sft_epochs", type=float, default=2, help="Epochs of format-only SFT (random answers).")
    parser.add_argument("--dpo_epochs", type=float, default=3, help="Epochs of DPO over the pairs.")
    parser.add_argument("--loss_type", default="sppo_hard", help="The preference loss (docs/dpo.md).")
    parser.add_argument("--learning_rate", type=float, default=3e-4, help="DPO learning rate (cosine schedule).")
    parser.add_argument("--beta", type=float, default=0.1, help="DPO's beta.")
    parser.add_argument("--batch_size", type=int, default=16, help="Pairs per DPO step.")
    parser.add_argument("--swap_at_random", action="store_true", help="Control: chosen/rejected swapped at random.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the data and both trainings.")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.WARNING)

    output_dir = Path(args.output_dir)
    paths = write_counting_data(output_dir / "data", args.num_train, args.num_eval, args.seed, shuffle_images=False)
    pairs = write_pairs(paths["grpo"], args.seed, args.swap_at_random)
    started = time.time()
    full, common = FULL_FINETUNE, run_settings(args.seed)
    sft = format_only_sft(args.model_id, paths["sft"], output_dir / "sft", args.sft_epochs, args.seed)
    before = accuracy(sft.model, sft.data_collator, paths["eval"])
    print(f"held-out accuracy before DPO: {before:.1%} (chance: 20%; after format-only SFT on random answers)")

    trainer = dpo(
        ModelArguments(model_id=args.model_id, model_local_path=str(output_dir / "sft"), **full),
        DataArguments(data_path=str(pairs), model_max_length=512),
        TrainingArguments(
            output_dir=str(output_dir / "dpo"),
            num_train_epochs=args.dpo_epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            lr_scheduler_type="cosine",
            warmup_steps=5,
            logging_steps=10,
            **common,
        ),
        DPOArguments(beta=args.beta, loss_type=[args.loss_type], precompute_ref_log_probs=True),
    )
    after = accuracy(trainer.model, trainer.data_collator.collator, paths["eval"])
    print(f"held-out accuracy after DPO: {after:.1%} ({time.time() - started:.0f} s for SFT and DPO)")
    print(f"loss and reward margin: {output_dir / 'dpo' / 'loss_curve.png'}")
    if args.swap_at_random:
        if after >= BEFORE_AT_MOST:
            print(f"control: expected below {BEFORE_AT_MOST:.0%} after DPO on swapped pairs", file=sys.stderr)
            return 1
        return 0
    if before > BEFORE_AT_MOST or after < AFTER_AT_LEAST:
        print(
            f"expected at most {BEFORE_AT_MOST:.0%} before and at least {AFTER_AT_LEAST:.0%} after DPO",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
