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

from vlmtune.grpo.loss import LossSettings, group_advantages, policy_loss
from vlmtune.grpo.rollouts import completion_logps

CASES = [
    ("grpo", "token"),
    ("dr_grpo", "token"),
    ("dapo", "token"),
    ("bnpo", "token"),
    ("grpo", "sequence"),  # GSPO
]
MAX_COMPLETION_LENGTH = 5


@pytest.fixture(scope="module")
def trl_trainer(tmp_path_factory):
    pytest.importorskip("trl")
    from datasets import Dataset
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    torch.manual_seed(0)
    vocab = {f"t{i}": i for i in range(64)}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")), eos_token="t1", pad_token="t2"
    )
    config = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        eos_token_id=1,
        pad_token_id=2,
    )
    folder = tmp_path_factory.mktemp("tiny_qwen2")
    Qwen2ForCausalLM(config).save_pretrained(folder)  # with beta > 0, TRL loads its reference from a path
    tokenizer.save_pretrained(folder)
    args = GRPOConfig(
        output_dir=str(folder / "out"),
        per_device_train_batch_size=4,
        num_generations=2,
        max_completion_length=MAX_COMPLETION_LENGTH,
        beta=0.04,
        epsilon=0.2,
        epsilon_high=0.28,
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
    settings = LossSettings(loss_type, 0.2, 0.28, 0.04, level, MAX_COMPLETION_LENGTH, use_bias_correction_kl=True)
    logps, _ = completion_logps(model, inputs, MAX_COMPLETION_LENGTH, temperature=0.7)
    ours, stats = policy_loss(logps, old_logps, advantages, completion_mask, settings, ref_logps)
    torch.testing.assert_close(ours, trl_loss, atol=1e-6, rtol=1e-5)
    assert stats["clip_ratio/region_mean"] == pytest.approx(trainer._metrics["eval"]["clip_ratio/region_mean"][-1])
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
