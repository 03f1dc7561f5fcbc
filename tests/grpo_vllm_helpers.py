"""What the vLLM rollout tests share (tests/test_grpo_vllm.py: colocate; tests/test_grpo_rollout_server.py: server):
prompts, the comparison of vLLM's log-probs with the training forward's, the checks of a batch of rollouts.
Imports no vLLM (the server test's trainer runs without it)."""

from __future__ import annotations

import torch

from tests.conftest import digit_png
from vlmtune.datasets import Sample, Turn
from vlmtune.grpo.rollouts import (
    Rollouts,
    SamplingSettings,
    completion_logps,
    stop_token_ids,
    token_logps,
    training_inputs,
)

# fp32 on both sides: what remains is the two implementations' kernels (measured: 9.5e-7 on tiny-qwen2-vl).
# vLLM's log-probs are of the distribution it sampled from, whose media tokens were biased away (-100), so the
# training forward is compared with its media logits removed; with them the difference is the media tokens'
# probability mass (measured 3e-3 on the tiny models' ~1k-token vocabularies, printed below).
TOLERANCE = 1e-5


def digit_prompts(tmp_path) -> list[Sample]:
    images = [digit_png(tmp_path, f"d{d}.png", d) for d in (3, 7)]
    return [Sample([Turn("user", f"<image>\nHow many squares? {i}")], images=[im]) for i, im in enumerate(images)]


def logp_differences(model, collator, rollouts: Rollouts, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sampled token: |training-forward log-prob - vLLM's| with the media tokens' logits removed (the
    distribution vLLM sampled from), and the same with them (what the loss computes)."""
    inputs = training_inputs(rollouts, collator.reply_token_type_id)
    length = rollouts.completion_ids.shape[1]
    with torch.no_grad():
        logps, _ = completion_logps(model, inputs, length, temperature)
        logits = model(**inputs, use_cache=False).logits[:, -length - 1 : -1].float() / temperature
    logits[..., sorted(collator.media_token_ids)] = float("-inf")
    without_media = token_logps(logits, rollouts.completion_ids)
    mask = rollouts.completion_mask.bool()
    vllm_logps = rollouts.sampling_logps[mask]
    return (without_media[mask] - vllm_logps).abs(), (logps[mask] - vllm_logps).abs()


def check_rollouts(rollouts: Rollouts, collator, prompts: int, settings: SamplingSettings) -> None:
    assert rollouts.completion_ids.shape[0] == prompts * settings.num_generations == len(rollouts.prompts)
    mask = rollouts.completion_mask.bool()
    assert mask.sum() > len(rollouts.prompts), "completions of one token: the comparison would be nearly empty"
    assert not any(int(t) in collator.media_token_ids for t in rollouts.completion_ids[mask])
    stops = torch.isin(rollouts.completion_ids, torch.tensor(stop_token_ids(collator))) & mask
    assert torch.equal(stops.any(dim=1), ~rollouts.truncated)  # a row ends at its first stop, or is cut
