"""GRPO rollouts for every registered family (one image, two images and a video where the family takes them):
the training forward reproduces the sampling-time log-probs.

At step 0 the policy that sampled a completion and the one the loss evaluates are the same model, so the
log-probs of the completion computed by the training forward (prompt + completion, every media key carried
over) must equal the ones `generate` recorded while sampling (fp32, 1e-4). A misplaced image, a wrong stop,
token type ids or a cross-attention mask not extended over the completion all break this equality. KL to the
reference (the same weights) is then exactly 0.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import digit_png, resolved_family, write_video
from vlmtune.datasets import Sample, Turn
from vlmtune.grpo.loss import per_token_kl
from vlmtune.grpo.rollouts import (
    SamplingSettings,
    completion_logps,
    completion_mask,
    generate_completions,
    stop_token_ids,
    training_inputs,
)
from vlmtune.supported_models import FAMILIES, MODELS


def tiny_id(family_id: str) -> str:
    return next(model_id for model_id, entry in MODELS.items() if entry.is_tiny and entry.family_id == family_id)


@pytest.mark.parametrize("family_id", sorted(FAMILIES))
def test_training_forward_reproduces_sampling_logps(family_id, load_tiny, tmp_path):
    family = resolved_family(family_id)
    model, processor = load_tiny(tiny_id(family_id))
    collator = family.collator(processor, family.reply_end, 1024)
    seven, three = digit_png(tmp_path, "seven.png", 7), digit_png(tmp_path, "three.png", 3, size=48)
    batches = [[Sample([Turn("user", "<image>\nHow many squares?")], images=[seven], source="one image")]]
    if family.multi_image:
        batches[0].append(Sample([Turn("user", "<image><image>\nSame digit?")], images=[seven, three], source="2"))
    if family.video:  # a batch of its own: not every processor takes images and videos in one call
        clip = write_video(tmp_path / "clip.mp4")
        batches.append([Sample([Turn("user", "<video>\nWhat happens?")], videos=[clip], source="video")])
    for prompts in batches:
        assert_sampling_logps_reproduced(model, collator, prompts)


def assert_sampling_logps_reproduced(model, collator, prompts: list[Sample]) -> None:
    torch.manual_seed(0)
    settings = SamplingSettings(num_generations=2, temperature=0.9, max_completion_length=6, num_frames=4)
    rollouts = generate_completions(model, collator, prompts, settings)
    assert rollouts.completion_ids.shape[0] == 2 * len(prompts)
    media = collator.media_token_ids
    assert not any(int(t) in media for t in rollouts.completion_ids[rollouts.completion_mask.bool()])
    inputs = training_inputs(rollouts, collator.reply_token_type_id)
    model.eval()
    with torch.no_grad():
        logps, _ = completion_logps(model, inputs, rollouts.completion_ids.shape[1], settings.temperature)
    mask = rollouts.completion_mask.bool()
    torch.testing.assert_close(logps[mask], rollouts.sampling_logps[mask], atol=1e-4, rtol=0)
    kl = per_token_kl(logps, logps.clone())
    assert torch.equal(kl * mask, torch.zeros_like(kl))


def test_completion_mask_ends_at_the_first_stop_token():
    ids = torch.tensor([[5, 1, 7, 1], [5, 6, 7, 8], [9, 9, 4, 2]])
    mask, truncated = completion_mask(ids, stop_ids=[1, 4])
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]]
    assert truncated.tolist() == [False, True, False]


def test_stop_tokens_are_the_eos_and_the_family_end_of_turn(load_tiny):
    _, processor = load_tiny("tiny-qwen2-vl")
    family = resolved_family("qwen2-vl")
    collator = family.collator(processor, family.reply_end)
    expected = {processor.tokenizer.eos_token_id, processor.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    assert stop_token_ids(collator) == sorted(expected)
