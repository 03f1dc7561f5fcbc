"""Samples at real scale: 32k-token multi-image conversations and a 200-turn one are masked exactly, and
`vlmtune validate` refuses a 60k-token sample that cannot fit (speed is measured by benchmarks/encode_cost.py)."""

from __future__ import annotations

import pytest

from tests.conftest import resolved_family
from tests.long_samples import long_sample, write_long_data
from tests.test_masking import encode, expected_ids
from vlmtune.apps.validate import collator_for
from vlmtune.arguments import DataArguments
from vlmtune.collators.base import IGNORE_INDEX
from vlmtune.data.checks import check_data, data_options


@pytest.mark.parametrize(
    ("family_id", "num_tokens", "num_turns"),
    [("qwen2-vl", 32_000, 8), ("idefics3", 32_000, 8), ("gemma3", 32_000, 8), ("qwen2-vl", 8_000, 200)],
)
def test_long_sample_trains_exactly_its_replies(family_id, num_tokens, num_turns, load_tiny, tmp_path):
    _, processor = load_tiny(f"tiny-{family_id}")
    family = resolved_family(family_id)
    sample = long_sample(tmp_path, processor.tokenizer, num_tokens, num_images=num_turns, num_turns=num_turns)
    collator = family.collator(processor, family.reply_end, model_max_length=4 * num_tokens)
    features = encode(collator, sample)
    assert len(features["input_ids"]) > num_tokens * 0.9
    supervised = features["input_ids"][features["labels"] != IGNORE_INDEX].tolist()
    assert supervised == expected_ids(processor.tokenizer, family_id, sample)


def test_validate_refuses_a_60k_token_sample_that_cannot_fit(load_tiny, tmp_path):
    _, processor = load_tiny("tiny-qwen2-vl")
    path = write_long_data(tmp_path, processor.tokenizer, num_tokens=60_000)
    args = DataArguments(data_path=path, model_max_length=2048)
    family, collator = collator_for("tiny-qwen2-vl", None, args)
    report = check_data(path, data_options(path, args), family, encode=collator.encode)
    assert len(report.errors) == 1
    assert "sample 0: " in report.errors[0]
    assert "model_max_length=2048 would cut its image/video tokens" in report.errors[0]
