"""The shared collator core, tested once: padding, pad == eos, truncation guard, placeholders, alignment."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import resolved_family
from tests.test_masking import conversation, encode
from vlmtune.collators.alignment import reply_flags
from vlmtune.collators.base import IGNORE_INDEX, VLMCollator, align_labels, split_placeholders
from vlmtune.datasets import Sample
from vlmtune.errors import BadSample
from vlmtune.supported_models import FAMILIES


@pytest.fixture
def qwen(load_tiny):
    _, processor = load_tiny("tiny-qwen2-vl")
    return lambda **kw: VLMCollator(processor, resolved_family("qwen2-vl").reply_end, **kw)


def test_pads_to_the_longest_sample_with_attention_mask_from_lengths(qwen, images):
    collator = qwen(model_max_length=1024)
    short = encode(collator, Sample(conversation("Hi?", "Yo."), source="short"))
    long = encode(collator, Sample(conversation("<image>\nWhich digit is it?", "It is seven."), images=[images[0]]))
    batch = collator([short, long])
    n_short, n_long = len(short["input_ids"]), len(long["input_ids"])
    assert batch["input_ids"].shape == (2, n_long)
    assert batch["attention_mask"].sum(dim=1).tolist() == [n_short, n_long]
    assert (batch["input_ids"][0, n_short:] == collator.pad_token_id).all()
    assert (batch["labels"][0, n_short:] == IGNORE_INDEX).all()
    assert batch["mm_token_type_ids"].shape == (2, n_long)
    assert batch["pixel_values"].shape[0] == long["pixel_values"].shape[0]  # text-only sample adds no patches


def test_pad_to_multiple_of(qwen):
    collator = qwen(pad_to_multiple_of=16)
    batch = collator([encode(collator, Sample(conversation("Hi?", "Yo."), source="s"))])
    assert batch["input_ids"].shape[1] % 16 == 0
    assert batch["input_ids"].shape[1] < 64  # never padded to model_max_length


def test_pad_equal_to_eos_keeps_eos_labels(qwen):
    collator = qwen()
    collator.pad_token_id = collator.tokenizer.eos_token_id  # a tokenizer whose pad is its eos
    one = encode(collator, Sample(conversation("Hi?", "Yo."), source="a"))
    two = encode(collator, Sample(conversation("Hello there, how are you?", "Fine, thanks."), source="b"))
    batch = collator([one, two])
    eos = collator.tokenizer.eos_token_id
    for row in range(2):
        assert (batch["labels"][row] == eos).sum() == 1, "the reply's end-of-turn must stay trained"


def test_truncation_never_cuts_image_tokens(qwen, images):
    collator = qwen(model_max_length=20)
    sample = Sample(conversation("<image><image>\nWhich digits?", "7 and 3"), images=list(images), source="s 4")
    with pytest.raises(BadSample, match="s 4: .*would cut its image/video tokens"):
        encode(collator, sample)


def test_truncation_that_leaves_no_trained_token_is_refused(qwen):
    collator = qwen(model_max_length=24)
    sample = Sample(conversation("Tell me a long story about " + "the cat " * 20, "No."), source="s 5")
    with pytest.raises(BadSample, match="s 5: no assistant token is left"):
        encode(collator, sample)


def test_truncation_keeps_the_replies_that_fit(qwen):
    sample = Sample(conversation("Hi?", "Seven.", "More?", "Eight nine ten eleven twelve."), source="s")
    full = encode(qwen(model_max_length=1024), sample)
    cut = encode(qwen(model_max_length=len(full["input_ids"]) - 4), sample)
    assert torch.equal(cut["input_ids"], full["input_ids"][:-4])
    assert torch.equal(cut["labels"], full["labels"][:-4])
    assert len(cut["mm_token_type_ids"]) == len(cut["input_ids"])


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("<image>\nWhat is it?", [{"type": "image"}, {"type": "text", "text": "What is it?"}]),
        (
            "Compare <image> with <video>.",
            [
                {"type": "text", "text": "Compare "},
                {"type": "image"},
                {"type": "text", "text": " with "},
                {"type": "video"},
                {"type": "text", "text": "."},
            ],
        ),
        ("plain text ", [{"type": "text", "text": "plain text"}]),
        ("<image><image>", [{"type": "image"}, {"type": "image"}]),
    ],
)
def test_split_placeholders(text, parts):
    assert split_placeholders(text) == parts


def test_alignment_carries_labels_across_expansion():
    plain = [1, 2, 50, 3, 4, 5]
    in_reply = [False, False, False, False, True, True]
    expanded = [1, 2, 50, 50, 50, 3, 4, 5]
    assert align_labels(plain, in_reply, expanded, [t == 50 for t in plain], "s").tolist() == [-100] * 6 + [4, 5]


def test_alignment_skips_inserted_text_and_merged_boundary_tokens():
    # 50 is the placeholder; the processor writes 60 (a bracket), 50 x4, 61, 7 (inserted text), and the token
    # after the placeholder (8) merged with inserted text into 9. The reply (4, 5, 6) follows a second image.
    plain = [1, 50, 8, 3, 2, 50, 3, 4, 5, 6]
    in_reply = [False] * 7 + [True, True, True]
    expanded = [1, 60, 50, 50, 50, 50, 61, 7, 9, 3, 2, 60, 50, 50, 61, 3, 4, 5, 6]
    assert align_labels(plain, in_reply, expanded, [t == 50 for t in plain], "s").tolist() == [-100] * 16 + [4, 5, 6]


def test_alignment_finds_each_reply_after_the_previous_one():
    # The same reply (4, 5) twice: the second is found after the first, never on top of it.
    plain = [1, 4, 5, 50, 2, 4, 5]
    in_reply = [False, True, True, False, False, True, True]
    expanded = [1, 4, 5, 50, 50, 2, 4, 5]
    labels = align_labels(plain, in_reply, expanded, [t == 50 for t in plain], "s")
    assert labels.tolist() == [-100, 4, 5, -100, -100, -100, 4, 5]


def test_alignment_refuses_a_changed_reply():
    with pytest.raises(BadSample, match="s: the processor changed tokens of an assistant reply"):
        align_labels([1, 2, 3], [False, True, True], [1, 9, 3], [False] * 3, "s")


def test_reply_flags_are_a_linear_sweep():
    offsets = [(0, 2), (2, 4), (4, 6), (6, 8), (8, 9)]
    assert reply_flags(offsets, [(2, 6), (8, 9)]).tolist() == [False, True, True, False, True]


@pytest.mark.parametrize("family_id", sorted(FAMILIES))
def test_truncation_guard_knows_every_familys_image_tokens(family_id, load_tiny, images):
    """A cut anywhere inside the tokens the model counts per image is refused, for every family."""
    _, processor = load_tiny(f"tiny-{family_id}")
    family = resolved_family(family_id)
    turns = ("Hi?", "Hello.", "Look: <image>", "A seven.") if family.multi_turn else ("Look: <image>", "A seven.")
    sample = Sample(conversation(*turns), images=[images[0]], source="s 9")
    full = encode(family.collator(processor, family.reply_end, model_max_length=4096), sample)
    # The processor's id where it names one: Aya Vision's text placeholder "<image>" becomes "<|IMG_PATCH|>" tokens.
    soft_id = getattr(processor, "image_token_id", None) or processor.tokenizer.image_token_id
    soft = (full["input_ids"] == soft_id).nonzero().flatten().tolist()
    # Cut inside the soft tokens; an image read through cross-attention (Llama 3.2 Vision) is one token: cut it off.
    cuts = (soft[0] + 1, soft[-1]) if len(soft) > 1 else (soft[0],)
    for cut in cuts:
        collator = family.collator(processor, family.reply_end, model_max_length=cut)
        with pytest.raises(BadSample, match="s 9: .*would cut its image/video tokens"):
            encode(collator, sample)


@pytest.mark.parametrize("family_id", sorted(FAMILIES))
def test_every_family_collator_takes_the_arguments_training_passes(family_id, load_tiny):
    """train, validate and preview build collators positionally: (processor, reply_end, max length, multiple)."""
    family = resolved_family(family_id)
    _, processor = load_tiny(f"tiny-{family_id}")
    collator = family.collator(processor, family.reply_end, 512, 8)
    assert (collator.model_max_length, collator.pad_to_multiple_of) == (512, 8)
