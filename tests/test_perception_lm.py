"""PerceptionLM specifics: images with different tile counts, in one sample and in one batch; the default system."""

from __future__ import annotations

import torch
from PIL import Image

from tests.conftest import digit_png
from tests.test_masking import conversation, encode
from vlmtune.core.inference import generate_replies
from vlmtune.datasets import Sample
from vlmtune.loaders.perception_lm import DEFAULT_SYSTEM, TINY_POOLING_RATIO, TINY_TILE_SIZE
from vlmtune.supported_models import FAMILIES

TOKENS_PER_TILE = (TINY_TILE_SIZE // 8 // TINY_POOLING_RATIO) ** 2  # tiles of 32 px in patches of 8, pooled 2x2


def tiny_collator(load_tiny):
    model, processor = load_tiny("tiny-perception-lm")
    family = FAMILIES["perception-lm"]
    return model, family.collator(processor, family.reply_end)


def test_images_with_different_tile_counts_encode_batch_and_train(load_tiny, tmp_path):
    model, collator = tiny_collator(load_tiny)
    wide = str(tmp_path / "wide.png")
    Image.new("RGB", (64, 32), "white").save(wide)  # a thumbnail + 2 tiles; the square digit: a thumbnail + 4
    square = digit_png(tmp_path, "seven.png", 7)
    both = encode(collator, Sample(conversation("<image><image>\nWhat?", "A bar, a 7."), images=[wide, square]))
    one = encode(collator, Sample(conversation("<image>\nWhich digit?", "7"), images=[square]))
    assert both["pixel_values"].shape[:2] == (3 + 5, 1) and one["pixel_values"].shape[:2] == (5, 1)
    image_token_id = collator.processor.image_token_id
    for features in (both, one):
        assert (features["input_ids"] == image_token_id).sum() == len(features["pixel_values"]) * TOKENS_PER_TILE
    batch = collator([both, one])
    assert batch["pixel_values"].shape[:2] == (13, 1)
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)
    replies = generate_replies(model, collator, [Sample(conversation("<image>\nWhat?", "x"), images=[wide])], 2)
    assert len(replies) == 1


def test_a_sample_without_system_prompt_gets_the_released_default(load_tiny):
    _, collator = tiny_collator(load_tiny)
    text = collator.render(collator.to_messages(Sample(conversation("Hi?", "Hello."))))
    assert text == (
        f"<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n{DEFAULT_SYSTEM}<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
    )
