"""Greedy generation for a list of samples: the prompt is each sample up to its last user turn."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from vlmtune.collators.base import VLMCollator
from vlmtune.datasets import ASSISTANT, Sample, decode_video, open_image


def encode_prompts(collator: VLMCollator, prompts: list[Sample], num_frames: int = 8) -> Any:
    """Processor inputs (left padded) for prompts that end with a user turn: each rendered with the family's
    template and generation prompt, images and videos through the family's `run_processor`, as in training.

    The tokenizer must pad on the left (generation continues at the right end).
    """
    texts = [collator.render(collator.to_messages(s), add_generation_prompt=True) for s in prompts]
    # Images grouped per prompt: processors that count images per sample (Gemma 3, Idefics3) need it.
    images = [[open_image(path) for path in s.images] for s in prompts]
    # Videos in prompt order, one list of frames each; passed only when there are some (not every family's
    # processor takes the argument).
    videos = [decode_video(path, num_frames) for s in prompts for path in s.videos]
    return collator.run_processor(
        text=texts,
        images=images if any(images) else None,
        **({"videos": videos} if videos else {}),
        padding=True,
        return_tensors="pt",
        add_special_tokens=collator.adds_bos(texts[0]),  # as in training: no second bos
    )


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
) -> list[str]:
    """The model's greedy reply to each sample's conversation without its last assistant turn.

    Videos are decoded to `num_frames` frames, as in training.
    """
    tokenizer = collator.tokenizer
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"  # generation continues at the right end
    model.eval()
    replies = [""] * len(samples)
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
            chunk = [without_reply(samples[i]) for i in indices]
            inputs = encode_prompts(collator, chunk, num_frames).to(model.device)
            output = model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=collator.pad_token_id
            )
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            for i, text in zip(indices, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                replies[i] = text.strip()
    finally:
        tokenizer.padding_side = padding_side
    return replies
