"""Greedy generation for a list of samples: the prompt is each sample up to its last user turn."""

from __future__ import annotations

import torch

from vlmtune.collators.base import VLMCollator
from vlmtune.datasets import Sample, decode_video, open_image


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
            chunk = [samples[i] for i in indices]
            prompts = [collator.render(collator.to_messages(s)[:-1], add_generation_prompt=True) for s in chunk]
            # Images grouped per prompt: processors that count images per sample (Gemma 3, Idefics3) need it.
            images = [[open_image(path) for path in s.images] for s in chunk]
            if not any(images):
                images = None
            # Videos in prompt order, one list of frames each; passed only when there are some (not every
            # family's processor takes the argument).
            videos = [decode_video(path, num_frames) for s in chunk for path in s.videos]
            inputs = collator.run_processor(
                text=prompts,
                images=images,
                **({"videos": videos} if videos else {}),
                padding=True,
                return_tensors="pt",
                add_special_tokens=collator.adds_bos(prompts[0]),  # as in training: no second bos
            ).to(model.device)
            output = model.generate(
                **inputs, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=collator.pad_token_id
            )
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            for i, text in zip(indices, tokenizer.batch_decode(new_tokens, skip_special_tokens=True), strict=True):
                replies[i] = text.strip()
    finally:
        tokenizer.padding_side = padding_side
    return replies
