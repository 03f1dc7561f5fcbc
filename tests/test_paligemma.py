"""PaliGemma specifics: the released prefix/suffix layout, token_type_ids, and single-turn samples only."""

from __future__ import annotations

import json

import pytest
import torch

from tests.test_masking import conversation, encode
from vlmtune.arguments import DataArguments
from vlmtune.datasets import Sample, open_image
from vlmtune.errors import DataError
from vlmtune.pipeline import read_data
from vlmtune.supported_models import FAMILIES


@pytest.fixture
def paligemma(load_tiny):
    _, processor = load_tiny("tiny-paligemma")
    family = FAMILIES["paligemma"]
    return family.collator(processor, family.reply_end), processor


def test_a_sample_is_encoded_as_the_processor_builds_prefix_and_suffix(paligemma, images):
    collator, processor = paligemma
    sample = Sample(conversation("<image>\nanswer en Which digit?", "seven"), images=[images[0]], source="s")
    features = encode(collator, sample)
    released = processor(
        text=["<image>answer en Which digit?"], suffix=["seven"], images=[open_image(images[0])], return_tensors="pt"
    )
    assert features["input_ids"].tolist() == released["input_ids"][0].tolist()
    assert features["token_type_ids"].tolist() == released["token_type_ids"][0].tolist()
    assert torch.equal(features["pixel_values"], released["pixel_values"])
    assert features["labels"].tolist() == released["labels"][0].tolist()


def test_a_generation_prompt_is_the_processors_prompt(paligemma, images):
    collator, processor = paligemma
    sample = Sample(conversation("<image>\ncaption en", "a seven"), images=[images[0]])
    prompt = collator.render(collator.to_messages(sample)[:-1], add_generation_prompt=True)
    ours = collator.run_processor(text=[prompt], images=[[open_image(images[0])]], return_tensors="pt")
    released = processor(text=["<image>caption en"], images=[open_image(images[0])], return_tensors="pt")
    for key in ("input_ids", "token_type_ids", "attention_mask", "pixel_values"):
        assert torch.equal(ours[key], released[key]), key


ONE_TURN = [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hi."}]


@pytest.mark.parametrize(
    ("record", "message"),
    [
        (
            {"conversations": ONE_TURN * 2},
            "train.json sample 0: field 'conversations' has 4 turns, but this model family takes one user turn",
        ),
        (
            {"system_prompt": "Be brief.", "conversations": ONE_TURN},
            "train.json sample 0: has a system_prompt, but this model family's chat template has no system role",
        ),
    ],
)
def test_the_data_check_refuses_what_the_format_cannot_express(tmp_path, record, message):
    path = tmp_path / "train.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(DataError, match=message):
        read_data(str(path), FAMILIES["paligemma"], DataArguments(data_path=str(path)))


def test_the_template_refuses_a_conversation(paligemma):
    collator, _ = paligemma
    with pytest.raises(Exception, match="one prefix .* and one answer"):
        collator.render(collator.to_messages(Sample(conversation("Hi?", "Hi.", "Bye?", "Bye."))))
