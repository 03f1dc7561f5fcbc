"""The GRPO-family losses equal TRL's GRPOTrainer's on identical prompts, completions, rewards and log-probs.

TRL's loss lives in `GRPOTrainer._compute_loss(model, inputs)` (private: TRL has no public function for the loss
alone). It is called here on a real GRPOTrainer built with TRL's public constructor around a tiny Qwen2 causal LM
(a model TRL runs as is), with the inputs its `_generate_and_score_completions` would produce: prompt/completion
ids and masks, advantages, the old and reference log-probs, `num_items_in_batch`. vlmtune computes the same loss
with its own training forward (`completion_logps`) and `policy_loss` on the same model; advantages come from
vlmtune's `group_advantages`, checked against TRL's formula in a separate test. The model is in eval mode, so
TRL's accumulation normaliser is 1 (and DAPO's is `num_items_in_batch`).
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import save_tiny_causal_lm
from vlmtune.grpo.loss import LossSettings, group_advantages, policy_loss
from vlmtune.grpo.rollouts import completion_logps

CASES = [
    ("grpo", "token"),
    ("dr_grpo", "token"),
    ("dapo", "token"),
    ("bnpo", "token"),
    ("grpo", "sequence"),  # GSPO
    ("cispo", "token"),
    ("sapo", "token"),
    ("sapo", "sequence"),
]
MAX_COMPLETION_LENGTH = 5


@pytest.fixture(scope="module")
def trl_trainer(tmp_path_factory):
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    folder = tmp_path_factory.mktemp("tiny_qwen2")
    tokenizer = save_tiny_causal_lm(folder)
    args = GRPOConfig(
        output_dir=str(folder / "out"),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=MAX_COMPLETION_LENGTH,
        beta=0.04,
        epsilon=0.2,
        epsilon_high=0.28,
        sapo_temperature_pos=0.9,  # not TRL's defaults (1.0 / 1.05), so a swapped pair shows
        sapo_temperature_neg=1.3,
        temperature=0.7,
        use_cpu=True,
        report_to="none",
        bf16=False,
    )
    trainer = GRPOTrainer(
        model=str(folder),
        reward_funcs=lambda completions, **_: [0.0] * len(completions),
        args=args,
        train_dataset=Dataset.from_dict({"prompt": ["t5 t6"] * 4}),
        processing_class=tokenizer,
    )
    return trainer


@pytest.mark.parametrize(("loss_type", "level"), CASES)
def test_loss_equals_trl(trl_trainer, loss_type, level):
    trainer = trl_trainer
    model = trainer.model.eval()
    trainer.loss_type, trainer.importance_sampling_level = loss_type, level
    trainer.epsilon_high = 1.1 if loss_type == "cispo" else 0.28  # CISPO's cap is on the ratio itself
    generator = torch.Generator().manual_seed(1)
    prompt_ids = torch.randint(3, 64, (4, 3), generator=generator)
    completion_ids = torch.randint(3, 64, (4, MAX_COMPLETION_LENGTH), generator=generator)
    completion_mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    rewards = torch.tensor([1.0, 0.0, 0.5, 2.0])
    advantages, _ = group_advantages(rewards, num_generations=2)
    inputs = {"input_ids": torch.cat([prompt_ids, completion_ids], 1), "attention_mask": torch.ones(4, 8)}
    with torch.no_grad():
        logps, _ = completion_logps(model, inputs, MAX_COMPLETION_LENGTH, temperature=0.7)
    # Off-policy old log-probs (as in a later iteration) and a different reference, so clipping and KL matter.
    old_logps = logps + 0.3 * torch.randn(logps.shape, generator=generator)
    ref_logps = logps + 0.2 * torch.randn(logps.shape, generator=generator)
    trl_loss = trainer._compute_loss(
        model,
        {
            "prompt_ids": prompt_ids,
            "prompt_mask": torch.ones_like(prompt_ids),
            "completion_ids": completion_ids,
            "completion_mask": completion_mask,
            "advantages": advantages,
            "old_per_token_logps": old_logps,
            "ref_per_token_logps": ref_logps,
            "num_items_in_batch": completion_mask.sum(),
        },
    )
    settings = LossSettings(loss_type, 0.2, trainer.epsilon_high, 0.04, level, MAX_COMPLETION_LENGTH, True, 0.9, 1.3)
    logps, _ = completion_logps(model, inputs, MAX_COMPLETION_LENGTH, temperature=0.7)
    ours, stats = policy_loss(logps, old_logps, advantages, completion_mask, settings, ref_logps)
    torch.testing.assert_close(ours, trl_loss, atol=1e-6, rtol=1e-5)
    trl_grad = torch.autograd.grad(trl_loss, list(model.parameters()), allow_unused=True)
    our_grad = torch.autograd.grad(ours, list(model.parameters()), allow_unused=True)
    for a, b in zip(our_grad, trl_grad, strict=True):  # CISPO's detached weight: same value, same gradient too
        if b is not None:
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-4)
    clip_key = {"cispo": "cispo_clip_ratio", "sapo": None}.get(loss_type, "clip_ratio/region_mean")
    if clip_key:
        assert stats[clip_key] == pytest.approx(trainer._metrics["eval"][clip_key][-1])
        assert 0 < stats[clip_key] < 1  # the inputs do reach the clip
    else:
        assert not any(key.startswith("clip_ratio") for key in stats)
    assert stats["kl"] == pytest.approx(trainer._metrics["eval"]["kl"][-1])


def test_advantages_follow_trl():
    """TRL: (r - group mean) / (group std + 1e-4) (std Bessel-corrected); batch: the batch std; none: unscaled."""
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5, 3.0, 1.0])
    grouped = rewards.view(-1, 2)
    mean = grouped.mean(1).repeat_interleave(2)
    group_std = grouped.std(1).repeat_interleave(2)
    advantages, tied = group_advantages(rewards, 2, "group")
    torch.testing.assert_close(advantages, (rewards - mean) / (group_std + 1e-4))
    assert tied.tolist() == [False, False, True, True, False, False]
    torch.testing.assert_close(group_advantages(rewards, 2, "batch")[0], (rewards - mean) / (rewards.std() + 1e-4))
    torch.testing.assert_close(group_advantages(rewards, 2, "none")[0], rewards - mean)
    with_none = torch.tensor([1.0, float("nan"), 0.0, 1.0])  # a completion every reward skipped: advantage 0
    advantages, _ = group_advantages(with_none, 2)
    assert advantages[1] == 0 and advantages[0] == 0  # alone in its group: no comparison, no signal


def test_rloo_advantages_are_leave_one_out():
    """RLOO (TRL's RLOOTrainer): reward minus the mean of the group's other completions, exact values."""
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0, 3.0, float("nan"), 1.0, 2.0])
    advantages, tied = group_advantages(rewards, 4, "none", "rloo")
    expected = [1 - 1 / 3, 0 - 2 / 3, 0 - 2 / 3, 1 - 1 / 3, 0, 0, 0, 0, 3 - 1.5, 0, 1 - 2.5, 2 - 2]
    torch.testing.assert_close(advantages, torch.tensor(expected))
    assert tied.tolist() == [False] * 4 + [True] * 4 + [False] * 4
    # TRL's RLOOTrainer on the same rewards (its normalize_advantages off): the same numbers.
    grouped = rewards.view(-1, 4)
    counts = (~grouped.isnan()).sum(1, keepdim=True)
    trl = torch.nan_to_num(rewards - ((grouped.nansum(1, keepdim=True) - grouped) / (counts - 1)).view(-1))
    torch.testing.assert_close(advantages, trl)
    # Scaled by the group's reward std like GRPO: RLOO is then GRPO times G / (G - 1) where nothing is NaN.
    scaled, _ = group_advantages(rewards[:8], 4, "group", "rloo")
    torch.testing.assert_close(scaled, group_advantages(rewards[:8], 4, "group", "grpo")[0] * 4 / 3)


def test_reinforce_plus_plus_normalises_by_the_batch():
    """REINFORCE++ baseline (ms-swift): reward minus the group mean, divided by the std over the whole batch of
    those differences (not of the raw rewards, as GRPO's batch scaling)."""
    rewards = torch.tensor([1.0, 0.0, 4.0, 4.0, 3.0, 5.0])
    centred = torch.tensor([0.5, -0.5, 0.0, 0.0, -1.0, 1.0])
    std = ((0.25 + 0.25 + 1 + 1) / 5) ** 0.5  # Bessel-corrected std of `centred` (mean 0)
    advantages, _ = group_advantages(rewards, 2, "batch", "reinforce_plus_plus")
    torch.testing.assert_close(advantages, centred / (std + 1e-4))
    assert not torch.allclose(advantages, group_advantages(rewards, 2, "batch", "grpo")[0])
