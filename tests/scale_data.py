"""A real-scale dataset, generated (never downloaded): 10,000 LLaVA-format samples sharing a few hundred images.

    from tests.scale_data import write_llava_dataset
    data_path = write_llava_dataset(tmp_path, count=10_000)          # ~1 s: JSONL + images/ next to it

Used by tests/test_validate_scale.py and benchmarks/validate_scale.py. The mix is deterministic for a seed:
75% of the samples hold one image, 10% two images in one turn, 15% are text-only; 30% have a second turn.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
from PIL import Image

WORDS = "the digit is written in black ink on a white page and it looks like a number that".split()


def write_images(folder: Path, count: int, seed: int = 0, sides: tuple[int, int] = (24, 64)) -> list[str]:
    """`count` PNGs of random sizes (`sides`: shortest and longest side) in `folder`; paths relative to its parent."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    names = []
    for index in range(count):
        width, height = (int(side) for side in rng.integers(sides[0], sides[1] + 1, size=2))
        pixels = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
        name = f"img{index:04d}.png"
        Image.fromarray(pixels).save(folder / name)
        names.append(f"{folder.name}/{name}")
    return names


def sample_record(rng: random.Random, images: list[str]) -> dict:
    kind = rng.random()
    picked = [] if kind < 0.15 else rng.sample(images, 2 if kind < 0.25 else 1)
    question = " ".join(rng.choices(WORDS, k=rng.randint(3, 12))) + "?"
    turns = [{"from": "human", "value": "<image>" * len(picked) + question}]
    turns.append({"from": "gpt", "value": " ".join(rng.choices(WORDS, k=rng.randint(1, 30)))})
    if rng.random() < 0.3:
        turns += [{"from": "human", "value": "And then?"}, {"from": "gpt", "value": str(rng.randint(0, 9))}]
    record: dict = {"conversations": turns}
    if picked:
        record["image"] = picked if len(picked) > 1 else picked[0]
    return record


def write_llava_dataset(
    folder: Path, count: int = 10_000, num_images: int = 300, seed: int = 0, sides: tuple[int, int] = (24, 64)
) -> Path:
    """`folder/data.jsonl` with `count` samples whose images (relative paths) lie in `folder/images`."""
    folder = Path(folder)
    images = write_images(folder / "images", num_images, seed, sides)
    rng = random.Random(seed)
    path = folder / "data.jsonl"
    with path.open("w") as file:
        for _ in range(count):
            file.write(json.dumps(sample_record(rng, images)) + "\n")
    return path
