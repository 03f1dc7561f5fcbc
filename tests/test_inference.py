"""Batched greedy generation works for every family (used by the demo's accuracy and by chat)."""

from __future__ import annotations

import pytest

from tests.conftest import resolved_family
from tests.test_masking import conversation
from vlmtune.core.inference import generate_replies
from vlmtune.datasets import Sample
from vlmtune.supported_models import FAMILIES


@pytest.mark.parametrize("family_id", sorted(FAMILIES))
def test_generates_one_reply_per_sample(family_id, load_tiny, images):
    model, processor = load_tiny(f"tiny-{family_id}")
    family = resolved_family(family_id)
    collator = family.collator(processor, family.reply_end)
    samples = [
        Sample(conversation("<image>\nWhich digit?", "7"), images=[images[0]]),
        Sample(conversation("What comes after six?", "Seven.")),  # text-only, between image samples
        Sample(conversation("<image>\nAnd this one?", "3"), images=[images[1]]),
    ]
    replies = generate_replies(model, collator, samples, max_new_tokens=2)
    assert len(replies) == 3 and all(isinstance(reply, str) for reply in replies)
    # In order: each reply is the one its sample gets alone.
    assert generate_replies(model, collator, samples[1:2], max_new_tokens=2) == replies[1:2]


def test_media_tokens_are_never_generated(load_tiny, images):
    """A reply holds text only: with the image token's logit forced to the top, greedy decoding still answers with
    text (before, the image token was generated and decoded to an empty reply; the GRPO demo's policy, trained with
    media tokens suppressed as every rollout samples, scored 22% held-out that way instead of 100%)."""
    model, processor = load_tiny("tiny-llava-1.5")
    family = resolved_family("llava-1.5")
    collator = family.collator(processor, family.reply_end)
    (image_token,) = collator.media_token_ids

    def image_token_first(module, inputs, logits):
        logits = logits.clone()
        logits[..., image_token] = logits.max() + 100.0
        return logits

    samples = [Sample(conversation("<image>\nWhich digit?", "7"), images=[images[0]])]
    handle = model.get_output_embeddings().register_forward_hook(image_token_first)
    try:
        reply = generate_replies(model, collator, samples, max_new_tokens=3)[0]
        sampled = generate_replies(model, collator, samples, max_new_tokens=3, sampling={"temperature": 1.0})[0]
    finally:
        handle.remove()
    assert reply and sampled, "the image token was generated (an empty reply)"
    assert reply == generate_replies(model, collator, samples, max_new_tokens=3)[0]  # the text's own argmax
