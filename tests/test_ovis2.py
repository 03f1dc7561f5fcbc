"""Ovis2: the truncation guard knows the image indicator tokens that only the Ovis2 collator names."""

from __future__ import annotations

import pytest

from tests.test_masking import conversation, encode
from vlmtune.collators.base import media_token_ids
from vlmtune.collators.ovis2 import Ovis2Collator
from vlmtune.datasets import Sample
from vlmtune.errors import BadSample
from vlmtune.supported_models import FAMILIES


def test_a_cut_after_the_atoms_but_before_image_end_is_refused(load_tiny, images):
    _, processor = load_tiny("tiny-ovis2")
    family = FAMILIES["ovis2"]
    indicators = set(processor.tokenizer.convert_tokens_to_ids(list(Ovis2Collator.media_tokens[1:])))
    assert not indicators & media_token_ids(processor), "the core alone would not know the indicators"

    sample = Sample(conversation("Look: <image>", "A seven."), images=[images[0]], source="s 1")
    full = encode(family.collator(processor, family.reply_end, model_max_length=4096), sample)
    ids = full["input_ids"].tolist()
    last_atom = max(i for i, t in enumerate(ids) if t == processor.tokenizer.convert_tokens_to_ids("<IMG_ATOM>"))
    # Keeps every atom but cuts <IMG_GRID> and <IMG_END>: only the indicator ids tell the guard.
    collator = family.collator(processor, family.reply_end, model_max_length=last_atom + 1)
    assert indicators <= collator.media_token_ids
    with pytest.raises(BadSample, match="s 1: .*would cut its image/video tokens"):
        encode(collator, sample)
