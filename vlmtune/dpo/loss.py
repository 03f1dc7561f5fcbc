"""Preference losses, as TRL 1.16 defines them, as plain tensor maths on per-reply log-probs.

    policy = PairLogps(chosen=..., rejected=..., chosen_tokens=..., rejected_tokens=...)   # summed over trained tokens
    loss, rewards = preference_loss(policy, reference, LossSettings(loss_type=("sigmoid",), beta=0.1))

DPO's loss types (`DPOTrainer._compute_loss`): sigmoid, hinge, ipo, exo_pair, nca_pair, robust, bco_pair,
sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sft and sigmoid_norm, several at once weighted by
`loss_weights` (`sigmoid` + `sft` is RPO); aot and aot_unpaired sort over the pairs of a batch (per process).
Reference-free: `simpo` (TRL's CPOTrainer with loss_type="simpo": length-averaged log-probs, a target margin
gamma) and `orpo` (TRL's experimental ORPOTrainer: the chosen reply's NLL plus beta times the log-odds-ratio term).
TRL's CPO-SimPO (`cpo_alpha` > 0) is `simpo` + `sft` with weights (1, cpo_alpha). tests/test_dpo_loss.py checks
each type against TRL's own code on the same tensors; the code is ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Loss types that compare the policy with the reference model; the others need no reference forward.
REFERENCE_LOSS_TYPES = (
    "sigmoid",
    "hinge",
    "ipo",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
    "sigmoid_norm",
)
REFERENCE_FREE_LOSS_TYPES = ("sft", "simpo", "orpo")
LOSS_TYPES = REFERENCE_LOSS_TYPES + REFERENCE_FREE_LOSS_TYPES


@dataclass(frozen=True)
class LossSettings:
    loss_type: tuple[str, ...] = ("sigmoid",)
    loss_weights: tuple[float, ...] = (1.0,)
    beta: float = 0.1
    label_smoothing: float = 0.0
    simpo_gamma: float = 0.5
    discopop_tau: float = 0.05

    @property
    def needs_reference(self) -> bool:
        return any(name in REFERENCE_LOSS_TYPES for name in self.loss_type)


@dataclass
class PairLogps:
    """Log-probs of each pair's replies summed over their trained tokens ([B] each), and those token counts."""

    chosen: torch.Tensor
    rejected: torch.Tensor
    chosen_tokens: torch.Tensor
    rejected_tokens: torch.Tensor

    def averaged(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token means (SimPO's and ORPO's length normalisation)."""
        return self.chosen / self.chosen_tokens.clamp(min=1), self.rejected / self.rejected_tokens.clamp(min=1)


def log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 - exp(x)) for x < 0, with the branch at -ln 2 that keeps it accurate on both sides."""
    return torch.where(x < -0.6931471805599453, torch.log1p(-torch.exp(x)), torch.log(-torch.expm1(x)))


def sequence_loss(name: str, policy: PairLogps, reference: PairLogps | None, settings: LossSettings) -> torch.Tensor:
    """One loss type's value per pair ([B]); `sft` and `orpo`'s NLL part are batch token means, repeated."""
    beta, smoothing = settings.beta, settings.label_smoothing
    if name == "sft":
        return (-policy.chosen.sum() / policy.chosen_tokens.sum().clamp(min=1)).expand_as(policy.chosen)
    if name == "simpo":
        chosen, rejected = policy.averaged()
        logits = chosen - rejected - settings.simpo_gamma / beta
        return -F.logsigmoid(beta * logits) * (1 - smoothing) - F.logsigmoid(-beta * logits) * smoothing
    if name == "orpo":
        chosen, rejected = (logps.float() for logps in policy.averaged())
        log_odds = (chosen - rejected) - (log1mexp(chosen) - log1mexp(rejected))
        nll = sequence_loss("sft", policy, reference, settings)
        return nll - beta * F.logsigmoid(log_odds)
    chosen_ratio = policy.chosen - reference.chosen  # log pi/pi_ref of each reply
    rejected_ratio = policy.rejected - reference.rejected
    delta = chosen_ratio - rejected_ratio
    if name == "sigmoid":
        return -F.logsigmoid(beta * delta)
    if name == "hinge":
        return torch.relu(1 - beta * delta)
    if name in ("ipo", "sigmoid_norm"):  # per-token log-ratios (TRL's normalisation, confirmed with IPO's authors)
        mean_delta = chosen_ratio / policy.chosen_tokens.clamp(min=1) - rejected_ratio / policy.rejected_tokens.clamp(
            min=1
        )
        return (mean_delta - 1 / (2 * beta)) ** 2 if name == "ipo" else -F.logsigmoid(beta * mean_delta)
    if name == "exo_pair":  # KL(softmax of the two rewards || (1 - eps, eps)), the EXO paper's pair form
        eps = torch.tensor(smoothing, dtype=delta.dtype, device=delta.device)
        win, lose = beta * delta, -beta * delta
        return torch.sigmoid(win) * (F.logsigmoid(win) - torch.log1p(-eps)) + torch.sigmoid(lose) * (
            F.logsigmoid(lose) - torch.log(eps)
        )
    if name == "nca_pair":
        chosen_reward, rejected_reward = beta * chosen_ratio, beta * rejected_ratio
        return -F.logsigmoid(chosen_reward) - 0.5 * F.logsigmoid(-chosen_reward) - 0.5 * F.logsigmoid(-rejected_reward)
    if name in ("aot", "aot_unpaired"):  # optimal transport: the sorted margins of the batch, matched in order
        if name == "aot":
            policy_margins = torch.sort(policy.chosen - policy.rejected, dim=0).values
            sorted_delta = policy_margins - torch.sort(reference.chosen - reference.rejected, dim=0).values
        else:
            sorted_delta = torch.sort(chosen_ratio, dim=0).values - torch.sort(rejected_ratio, dim=0).values
        return -F.logsigmoid(beta * sorted_delta) * (1 - smoothing) - F.logsigmoid(-beta * sorted_delta) * smoothing
    if name == "discopop":  # a logistic and an exponential loss, blended by the margin
        logits = beta * delta
        blend = torch.sigmoid(logits / settings.discopop_tau)
        return -F.logsigmoid(logits) * (1 - blend) + torch.exp(-logits) * blend
    if name == "robust":
        clean = -(1 - smoothing) * F.logsigmoid(beta * delta)
        flipped = -smoothing * F.logsigmoid(-beta * delta)
        return (clean - flipped) / (1 - 2 * smoothing)
    if name == "bco_pair":
        return -F.logsigmoid(beta * chosen_ratio) - F.logsigmoid(-beta * rejected_ratio)
    if name == "sppo_hard":
        return (chosen_ratio - 0.5 / beta) ** 2 + (rejected_ratio + 0.5 / beta) ** 2
    if name == "apo_zero":  # chosen better than the model's own output: chosen up, rejected down
        return (1 - torch.sigmoid(beta * chosen_ratio)) + torch.sigmoid(beta * rejected_ratio)
    if name == "apo_down":  # chosen worse than the model's own output: both down, rejected more
        return torch.sigmoid(beta * chosen_ratio) + (1 - torch.sigmoid(beta * delta))
    raise ValueError(f"unknown loss type {name!r}; one of {', '.join(LOSS_TYPES)}")


def preference_loss(
    policy: PairLogps, reference: PairLogps | None, settings: LossSettings
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """(sum over loss types of weight * mean over pairs, (chosen rewards, rejected rewards) detached, [B] each).

    Rewards are TRL's: beta * log pi/pi_ref with a reference; without one (simpo, orpo, sft only), beta * the
    length-averaged log-prob, as TRL's CPO and ORPO trainers log them."""
    if settings.needs_reference and reference is None:
        raise ValueError(f"loss types {settings.loss_type} need the reference model's log-probs")
    loss = sum(
        weight * sequence_loss(name, policy, reference, settings).mean()
        for name, weight in zip(settings.loss_type, settings.loss_weights, strict=True)
    )
    if reference is not None:
        chosen, rejected = policy.chosen - reference.chosen, policy.rejected - reference.rejected
    else:
        chosen, rejected = policy.averaged()
    return loss, (settings.beta * chosen.detach(), settings.beta * rejected.detach())
