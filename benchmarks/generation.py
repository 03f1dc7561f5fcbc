"""Greedy generation throughput: vlmtune's transformers backend against vLLM, same model, same prompts.

    scripts/setup_vllm_venv.sh                      # vLLM's own environment (docs/serving.md)
    /work/vllm-venv/bin/python benchmarks/generation.py --model_id tiny-qwen2-vl --samples 64
    /work/vllm-venv/bin/python benchmarks/generation.py --model output/merged --device cuda --dtype bfloat16

Both backends answer the same digit-image questions (`vlmtune chat --data_path` prompts) with greedy decoding of
exactly `--new_tokens` tokens (stop tokens held back, so both do the same work); the script checks that the
replies are equal and prints samples/s of each (vLLM's engine start-up is timed apart, not in its samples/s).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from vlmtune.core.modeling import checkpoint_path
from vlmtune.core.outputs import load_for_inference
from vlmtune.datasets import Sample, Turn
from vlmtune.serving.vllm_backend import prompt_of
from vlmtune.supported_models import get_model


def questions(folder: Path, count: int) -> list[Sample]:
    from tests.conftest import digit_png

    return [
        Sample(
            [Turn("user", "<image>\nWhich digit is shown in the image?"), Turn("assistant", "")],
            images=[digit_png(folder, f"d{i}.png", i % 10, size=28 + 4 * (i % 8))],
        )
        for i in range(count)
    ]


@torch.no_grad()
def hf_ids(model, collator, samples: list[Sample], new_tokens: int, batch_size: int) -> list[list[int]]:
    """Greedy ids from transformers, batched and left-padded as `vlmtune chat` batches them."""
    tokenizer = collator.tokenizer
    tokenizer.padding_side = "left"
    replies = []
    for start in range(0, len(samples), batch_size):
        prompts, images, _ = zip(*(prompt_of(collator, s) for s in samples[start : start + batch_size]), strict=True)
        inputs = collator.run_processor(
            text=list(prompts),
            images=list(images),
            padding=True,
            return_tensors="pt",
            add_special_tokens=collator.adds_bos(prompts[0]),
        ).to(model.device)
        output = model.generate(
            **inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
            pad_token_id=collator.pad_token_id,
        )  # fmt: skip
        replies += output[:, inputs["input_ids"].shape[1] :].tolist()
    return replies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_id", default="tiny-qwen2-vl", help="registered id (its tiny or hub checkpoint)")
    parser.add_argument("--model", help="a full/merged output folder instead of --model_id")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--new_tokens", type=int, default=16)
    parser.add_argument("--batch_size", type=int, default=16, help="transformers backend batch size")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    args = parser.parse_args()

    source = args.model or args.model_id
    folder = args.model or checkpoint_path(get_model(args.model_id))
    model, processor, entry = load_for_inference(source, dtype=args.dtype)
    model.to(args.device)
    collator = entry.family.collator(processor, entry.family.reply_end)
    with tempfile.TemporaryDirectory() as scratch:
        samples = questions(Path(scratch), args.samples)
        hf_ids(model, collator, samples[:2], args.new_tokens, args.batch_size)  # warm-up
        start = time.perf_counter()
        expected = hf_ids(model, collator, samples, args.new_tokens, args.batch_size)
        hf_seconds = time.perf_counter() - start
        del model

        from vlmtune.serving.vllm_backend import start_engine, vllm_generate

        start = time.perf_counter()
        llm = start_engine(folder, max_model_len=2048, dtype=args.dtype)
        startup = time.perf_counter() - start
        vllm_generate(llm, collator, samples[:2], args.new_tokens, min_new_tokens=args.new_tokens)  # warm-up
        start = time.perf_counter()
        replies = vllm_generate(llm, collator, samples, args.new_tokens, min_new_tokens=args.new_tokens)
        vllm_seconds = time.perf_counter() - start
    same = sum(reply.token_ids == ids for reply, ids in zip(replies, expected, strict=True))
    result = {
        "model": source,
        "device": args.device,
        "samples": args.samples,
        "new_tokens": args.new_tokens,
        "hf_samples_per_s": args.samples / hf_seconds,
        "vllm_samples_per_s": args.samples / vllm_seconds,
        "vllm_startup_s": startup,
        "equal_replies": same,
    }
    print("| backend | samples/s | equal greedy replies |\n|---|---:|---:|")
    print(f"| transformers (batch {args.batch_size}) | {result['hf_samples_per_s']:.2f} | - |")
    print(f"| vLLM (start-up {startup:.1f} s apart) | {result['vllm_samples_per_s']:.2f} | {same}/{args.samples} |")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
