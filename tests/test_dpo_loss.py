"""The preference losses equal TRL 1.16's on identical tensors: every DPO loss type (and mixes with weights), SimPO
(TRL's CPO with loss_type="simpo") and ORPO (TRL's experimental ORPOTrainer).

TRL's DPO loss lives in `DPOTrainer._compute_loss(model, inputs, return_outputs)` (private: TRL has no public
function for the loss alone). It is called here on a real DPOTrainer built with TRL's public constructor around a
tiny Qwen2 causal LM (a model TRL runs as is), with the inputs its collator would produce: chosen rows then
rejected rows, the completion mask, and reference log-probs given as precomputed (random). vlmtune sums the same
model's log-probs over the same completion tokens with a plain forward and computes `preference_loss`. TRL's
CPO and ORPO losses take per-reply log-probs (`cpo_loss`, `odds_ratio_loss`), called with the settings they read.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tests.conftest import save_tiny_causal_lm
from vlmtune.dpo.loss import LossSettings, PairLogps, preference_loss

DPO_CASES = [
    (("sigmoid",), None, 0.0),
    (("hinge",), None, 0.0),
    (("ipo",), None, 0.0),
    (("robust",), None, 0.2),
    (("bco_pair",), None, 0.0),
    (("sppo_hard",), None, 0.0),
    (("apo_zero",), None, 0.0),
    (("apo_down",), None, 0.0),
    (("sft",), None, 0.0),
    (("exo_pair",), None, 1e-3),
    (("exo_pair",), None, 0.2),
    (("nca_pair",), None, 0.0),
    (("aot",), None, 0.0),
    (("aot",), None, 0.1),
    (("aot_unpaired",), None, 0.0),
    (("aot_unpaired",), None, 0.1),
    (("discopop",), None, 0.0),
    (("sigmoid_norm",), None, 0.0),
    (("sigmoid_norm", "aot", "sft"), (1.0, 0.5, 0.2), 0.0),
    (("sigmoid", "sft"), (1.0, 0.5), 0.0),  # RPO
    (("sigmoid", "bco_pair", "sft"), (0.8, 0.2, 1.0), 0.0),  # MPO-style mix
]
PAIRS = 4  # aot and aot_unpaired sort over the pairs: enough of them that the order matters


@pytest.fixture(scope="module")
def trl_dpo(tmp_path_factory):
    pytest.importorskip("trl")
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    folder = tmp_path_factory.mktemp("tiny_qwen2_dpo")
    tokenizer = save_tiny_causal_lm(folder)
    args = DPOConfig(output_dir=str(folder / "out"), use_cpu=True, report_to="none", bf16=False)
    dataset = Dataset.from_dict({"prompt": ["t5 t6"] * 2, "chosen": ["t7"] * 2, "rejected": ["t8"] * 2})
    trainer = DPOTrainer(model=str(folder), args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.model.eval()
    trainer.precompute_ref_logps = True  # the reference log-probs come in the batch: random ones, below
    return trainer


def dpo_inputs(seed: int) -> dict[str, torch.Tensor]:
    """PAIRS chosen rows then PAIRS rejected rows: a prompt, a completion of 1-5 tokens, right padding."""
    generator = torch.Generator().manual_seed(seed)
    rows, masks, attention = [], [], []
    length = 12
    for _ in range(2 * PAIRS):
        prompt = int(torch.randint(2, 5, (1,), generator=generator))
        completion = int(torch.randint(1, 6, (1,), generator=generator))
        ids = torch.full((length,), 2)
        ids[: prompt + completion] = torch.randint(3, 64, (prompt + completion,), generator=generator)
        mask = torch.zeros(length, dtype=torch.long)
        mask[prompt : prompt + completion] = 1
        attend = torch.zeros(length, dtype=torch.long)
        attend[: prompt + completion] = 1
        rows.append(ids)
        masks.append(mask)
        attention.append(attend)
    return {
        "input_ids": torch.stack(rows),
        "attention_mask": torch.stack(attention),
        "completion_mask": torch.stack(masks),
        "ref_chosen_logps": -10 * torch.rand(PAIRS, generator=generator),
        "ref_rejected_logps": -10 * torch.rand(PAIRS, generator=generator),
    }


def summed_logps(model, inputs: dict[str, torch.Tensor]) -> PairLogps:
    """vlmtune's side: a plain forward, log softmax at each completion token (shifted), summed per row."""
    with torch.no_grad():
        logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).logits
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token_logps = torch.gather(logps, -1, inputs["input_ids"][:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = inputs["completion_mask"][:, 1:].float()
    sums, counts = (token_logps * mask).sum(1), mask.sum(1)
    return PairLogps(sums[:PAIRS], sums[PAIRS:], counts[:PAIRS], counts[PAIRS:])


@pytest.mark.parametrize(("loss_type", "loss_weights", "label_smoothing"), DPO_CASES)
@pytest.mark.parametrize("beta", [0.1, 0.5])
def test_dpo_loss_equals_trl(trl_dpo, loss_type, loss_weights, label_smoothing, beta):
    check_loss_equals_trl(trl_dpo, loss_type, loss_weights, label_smoothing, beta)


@pytest.mark.parametrize("tau", [0.05, 0.5])
def test_discopop_tau_equals_trl(trl_dpo, tau):
    trl_dpo.args.discopop_tau = tau  # TRL reads it from its config at each step
    try:
        check_loss_equals_trl(trl_dpo, ("discopop",), None, 0.0, 0.1, discopop_tau=tau)
    finally:
        trl_dpo.args.discopop_tau = 0.05


def check_loss_equals_trl(trl_dpo, loss_type, loss_weights, label_smoothing, beta, discopop_tau=0.05):
    trl_dpo.loss_types = list(loss_type)
    trl_dpo.loss_weights = list(loss_weights or [1.0] * len(loss_type))
    trl_dpo.beta, trl_dpo.label_smoothing = beta, label_smoothing
    inputs = dpo_inputs(seed=len(loss_type) + int(10 * beta))
    with torch.no_grad():
        expected = trl_dpo._compute_loss(trl_dpo.model, dict(inputs), return_outputs=False)
    reference = PairLogps(inputs["ref_chosen_logps"], inputs["ref_rejected_logps"], None, None)
    settings = LossSettings(loss_type, tuple(trl_dpo.loss_weights), beta, label_smoothing, discopop_tau=discopop_tau)
    loss, (chosen_rewards, rejected_rewards) = preference_loss(
        summed_logps(trl_dpo.model, inputs), reference, settings
    )
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-5)
    metrics = trl_dpo._metrics["train" if trl_dpo.model.training else "eval"]
    assert chosen_rewards.mean().item() == pytest.approx(metrics["rewards/chosen"][-1], abs=1e-6)
    assert rejected_rewards.mean().item() == pytest.approx(metrics["rewards/rejected"][-1], abs=1e-6)


def random_pairs(seed: int) -> PairLogps:
    generator = torch.Generator().manual_seed(seed)
    chosen_tokens = torch.randint(1, 20, (8,), generator=generator).float()
    rejected_tokens = torch.randint(1, 20, (8,), generator=generator).float()
    return PairLogps(
        -3 * chosen_tokens * torch.rand(8, generator=generator),
        -3 * rejected_tokens * torch.rand(8, generator=generator),
        chosen_tokens,
        rejected_tokens,
    )


@pytest.mark.parametrize(("beta", "gamma", "label_smoothing"), [(0.1, 0.5, 0.0), (2.0, 1.0, 0.1)])
def test_simpo_equals_trl_cpo(beta, gamma, label_smoothing):
    pytest.importorskip("trl")
    from trl.experimental.cpo import CPOTrainer

    policy = random_pairs(1)
    chosen, rejected = policy.averaged()  # TRL's CPO averages over tokens for simpo (average_log_prob)
    settings = SimpleNamespace(
        alpha=0.0,
        beta=beta,
        simpo_gamma=gamma,
        label_smoothing=label_smoothing,
        loss_type="simpo",
        accelerator=SimpleNamespace(device="cpu"),
    )
    losses, chosen_rewards, rejected_rewards = CPOTrainer.cpo_loss(settings, chosen, rejected)
    loss, rewards = preference_loss(policy, None, LossSettings(("simpo",), (1.0,), beta, label_smoothing, gamma))
    torch.testing.assert_close(loss, losses.mean(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(rewards[0], chosen_rewards)
    torch.testing.assert_close(rewards[1], rejected_rewards)


@pytest.mark.parametrize("beta", [0.1, 0.25])
def test_orpo_equals_trl(beta):
    pytest.importorskip("trl")
    from trl.experimental.orpo import ORPOTrainer

    policy = random_pairs(2)
    chosen, rejected = policy.averaged()  # TRL's ORPO averages over tokens (average_log_prob=True)
    settings = SimpleNamespace(beta=beta, accelerator=SimpleNamespace(device="cpu"))
    losses, chosen_rewards, rejected_rewards, _, _ = ORPOTrainer.odds_ratio_loss(settings, chosen, rejected)
    nll = -policy.chosen.sum() / policy.chosen_tokens.sum()  # TRL: cross-entropy over every chosen token
    loss, rewards = preference_loss(policy, None, LossSettings(("orpo",), (1.0,), beta))
    torch.testing.assert_close(loss, nll - losses.mean(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(rewards[0], chosen_rewards)
    torch.testing.assert_close(rewards[1], rejected_rewards)


def test_reference_losses_need_a_reference():
    with pytest.raises(ValueError, match="reference"):
        preference_loss(random_pairs(3), None, LossSettings(("sigmoid",)))
