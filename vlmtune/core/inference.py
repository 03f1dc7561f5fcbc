"""Generation for a list of samples: the prompt is each sample up to its last user turn.

`encode_prompts` is the one place prompts become processor inputs (chat, evaluation and GRPO rollouts use it).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import torch

from vlmtune.collators.base import VLMCollator
from vlmtune.datasets import ASSISTANT, Sample, load_media
from vlmtune.errors import BadSample

logger = logging.getLogger(__name__)


def encode_prompts(
    collator: VLMCollator, prompts: list[Sample], num_frames: int = 8, media: list[tuple[list, list]] | None = None
) -> Any:
    """Processor inputs (left padded) for prompts that end with a user turn: each rendered with the family's
    template and generation prompt, images and videos through the family's `run_processor`, as in training.

    `media`: each prompt's (images, videos) as `vlmtune.datasets.load_media` returns them; loaded here (a bad
    file raises BadSample) when not given. The tokenizer must pad on the left (generation continues at the
    right end).
    """
    if media is None:
        media = [load_media(s, num_frames=num_frames) for s in prompts]
    texts = [prompt_text(collator, s) for s in prompts]
    # Images grouped per prompt: processors that count images per sample (Gemma 3, Idefics3) need it.
    images = [prompt_images for prompt_images, _ in media]
    # Videos in prompt order, one list of frames each; passed only when there are some (not every family's
    # processor takes the argument).
    videos = [video for _, prompt_videos in media for video in prompt_videos]
    return collator.run_processor(
        text=texts,
        images=images if any(images) else None,
        **({"videos": videos} if videos else {}),
        padding=True,
        return_tensors="pt",
        add_special_tokens=collator.adds_bos(texts[0]),  # as in training: no second bos
    )


def prompt_text(collator: VLMCollator, sample: Sample) -> str:
    """The sample up to its last user turn, rendered with the family's template and generation prompt."""
    return collator.render(collator.to_messages(without_reply(sample)), add_generation_prompt=True)


def without_reply(sample: Sample) -> Sample:
    """The sample up to its last user turn (its final assistant turn, the reference, dropped)."""
    return dataclasses.replace(sample, turns=sample.turns[:-1]) if sample.turns[-1].role == ASSISTANT else sample


@torch.no_grad()
def generate_replies(
    model,
    collator: VLMCollator,
    samples: list[Sample],
    max_new_tokens: int = 16,
    batch_size: int = 32,
    num_frames: int = 8,
    sampling: dict | None = None,
) -> list[str | BadSample]:
    """The model's greedy reply to each sample's conversation without its last assistant turn.

    Videos are decoded to `num_frames` frames, as in training. `sampling` (e.g. `{"temperature": 0.7,
    "top_p": 0.9}`) samples the reply instead, with those `generate` settings. A sample whose media cannot be
    read (or which the processor refuses) gets, in place of its reply, the BadSample that names it and why; it
    is logged, and the other samples of its batch are still answered.
    """
    decoding = {"do_sample": True, **sampling} if sampling else {"do_sample": False}
    tokenizer = collator.tokenizer
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation continues at the right end
    model.eval()
    replies: list[str | BadSample] = [""] * len(samples)
    # Samples with images and text-only samples go in separate batches: not every processor takes both in one call
    # (Mllama's fails on a text-only sample next to image samples).
    with_images = [i for i, s in enumerate(samples) if s.images]
    text_only = [i for i, s in enumerate(samples) if not s.images]
    batches = [
        group[start : start + batch_size]
        for group in (with_images, text_only)
        for start in range(0, len(group), batch_size)
    ]
    try:
        for indices in batches:
            media = {}
            for i in indices:
                try:
                    media[i] = load_media(samples[i], num_frames=num_frames)
                except BadSample as error:
                    logger.warning("skipping bad sample: %s", error)
                    replies[i] = error
            replies_of_batch(model, collator, samples, media, max_new_tokens, replies, decoding)
    finally:
        tokenizer.padding_side = padding_side
    return replies


def replies_of_batch(
    model, collator: VLMCollator, samples, media: dict, max_new_tokens: int, replies: list, decoding: dict
) -> None:
    """Generate for the samples in `media` (index -> (images, videos)) as one batch, into `replies`; when the
    processor refuses the batch, each sample alone, so that only the sample it refuses is skipped."""
    if not media:
        return
    indices = list(media)
    prompts = [without_reply(samples[i]) for i in indices]
    try:
        inputs = encode_prompts(collator, prompts, media=[media[i] for i in indices]).to(model.device)
    except (ValueError, OSError) as error:  # what processors raise on media they cannot use
        if len(indices) > 1:
            for i in indices:
                replies_of_batch(model, collator, samples, {i: media[i]}, max_new_tokens, replies, decoding)
            return
        replies[indices[0]] = BadSample(f"{samples[indices[0]].source}: {type(error).__name__}: {error}")
        logger.warning("skipping bad sample: %s", replies[indices[0]])
        return
    # Media tokens are never generated (as in GRPO's rollouts): a reply holds text only, and a policy trained with
    # them suppressed may still rank one first (decoded, it is an empty reply).
    output = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        pad_token_id=collator.pad_token_id,
        suppress_tokens=sorted(collator.media_token_ids) or None,
        **decoding,
    )
    new_tokens = output[:, inputs["input_ids"].shape[1] :]
    texts = collator.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    for i, text in zip(indices, texts, strict=True):
        replies[i] = text.strip()
