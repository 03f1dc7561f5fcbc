"""Cheap per-sample token lengths for length-grouped sampling (`--group_by_length`).

Grouping samples of similar length into a batch cuts padding, but the HF Trainer's `LengthGroupedSampler`
would find lengths by encoding every sample (opening every image and running the processor over the whole
dataset) before the first step. Here a length is estimated without decoding a pixel:

- text: the conversation is rendered with the chat template (plain Jinja) and tokenized; the tokenizer runs
  over the raw text of all samples in one batched call;
- images: the size comes from the file header (`PIL.Image.open(path).size` reads no pixels) and becomes a
  token count through the family collator's `estimate_image_tokens(height, width)` when it has one (Qwen-VL:
  exact, from the image processor's public pixel-budget arithmetic), else through the processor's own
  per-size count (`_get_num_multimodal_tokens`, the count transformers keeps for vLLM; there is no public
  one), else by processing one blank image of that size (once per distinct size). Exact for most families
  (`tests/test_lengths.py`); a few tokens per image off where a processor's count leaves out the text around
  the image tokens (Gemma 3 / 3n / 4, LFM2-VL, Llama 3.2 Vision, Muse Glimmer, MiniMax-M3; Idefics2's processor
  writes a space after an image that text follows), and multi-image LLaVA-OneVision samples are overestimated
  (counted as anyres tiles);
- videos: a documented approximation, a sample with a video counts as `model_max_length` (it is long, so it
  is grouped with the longest samples).

Estimates are capped at `model_max_length` (the collator cuts there) and cached in a JSON file keyed by the
data file (path, size, mtime) and the settings that change token counts (model id, max_pixels, ...); data that
is not one file (a Hugging Face dataset) is estimated again each run.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from vlmtune.datasets import Sample, open_image_file

logger = logging.getLogger(__name__)

# Bump when the estimate changes, so that cached lengths are recomputed.
LENGTHS_FORMAT_VERSION = "1"


def image_size(image: Any) -> tuple[int, int]:
    """(height, width) of a path, encoded bytes or an image object, read from the header; no pixel is decoded."""
    if isinstance(image, Image.Image):
        width, height = image.size
        return height, width
    with open_image_file(image) as opened:
        width, height = opened.size
    return height, width


def image_token_counter(collator: Any) -> Callable[[int, int], int]:
    """A function (height, width) -> number of tokens one image of that size expands into."""
    family_estimate = getattr(collator, "estimate_image_tokens", None)
    if family_estimate is not None:
        return family_estimate
    processor = collator.processor

    def measured(height: int, width: int) -> int:
        blank = Image.new("RGB", (width, height))
        ids = processor(text=[processor.image_token], images=[blank], return_tensors="pt")["input_ids"][0]
        return len(ids) - len(processor.tokenizer(processor.image_token)["input_ids"]) + 1

    @functools.cache
    def count(height: int, width: int) -> int:
        try:
            found = processor._get_num_multimodal_tokens(image_sizes=[(height, width)])
            return int(found["num_image_tokens"][0])
        except (AttributeError, KeyError, TypeError, ValueError, NotImplementedError):
            return measured(height, width)  # no per-size count, or one that does not fit this processor's config

    return count


def estimate_lengths(samples: list[Sample], collator: Any) -> list[int]:
    """Estimated token length of every sample after image expansion, capped at the collator's max length."""
    texts = [collator.render(collator.to_messages(sample)) for sample in samples]
    with_bos = [collator.adds_bos(text) for text in texts]
    token_counts = [0] * len(texts)
    for add_special in (True, False):  # one batched tokenizer call per setting
        chosen = [i for i, flag in enumerate(with_bos) if flag == add_special]
        if chosen:
            encoded = collator.tokenizer([texts[i] for i in chosen], add_special_tokens=add_special)["input_ids"]
            for i, ids in zip(chosen, encoded, strict=True):
                token_counts[i] = len(ids)
    image_tokens = image_token_counter(collator)
    lengths = []
    for sample, count in zip(samples, token_counts, strict=True):
        if sample.videos:
            lengths.append(collator.model_max_length)
            continue
        # Each placeholder token is replaced by the image's tokens.
        count += sum(image_tokens(*image_size(image)) - 1 for image in sample.images)
        lengths.append(min(count, collator.model_max_length))
    return lengths


def length_cache_file(data_path: str, settings: dict[str, Any]) -> Path | None:
    """Where the lengths of `data_path` under `settings` are cached ($VLMTUNE_CACHE/lengths/<key>.json).

    None (estimated again each run) when `data_path` is not one file, e.g. a Hugging Face dataset.
    """
    if not os.path.isfile(data_path):
        return None
    stat = os.stat(data_path)
    key = json.dumps(
        {
            "version": LENGTHS_FORMAT_VERSION,
            "data": [os.path.abspath(data_path), stat.st_size, stat.st_mtime_ns],
            "settings": settings,
        },
        sort_keys=True,
        default=str,
    )
    return cache_root() / "lengths" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"


def cache_root() -> Path:
    """vlmtune's cache folder: $VLMTUNE_CACHE, default ~/.cache/vlmtune."""
    return Path(os.environ.get("VLMTUNE_CACHE") or Path.home() / ".cache" / "vlmtune")


def cached_lengths(samples: list[Sample], collator: Any, cache_file: Path | None) -> list[int]:
    """`estimate_lengths`, read from `cache_file` when it holds one length per sample, else computed and written."""
    if cache_file is not None and cache_file.is_file():
        lengths = json.loads(cache_file.read_text())
        if isinstance(lengths, list) and len(lengths) == len(samples):
            logger.info("sample lengths read from %s", cache_file)
            return lengths
    lengths = estimate_lengths(samples, collator)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        staging = cache_file.with_suffix(f".{os.getpid()}.tmp")
        staging.write_text(json.dumps(lengths))
        staging.replace(cache_file)  # atomic: parallel ranks never read half a file
    return lengths
