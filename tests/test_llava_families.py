"""What the LLaVA-Interleave and LLaVA-NeXT-Video families add: many images per sample, images next to videos."""

from __future__ import annotations

import torch

from tests.conftest import resolved_family
from tests.test_masking import conversation, encode
from vlmtune.collators.base import IGNORE_INDEX
from vlmtune.datasets import Sample


def collator_for(family_id, load_tiny):
    model, processor = load_tiny(f"tiny-{family_id}")
    family = resolved_family(family_id)
    return model, family.collator(processor, family.reply_end)


def test_interleave_expands_every_image_of_a_sample(load_tiny, images):
    model, collator = collator_for("llava-interleave", load_tiny)
    seven, three = images
    sample = Sample(
        conversation("<image><image><image>\nWhich digits?", "7, 3 and 7"), images=[seven, three, seven], source="s"
    )
    features = encode(collator, sample)
    image_id = collator.processor.image_token_id
    per_image = model.config.image_seq_length
    assert features["pixel_values"].shape[0] == 3
    assert (features["input_ids"] == image_id).sum().item() == 3 * per_image
    batch = collator([features, encode(collator, Sample(conversation("Hi?", "Hi."), source="t"))])
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)


def test_next_video_batches_image_video_and_mixed_samples(load_tiny, images, video):
    model, collator = collator_for("llava-next-video", load_tiny)
    seven, three = images
    samples = [
        Sample(conversation("<image>\nWhich digit?", "7"), images=[seven], source="image"),
        Sample(conversation("<video>\nWhat happens?", "It gets brighter."), videos=[video], source="video"),
        Sample(
            conversation("<image>\n<video>\nSame digit in both?", "No."), images=[three], videos=[video], source="both"
        ),
    ]
    features = [encode(collator, s) for s in samples]
    video_id = collator.processor.video_token_id
    assert [(f["input_ids"] == video_id).sum().item() > 0 for f in features] == [False, True, True]
    batch = collator(features)
    assert batch["pixel_values"].shape[0] == 2 and batch["pixel_values_videos"].shape[0] == 2
    trained = batch["labels"] != IGNORE_INDEX
    assert not (trained & (batch["input_ids"] == video_id)).any()
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)
