"""ERNIE 4.5 VL's per-token expert groups (`moe_mm_token_type_ids`) are batched, truncated and extended like input_ids.

OMP_NUM_THREADS=1 python -m pytest -q tests/test_ernie4_5_vl.py
"""

from __future__ import annotations

import torch

from tests.conftest import digit_png, resolved_family
from tests.test_masking import conversation, encode
from vlmtune.datasets import Sample
from vlmtune.grpo.rollouts import TOKEN_TYPE_KEYS


def test_expert_groups_follow_the_padded_tokens(load_tiny, tmp_path):
    _, processor = load_tiny("tiny-ernie4.5-vl")
    family = resolved_family("ernie4.5-vl")
    collator = family.collator(processor, family.reply_end)
    image = digit_png(tmp_path, "seven.png", 7)
    samples = [
        Sample(conversation("Say hi.", "Hello there."), source="text"),
        Sample(conversation("<image>\nWhich digit?", "7"), images=[image], source="image"),
    ]
    batch = collator([encode(collator, sample) for sample in samples])
    groups = batch["moe_mm_token_type_ids"]
    assert groups.shape == batch["input_ids"].shape
    # What the processor assigns from the token ids: 1 on image tokens and their brackets, 0 on text and padding.
    expected = processor.create_moe_mm_token_type_ids(batch["input_ids"]) * batch["attention_mask"]
    assert torch.equal(groups, expected)
    assert not groups[0].any() and groups[1].sum() > 2  # the text sample: text experts only
    assert "moe_mm_token_type_ids" in TOKEN_TYPE_KEYS  # GRPO extends it over completions (text: 0)
