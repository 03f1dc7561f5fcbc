"""GRPO rollouts sampled by vLLM give the training forward the log-probs vLLM recorded (make test-vllm).

Runs with the separate vLLM environment's Python (scripts/setup_vllm_venv.sh), one engine at a time, in this
process, fp32 on CPU. At step 0 the engine and the trained model hold the same weights, so the log-probs of each
vLLM-sampled completion computed by GRPOTrainer's training forward (`training_inputs` + `completion_logps`) must
equal the ones vLLM reported while sampling: a misplaced image, a prompt rendered or tokenized differently, a
wrong stop or a temperature applied differently all break it.
"""

from __future__ import annotations

import gc

import pytest
import torch

from tests.conftest import digit_png
from vlmtune.datasets import Sample, Turn
from vlmtune.grpo.rollouts import (
    SamplingSettings,
    completion_logps,
    stop_token_ids,
    token_logps,
    training_inputs,
)
from vlmtune.modeling import checkpoint_path
from vlmtune.outputs import load_for_inference
from vlmtune.supported_models import get_model

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm")

from vlmtune.grpo.vllm_rollouts import generate_completions_vllm, rollout_engine  # noqa: E402

# fp32 on both sides: what remains is the two implementations' kernels (measured: 9.5e-7 on tiny-qwen2-vl).
# vLLM's log-probs are of the distribution it sampled from, whose media tokens were biased away (-100), so the
# training forward is compared with its media logits removed; with them the difference is the media tokens'
# probability mass (measured 3e-3 on the tiny models' ~1k-token vocabularies, printed below).
TOLERANCE = 1e-5


@pytest.mark.parametrize("family_id", ["qwen2-vl", "llava-1.5"])
def test_vllm_sampled_completions_get_the_vllm_logps_in_the_training_forward(family_id, tmp_path):
    entry = get_model(f"tiny-{family_id}")
    model, processor, _ = load_for_inference(entry.model_id)
    model.float().eval()
    collator = entry.family.collator(processor, entry.family.reply_end, 1024)
    images = [digit_png(tmp_path, f"d{d}.png", d) for d in (3, 7)]
    prompts = [Sample([Turn("user", f"<image>\nHow many squares? {i}")], images=[im]) for i, im in enumerate(images)]
    settings = SamplingSettings(num_generations=3, temperature=0.9, max_completion_length=8)
    llm = rollout_engine(checkpoint_path(entry), entry.family, family_id, max_model_len=1024, dtype="float32")
    try:
        rollouts = generate_completions_vllm(llm, collator, prompts, settings)
    finally:
        del llm
        gc.collect()
    assert rollouts.completion_ids.shape[0] == 6 and len(rollouts.prompts) == 6
    mask = rollouts.completion_mask.bool()
    assert mask.sum() > 6, "completions of one token: the comparison would be nearly empty"
    assert not any(int(t) in collator.media_token_ids for t in rollouts.completion_ids[mask])
    stops = torch.isin(rollouts.completion_ids, torch.tensor(stop_token_ids(collator))) & mask
    assert torch.equal(stops.any(dim=1), ~rollouts.truncated)  # a row ends at its first stop, or is cut
    inputs = training_inputs(rollouts, collator.reply_token_type_id)
    length = rollouts.completion_ids.shape[1]
    with torch.no_grad():
        logps, _ = completion_logps(model, inputs, length, settings.temperature)
        logits = model(**inputs, use_cache=False).logits[:, -length - 1 : -1].float() / settings.temperature
    logits[..., sorted(collator.media_token_ids)] = float("-inf")
    without_media = token_logps(logits, rollouts.completion_ids)
    vllm_logps = rollouts.sampling_logps[mask]
    difference = (without_media[mask] - vllm_logps).abs().max().item()
    media_mass = (logps[mask] - vllm_logps).abs().max().item()
    print(f"{family_id}: max |logp - vLLM logp| = {difference:.2e} (media removed), {media_mass:.2e} (not)")
    torch.testing.assert_close(without_media[mask], vllm_logps, atol=TOLERANCE, rtol=0)
