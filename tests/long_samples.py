"""Real-scale samples, generated: a long multi-image, multi-turn conversation of a chosen token count.

    from tests.long_samples import long_sample, write_long_data
    sample = long_sample(tmp_path, tokenizer, num_tokens=32_000)          # a `Sample`, images written as PNGs
    path = write_long_data(tmp_path, tokenizer, num_tokens=60_000)       # the same as a one-record data file

The text is repetitive on purpose (the same sentence over and over), the worst case for a general sequence
alignment, and replies are long as well, so every part of the masking path sees the length. Images sit in
several user turns, the last one late in the conversation, so that truncation to a short `model_max_length`
would cut image tokens. Used by tests and by `benchmarks/encode_cost.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import digit_png
from vlmtune.datasets import Sample, Turn

SENTENCE = "The digit is written in black ink on a white page and it looks like a number. "


def long_sample(folder, tokenizer, num_tokens: int = 32_000, num_images: int = 8, num_turns: int = 8) -> Sample:
    """A sample of about `num_tokens` text tokens in `num_turns` user/assistant pairs, `num_images` (>= num_turns)
    images spread over the user turns (one per turn, the rest in the last), each user text and reply a run of
    SENTENCE."""
    if num_images < num_turns:
        raise ValueError(f"num_images={num_images} must be at least num_turns={num_turns}")
    per_sentence = len(tokenizer(SENTENCE, add_special_tokens=False)["input_ids"])
    repeats = max(1, num_tokens // (2 * num_turns * per_sentence))
    body = SENTENCE * repeats
    images = [digit_png(folder, f"long_{i}.png", i % 10, size=56 + 8 * (i % 4)) for i in range(num_images)]
    turns = []
    for turn in range(num_turns):
        placeholders = 1 if turn < num_turns - 1 else num_images - (num_turns - 1)
        turns.append(Turn("user", "<image>" * placeholders + f"\nPart {turn}: " + body))
        turns.append(Turn("assistant", f"Answer {turn}: " + body.strip()))
    return Sample(turns, images=images, source=f"long sample ({num_tokens} tokens)")


def write_long_data(folder, tokenizer, num_tokens: int = 60_000, **kwargs) -> str:
    """`long_sample` as a one-record LLaVA-format JSON file in `folder`; returns its path."""
    sample = long_sample(folder, tokenizer, num_tokens, **kwargs)
    record = {
        "image": sample.images,
        "conversations": [{"from": "human" if t.role == "user" else "gpt", "value": t.text} for t in sample.turns],
    }
    path = Path(folder) / f"long_{num_tokens}_{len(sample.turns) // 2}_turns.json"
    path.write_text(json.dumps([record]))
    return str(path)
