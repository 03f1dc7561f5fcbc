"""What encoding one sample costs (`collator.encode`: render, locate replies, tokenize, expand, align labels,
truncation guard) against the processor call alone, at growing sample lengths.

    PYTHONPATH=. python benchmarks/encode_cost.py                           # tiny-qwen2-vl, 2k/8k/32k tokens
    PYTHONPATH=. python benchmarks/encode_cost.py --model_id tiny-idefics3 --tokens 2000 8000 32000 --repeats 5
    PYTHONPATH=. python benchmarks/encode_cost.py --turns 200 --tokens 32000    # a 200-turn conversation

The samples come from `tests.long_samples.long_sample`: multi-image, multi-turn, long repetitive text (the worst
case for a general sequence alignment). `model_max_length` is set above the sample, so nothing is cut. Each
timing is the best of `--repeats` runs of one sample, single-threaded; images are opened once, outside the
timings. Columns: tokens after expansion, the processor alone (on the rendered text, as `encode` calls it),
`encode`, their ratio, and `encode` per 1k tokens (flat when the cost grows linearly).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from tests.long_samples import long_sample
from vlmtune.core.modeling import checkpoint_path
from vlmtune.datasets import open_image
from vlmtune.supported_models import get_model


def best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(collator, sample, images, repeats: int) -> dict[str, float]:
    text = collator.render(collator.to_messages(sample))
    inputs = collator.processor_inputs(text, images, [])
    processor_s = best_of(repeats, lambda: collator.run_processor(**inputs))
    features = collator.encode(sample, images, [])
    encode_s = best_of(repeats, lambda: collator.encode(sample, images, []))
    return {"tokens": len(features["input_ids"]), "processor_s": processor_s, "encode_s": encode_s}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model_id", default="tiny-qwen2-vl")
    parser.add_argument("--tokens", type=int, nargs="+", default=[2000, 8000, 32000])
    parser.add_argument("--turns", type=int, default=8, help="user/assistant pairs per sample")
    parser.add_argument("--images", type=int, default=8, help="images per sample (at least --turns)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    entry = get_model(args.model_id)
    _, processor = entry.family.load(checkpoint_path(entry))
    family = entry.family
    print(f"{args.model_id}, {args.turns} turns, {max(args.images, args.turns)} images, best of {args.repeats}\n")
    print("| target tokens | tokens | processor (s) | encode (s) | encode / processor | encode ms per 1k tokens |")
    print("|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for num_tokens in args.tokens:
            sample = long_sample(folder, processor.tokenizer, num_tokens, max(args.images, args.turns), args.turns)
            images = [open_image(path) for path in sample.images]
            collator = family.collator(processor, family.reply_end, model_max_length=4 * num_tokens + 4096)
            row = measure(collator, sample, images, args.repeats)
            ratio = row["encode_s"] / row["processor_s"]
            per_1k = 1000 * row["encode_s"] / row["tokens"] * 1000
            print(
                f"| {num_tokens:,} | {row['tokens']:,} | {row['processor_s']:.3f} | {row['encode_s']:.3f} | "
                f"{ratio:.2f}x | {per_1k:.2f} |"
            )


if __name__ == "__main__":
    main()
