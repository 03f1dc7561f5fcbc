"""GRPO-family losses, as TRL's GRPOTrainer defines them (trl 1.16.0, `_compute_loss`), as plain tensor maths.

    advantages, tied = group_advantages(rewards, num_generations, scale_rewards, estimator="grpo")
    loss, stats = policy_loss(logps, old_logps, advantages, mask, settings, ref_logps=...)

The loss definitions follow TRL exactly (tests/test_grpo_loss.py checks each loss type against TRL's own code on
the same tensors); RLOO's leave-one-out baseline is TRL's RLOOTrainer's, REINFORCE++'s batch-normalised
group baseline ms-swift's `reinforce_plus_plus`. The code is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LossSettings:
    loss_type: str = "dapo"  # grpo, dr_grpo, dapo, bnpo, cispo, sapo
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.0
    importance_sampling_level: str = "token"  # token, or sequence (GSPO)
    max_completion_length: int = 512
    use_bias_correction_kl: bool = True  # KL times the importance ratio (TRL's default since DeepSeek-V3.2)
    sapo_temperature_pos: float = 1.0  # SAPO's soft gate for tokens with a positive advantage
    sapo_temperature_neg: float = 1.05  # ... and for the others


def nanstd(values: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Sample standard deviation (Bessel-corrected, as torch.std) ignoring NaN entries."""
    valid = ~torch.isnan(values)
    count = valid.sum(dim) if dim is not None else valid.sum()
    mean = torch.nanmean(values, dim=dim, keepdim=dim is not None)
    squares = torch.where(valid, (values - mean) ** 2, torch.zeros_like(values))
    total = squares.sum(dim) if dim is not None else squares.sum()
    return (total / (count - 1)).sqrt()


def group_advantages(
    rewards: torch.Tensor, num_generations: int, scale_rewards: str = "group", estimator: str = "grpo"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantages, tied) of a whole generation batch (all processes), groups of `num_generations` in a row.

    The baseline of a completion is its group's mean reward (`grpo`, `reinforce_plus_plus`) or the mean of the
    other completions of its group (`rloo`, leave-one-out, as TRL's RLOOTrainer). The difference is divided by
    std + 1e-4 unless `scale_rewards="none"`: the group's reward std (`group`) or the batch's (`batch`); for
    `reinforce_plus_plus` the std of the baseline-subtracted rewards (ms-swift's REINFORCE++ baseline, whose
    `batch` form normalises by the whole batch). NaN rewards (every reward function returned None) stay out of
    means and stds and get advantage 0. `tied` marks completions whose group has zero reward std: no signal.
    """
    grouped = rewards.view(-1, num_generations)
    group_std = nanstd(grouped, dim=1).repeat_interleave(num_generations)
    if estimator == "rloo":
        scorable = (~torch.isnan(grouped)).sum(dim=1, keepdim=True)
        others = (torch.nansum(grouped, dim=1, keepdim=True) - grouped) / (scorable - 1)  # 0/0 = NaN: alone
        advantages = rewards - others.view(-1)
    else:
        advantages = rewards - torch.nanmean(grouped, dim=1).repeat_interleave(num_generations)
    if scale_rewards == "group":
        advantages = advantages / (group_std + 1e-4)
    elif scale_rewards == "batch":
        spread = advantages if estimator == "reinforce_plus_plus" else rewards
        advantages = advantages / (nanstd(spread) + 1e-4)
    advantages = torch.nan_to_num(advantages, nan=0.0)
    return advantages, torch.isclose(group_std, torch.zeros_like(group_std))


def per_token_kl(logps: torch.Tensor, ref_logps: torch.Tensor) -> torch.Tensor:
    """The k3 estimator of KL(policy || reference) per token: exp(ref - pol) - (ref - pol) - 1 (>= 0, 0 when equal)."""
    delta = ref_logps - logps
    return torch.exp(delta) - delta - 1


def policy_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    settings: LossSettings,
    ref_logps: torch.Tensor | None = None,
    num_items_in_batch: torch.Tensor | float | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The clipped surrogate loss of one batch of completions, aggregated as `settings.loss_type` says.

    logps/old_logps/ref_logps/mask: [N, T]; advantages: [N]. `num_items_in_batch` (dapo): the completion tokens of
    the whole generation batch (default: this batch's). Returns the loss and its statistics (kl, clip ratios).
    """
    mask = mask.to(logps.dtype)
    advantages = advantages.unsqueeze(1)
    log_ratio = logps - old_logps
    if settings.importance_sampling_level == "sequence":  # GSPO: one ratio per completion
        log_ratio = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).unsqueeze(-1)
    ratio = torch.exp(log_ratio)
    per_token = surrogate(logps, ratio, advantages, settings)
    kl = None
    if settings.beta != 0.0:
        kl = per_token_kl(logps, ref_logps)
        if settings.use_bias_correction_kl:  # the unbiased reverse-KL gradient under off-policy samples
            kl = kl * ratio
        per_token = per_token + settings.beta * kl
    if settings.loss_type in ("grpo", "sapo"):
        loss = ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)).mean()
    elif settings.loss_type == "bnpo":
        loss = (per_token * mask).sum() / mask.sum().clamp(min=1.0)
    elif settings.loss_type == "dr_grpo":
        loss = (per_token * mask).sum() / (per_token.size(0) * settings.max_completion_length)
    elif settings.loss_type in ("dapo", "cispo"):
        total = mask.sum() if num_items_in_batch is None else torch.as_tensor(num_items_in_batch, dtype=mask.dtype)
        loss = (per_token * mask).sum() / total.clamp(min=1.0)
    else:
        raise ValueError(f"unknown loss_type {settings.loss_type!r}")

    def masked_mean(values: torch.Tensor) -> float:
        if values.shape[1] == 1:  # sequence level: one value per completion
            return values.float().mean().item()
        return ((values * mask).sum() / mask.sum().clamp(min=1.0)).item()

    stats = {}
    if settings.loss_type == "cispo":  # tokens whose weight was capped
        stats["cispo_clip_ratio"] = masked_mean(((ratio > settings.epsilon_high) & (advantages > 0)).float())
    elif settings.loss_type != "sapo":  # SAPO gates softly: nothing is clipped
        low = (ratio < 1 - settings.epsilon_low) & (advantages < 0)
        high = (ratio > 1 + settings.epsilon_high) & (advantages > 0)
        stats["clip_ratio/low_mean"] = masked_mean(low.float())
        stats["clip_ratio/high_mean"] = masked_mean(high.float())
        stats["clip_ratio/region_mean"] = masked_mean((low | high).float())
    if kl is not None:
        stats["kl"] = masked_mean(kl.detach())
    return loss, stats


def surrogate(
    logps: torch.Tensor, ratio: torch.Tensor, advantages: torch.Tensor, settings: LossSettings
) -> torch.Tensor:
    """The per-token policy term before KL and aggregation.

    PPO's clipped ratio (grpo, dr_grpo, dapo, bnpo); CISPO (MiniMax-M1): the ratio capped at `epsilon_high` and
    detached, as a weight on the REINFORCE term `A * logp`, so capped tokens still get a gradient; SAPO: a
    sigmoid gate `sigmoid(tau * (r - 1)) * 4 / tau` in place of the hard clip (tau per advantage sign), equal in
    gradient to the unclipped ratio at r = 1 and fading smoothly away from it.
    """
    if settings.loss_type == "cispo":
        weight = torch.clamp(ratio, max=settings.epsilon_high).detach()
        return -weight * advantages * logps
    if settings.loss_type == "sapo":
        tau = torch.where(advantages > 0, settings.sapo_temperature_pos, settings.sapo_temperature_neg)
        return -torch.sigmoid(tau * (ratio - 1)) * 4 / tau * advantages
    clipped = torch.clamp(ratio, 1 - settings.epsilon_low, 1 + settings.epsilon_high)
    return -torch.min(ratio * advantages, clipped * advantages)
