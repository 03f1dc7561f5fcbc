"""Command-line arguments of `vlmtune grpo`: the SFT dataclasses plus `GRPOArguments` (TRL's GRPOConfig names)."""

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
from vlmtune.errors import ArgumentError

LOSS_TYPES = ("grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo")
SCALE_REWARDS = ("group", "batch", "none")
ADVANTAGE_ESTIMATORS = ("grpo", "rloo", "reinforce_plus_plus")
VLLM_MODES = ("colocate", "server")


@dataclass
class GRPOArguments:
    """Rollouts, loss and rewards. Names and defaults are TRL's GRPOConfig's where TRL has the field."""

    num_generations: int = field(
        default=8, metadata={"help": "Completions sampled per prompt (G); advantages compare them within the group."}
    )
    temperature: float = field(
        default=1.0,
        metadata={
            "help": "Sampling temperature (also divides the logits whose log-probs the loss uses, as TRL does)."
        },
    )
    top_p: float = field(default=1.0, metadata={"help": "Nucleus sampling: keep the top tokens of this mass."})
    max_completion_length: int = field(
        default=512, metadata={"help": "Longest completion in tokens; longer ones are cut (truncated)."}
    )
    beta: float = field(
        default=0.0,
        metadata={
            "help": "KL coefficient to the reference model (0: no reference, as TRL's default). The reference is "
            "the base with adapters disabled under LoRA; a frozen copy of the start under full finetuning."
        },
    )
    use_bias_correction_kl: bool = field(
        default=True,
        metadata={
            "help": "Multiply the KL term by the importance ratio (unbiased reverse-KL gradient; TRL's default)."
        },
    )
    epsilon: float = field(default=0.2, metadata={"help": "Lower clipping range of the importance ratio (1-eps)."})
    epsilon_high: float | None = field(
        default=None,
        metadata={
            "help": "Upper clipping range (1+eps_high); default epsilon. DAPO uses 0.28. With --loss_type cispo: "
            "the cap on the importance ratio itself (ScaleRL recommends 5.0)."
        },
    )
    sapo_temperature_pos: float = field(
        default=1.0, metadata={"help": "sapo: temperature of the soft gate for tokens with a positive advantage."}
    )
    sapo_temperature_neg: float = field(
        default=1.05, metadata={"help": "sapo: temperature of the soft gate for the other tokens."}
    )
    num_iterations: int = field(
        default=1, metadata={"help": "Optimizer steps on each batch of rollouts (mu); >1 makes the ratio matter."}
    )
    scale_rewards: str | None = field(
        default=None,
        metadata={
            "help": "Divide advantages by the reward std of the group, of the whole generation batch (all "
            "processes), or none (Dr. GRPO). Default: group; batch with --advantage_estimator reinforce_plus_plus."
        },
    )
    advantage_estimator: str = field(
        default="grpo",
        metadata={
            "help": "Baseline of the advantages (ms-swift's names): grpo (group mean), rloo (mean of the other "
            "completions of the prompt, as TRL's RLOOTrainer; TRL's default scaling is --scale_rewards none), "
            "reinforce_plus_plus (group mean, then divided by the std of the baseline-subtracted rewards)."
        },
    )
    loss_type: str = field(
        default="dapo",
        metadata={
            "help": "grpo: per-sequence token mean, then mean; bnpo: token mean over the batch; dr_grpo: token sum "
            "over batch*max_completion_length; dapo (TRL's default): token sum over the tokens of the generation "
            "batch; cispo (MiniMax-M1): the ratio capped at epsilon_high as a detached weight on A*logp, dapo's "
            "aggregation; sapo: a sigmoid gate on the ratio instead of the clip, grpo's aggregation."
        },
    )
    importance_sampling_level: str = field(
        default="token",
        metadata={"help": "token (GRPO) or sequence (GSPO: one ratio per completion, the mean token log-ratio)."},
    )
    mask_truncated_completions: bool = field(
        default=False,
        metadata={"help": "Leave completions cut at max_completion_length out of the loss (DAPO's overlong filter)."},
    )
    resample_tied_groups: bool = field(
        default=False,
        metadata={
            "help": "DAPO's dynamic sampling: replace each group whose rewards are all equal (zero advantage, no "
            "signal) by the rollouts of a prompt drawn afresh from the training data, up to --max_resample_times "
            "rounds per micro-batch (groups still tied after that train with advantage 0)."
        },
    )
    max_resample_times: int = field(
        default=3, metadata={"help": "With --resample_tied_groups: the most rounds of resampling (ms-swift's name)."}
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["format", "accuracy"],
        metadata={
            "help": "Rewards: built-in format, accuracy, length, repetition; module:function; or names defined in "
            "--reward_plugin files. Each is f(prompts, completions, **columns) -> list[float | None]."
        },
    )
    reward_weights: list[float] | None = field(
        default=None, metadata={"help": "One weight per reward function (default: all 1)."}
    )
    reward_plugin: list[str] = field(
        default_factory=list,
        metadata={"help": "Python files whose functions become reward names for --reward_funcs (ms-swift style)."},
    )
    think_tags: list[str] = field(
        default_factory=lambda: ["<think>", "</think>"],
        metadata={"help": "Opening and closing tag of the reasoning part (format reward)."},
    )
    answer_tags: list[str] = field(
        default_factory=lambda: ["<answer>", "</answer>"],
        metadata={"help": "Opening and closing tag of the answer (format and accuracy rewards)."},
    )
    overlong_buffer: int = field(
        default=0,
        metadata={
            "help": "length reward: the last N tokens before max_completion_length are penalised linearly "
            "down to -1 (DAPO's soft overlong punishment; 0: max_completion_length // 4)."
        },
    )
    log_completions_steps: int = field(
        default=10,
        metadata={"help": "Write sample completions with their rewards to completions.jsonl every N steps."},
    )
    use_vllm: bool = field(
        default=False,
        metadata={
            "help": "Sample the rollouts with vLLM, the policy's weights pushed to it after each optimizer step "
            "(--vllm_mode says where vLLM runs)."
        },
    )
    vllm_mode: str = field(
        default="colocate",
        metadata={
            "help": "colocate: an engine in the training process (one process; needs vLLM in this Python, "
            "docs/serving.md); server: `vlmtune rollout-server MODEL` in its own process (any number of training "
            "processes; this Python needs no vLLM)."
        },
    )
    vllm_max_model_len: int = field(
        default=4096,
        metadata={"help": "With --vllm_mode colocate: the engine's longest prompt + completion in tokens."},
    )
    vllm_server_host: str = field(
        default="127.0.0.1", metadata={"help": "With --vllm_mode server: the rollout server's address."}
    )
    vllm_server_port: int = field(default=8010, metadata={"help": "With --vllm_mode server: its port."})
    vllm_server_timeout: float = field(
        default=240.0,
        metadata={
            "help": "With --vllm_mode server: the longest wait in seconds for the server to start and for each "
            "answer (sampling, weight push); past it the run stops with one line."
        },
    )
    vllm_server_api_key_file: str | None = field(
        default=None,
        metadata={
            "help": "With --vllm_mode server: a file (chmod 600) with the server's key (default: $VLMTUNE_API_KEY, "
            "else the key a server on this machine wrote to ~/.cache/vlmtune/rollout-server/PORT.key)."
        },
    )

    def __post_init__(self):
        if self.num_generations < 2:
            raise ArgumentError("--num_generations must be at least 2 (advantages compare completions of a prompt)")
        if self.temperature <= 0:
            raise ArgumentError("--temperature must be positive (GRPO samples)")
        if not 0 < self.top_p <= 1:
            raise ArgumentError("--top_p must be in (0, 1]")
        if self.max_completion_length < 1:
            raise ArgumentError("--max_completion_length must be at least 1")
        if self.beta < 0 or self.epsilon < 0 or (self.epsilon_high is not None and self.epsilon_high < 0):
            raise ArgumentError("--beta, --epsilon and --epsilon_high must not be negative")
        if self.epsilon_high is None:
            self.epsilon_high = self.epsilon
        if self.num_iterations < 1:
            raise ArgumentError("--num_iterations must be at least 1")
        if self.advantage_estimator not in ADVANTAGE_ESTIMATORS:
            raise ArgumentError(
                f"--advantage_estimator must be one of {', '.join(ADVANTAGE_ESTIMATORS)}, "
                f"got {self.advantage_estimator!r}"
            )
        if self.scale_rewards is None:
            self.scale_rewards = "batch" if self.advantage_estimator == "reinforce_plus_plus" else "group"
        if self.scale_rewards not in SCALE_REWARDS:
            raise ArgumentError(
                f"--scale_rewards must be one of {', '.join(SCALE_REWARDS)}, got {self.scale_rewards!r}"
            )
        if self.loss_type not in LOSS_TYPES:
            raise ArgumentError(f"--loss_type must be one of {', '.join(LOSS_TYPES)}, got {self.loss_type!r}")
        if self.sapo_temperature_pos <= 0 or self.sapo_temperature_neg <= 0:
            raise ArgumentError("--sapo_temperature_pos and --sapo_temperature_neg must be positive")
        if self.importance_sampling_level not in ("token", "sequence"):
            raise ArgumentError("--importance_sampling_level must be token or sequence")
        if not self.reward_funcs:
            raise ArgumentError("--reward_funcs needs at least one reward")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_funcs):
            raise ArgumentError(
                f"--reward_weights has {len(self.reward_weights)} value(s) for {len(self.reward_funcs)} reward(s)"
            )
        for name in ("think_tags", "answer_tags"):
            if len(getattr(self, name)) != 2:
                raise ArgumentError(f"--{name} needs two values: the opening and the closing tag")
        if self.vllm_mode not in VLLM_MODES:
            raise ArgumentError(f"--vllm_mode must be one of {', '.join(VLLM_MODES)}, got {self.vllm_mode!r}")
        if self.vllm_server_timeout <= 0:
            raise ArgumentError("--vllm_server_timeout must be positive (seconds)")
        if self.vllm_max_model_len <= self.max_completion_length:
            raise ArgumentError("--vllm_max_model_len must exceed --max_completion_length (it holds the prompt too)")
        if self.max_resample_times < 1:
            raise ArgumentError("--max_resample_times must be at least 1")
        if self.overlong_buffer < 0 or self.log_completions_steps < 1:
            raise ArgumentError("--overlong_buffer must not be negative and --log_completions_steps must be positive")


GRPO_DATACLASSES = (ModelArguments, DataArguments, TrainingArguments, GRPOArguments)


def build_grpo_parser() -> DataclassParser:
    """`vlmtune grpo`'s parser (also the web UI's GRPO form)."""
    return build_parser(GRPO_DATACLASSES, "GRPO with verifiable rewards (vlmtune grpo).", "vlmtune grpo")


def parse_grpo_args(
    argv: list[str] | None = None,
) -> tuple[ModelArguments, DataArguments, TrainingArguments, GRPOArguments]:
    """Parse the command line (and `--config x.yaml`) into the four dataclasses."""
    argv = list(sys.argv[1:] if argv is None else argv)
    return parse_dataclasses(argv, build_grpo_parser())
