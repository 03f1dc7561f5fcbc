"""Command-line arguments of `vlmtune dpo`: the SFT dataclasses plus `DPOArguments` (TRL's DPOConfig names)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from vlmtune.arguments import (
    DataArguments,
    DataclassParser,
    ModelArguments,
    TrainingArguments,
    build_parser,
    parse_dataclasses,
)
from vlmtune.dpo.loss import LOSS_TYPES, LossSettings
from vlmtune.errors import ArgumentError


@dataclass
class DPOArguments:
    """The preference loss. Names and defaults are TRL 1.16's DPOConfig's (simpo_gamma: CPOConfig's)."""

    beta: float = field(
        default=0.1,
        metadata={
            "help": "How far from the reference the policy may move (DPO's beta; IPO's tau; SimPO's and ORPO's "
            "beta, no reference). Higher: closer to the reference."
        },
    )
    loss_type: list[str] = field(
        default_factory=lambda: ["sigmoid"],
        metadata={
            "help": f"One or more of {', '.join(LOSS_TYPES)}, summed with --loss_weights (sigmoid sft: RPO). "
            "simpo and orpo need no reference model. Formulas: docs/dpo.md."
        },
    )
    loss_weights: list[float] | None = field(
        default=None, metadata={"help": "One weight per --loss_type (default: all 1)."}
    )
    label_smoothing: float = field(
        default=0.0,
        metadata={
            "help": "The assumed probability that a pair's labels are flipped (robust, exo_pair, aot, simpo); "
            "in [0, 0.5)."
        },
    )
    simpo_gamma: float = field(
        default=0.5, metadata={"help": "SimPO's target reward margin (loss_type simpo; TRL's CPOConfig default)."}
    )
    discopop_tau: float = field(
        default=0.05,
        metadata={
            "help": "DiscoPOP's temperature: how sharply the margin blends its two losses (loss_type discopop)."
        },
    )
    prompt_once: bool = field(
        default=False,
        metadata={
            "help": "Run each pair's prompt through the model once: one row per pair (the prompt, the chosen reply, "
            "the rejected reply masked from it) where the family packs, else the prompt's media encoded once. The "
            "same log-probs (tests/test_dpo_logps.py), about 1.3x the default's pairs/s on tiny-qwen2-vl "
            "(docs/benchmarks.md)."
        },
    )
    precompute_ref_log_probs: bool = field(
        default=False,
        metadata={
            "help": "Compute the reference's log-probs of every pair once, before training (no reference forward "
            "in the steps; a frozen copy is freed after), cached beside the data (<data>.ref_logps/) for the next run."
        },
    )

    def __post_init__(self):
        if not self.loss_type:
            raise ArgumentError("--loss_type needs at least one loss type")
        unknown = [name for name in self.loss_type if name not in LOSS_TYPES]
        if unknown:
            raise ArgumentError(f"--loss_type {unknown[0]!r} is not one of {', '.join(LOSS_TYPES)}")
        if self.loss_weights is not None and len(self.loss_weights) != len(self.loss_type):
            raise ArgumentError(
                f"--loss_weights has {len(self.loss_weights)} value(s) for {len(self.loss_type)} loss type(s)"
            )
        if self.beta <= 0:
            raise ArgumentError("--beta must be positive")
        if not 0 <= self.label_smoothing < 0.5:
            raise ArgumentError("--label_smoothing must be in [0, 0.5)")
        if "exo_pair" in self.loss_type and self.label_smoothing == 0:
            raise ArgumentError("--loss_type exo_pair needs --label_smoothing above 0 (the EXO paper uses 1e-3)")
        if self.discopop_tau <= 0:
            raise ArgumentError("--discopop_tau must be positive")

    def loss_settings(self) -> LossSettings:
        return LossSettings(
            loss_type=tuple(self.loss_type),
            loss_weights=tuple(self.loss_weights or [1.0] * len(self.loss_type)),
            beta=self.beta,
            label_smoothing=self.label_smoothing,
            simpo_gamma=self.simpo_gamma,
            discopop_tau=self.discopop_tau,
        )


DPO_DATACLASSES = (ModelArguments, DataArguments, TrainingArguments, DPOArguments)


def build_dpo_parser() -> DataclassParser:
    """`vlmtune dpo`'s parser."""
    return build_parser(DPO_DATACLASSES, "Preference optimization: DPO and its variants (vlmtune dpo).", "vlmtune dpo")


def parse_dpo_args(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, TrainingArguments, DPOArguments]:
    """Parse the command line (and `--config x.yaml`) into the four dataclasses."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return parse_dataclasses(argv, build_dpo_parser())
