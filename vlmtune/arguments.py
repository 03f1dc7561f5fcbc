"""Command-line arguments of `vlmtune train`: three dataclasses parsed by `HfArgumentParser`, plus a YAML file.

vlmtune train --config my_run.yaml --learning_rate 1e-4    # the command line beats the file
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import transformers
import yaml
from transformers import HfArgumentParser

from vlmtune.formats import DATA_FORMATS


class ArgumentError(ValueError):
    """An argument value that cannot work; raised while parsing, before anything is read or loaded."""


@dataclass
class ModelArguments:
    model_id: str = field(
        metadata={"help": "Registered model id (python -m vlmtune.supported_models), e.g. tiny-qwen2-vl."}
    )
    model_local_path: str | None = field(
        default=None, metadata={"help": "Load the checkpoint from this local folder instead of the registered path."}
    )
    model_dtype: Literal["float32", "bfloat16", "float16"] = field(
        default="float32", metadata={"help": "Dtype the weights are loaded in (bfloat16 on a recent GPU)."}
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "Attention kernel: eager, sdpa or flash_attention_2 (default: the model's)."}
    )
    trust_remote_code: bool = field(
        default=False, metadata={"help": "Run model code from the checkpoint's repository. Off unless asked."}
    )
    llm_mode: Literal["lora", "full", "frozen"] = field(
        default="lora", metadata={"help": "How the language model trains: LoRA adapters, all weights, or not at all."}
    )
    vision_mode: Literal["frozen", "full", "lora"] = field(
        default="frozen", metadata={"help": "How the vision encoder trains: frozen, all weights, or LoRA adapters."}
    )
    train_projector: bool = field(default=True, metadata={"help": "Train the vision-to-text projector fully."})
    use_qlora: bool = field(
        default=False,
        metadata={"help": "QLoRA: load the language model in 4-bit nf4 (bitsandbytes); needs llm_mode=lora."},
    )
    lora_r: int = field(default=8, metadata={"help": "LoRA rank."})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha."})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout."})
    projector_lr: float | None = field(
        default=None,
        metadata={"help": "Learning rate of the projector (default: learning_rate). A fresh one wants more."},
    )
    vision_lr: float | None = field(
        default=None, metadata={"help": "Learning rate of the vision encoder (default: learning_rate)."}
    )

    def __post_init__(self):
        if self.use_qlora and self.llm_mode != "lora":
            raise ArgumentError(
                f"--use_qlora needs --llm_mode lora (got {self.llm_mode!r}): QLoRA trains adapters only"
            )
        if self.llm_mode == "frozen" and self.vision_mode == "frozen" and not self.train_projector:
            raise ArgumentError(
                "nothing to train: --llm_mode frozen, --vision_mode frozen and --train_projector false"
            )
        if self.lora_r <= 0 or self.lora_alpha <= 0:
            raise ArgumentError("--lora_r and --lora_alpha must be positive")
        if not 0 <= self.lora_dropout < 1:
            raise ArgumentError("--lora_dropout must be in [0, 1)")
        for name in ("projector_lr", "vision_lr"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ArgumentError(f"--{name} must be positive")


@dataclass
class DataArguments:
    data_path: str = field(
        metadata={
            "help": "Training data: a .json (list) or .jsonl file of LLaVA/ShareGPT/OpenAI-messages records, or a "
            "Hugging Face dataset (saved folder, parquet/arrow files, or a cached hub id)."
        }
    )
    data_format: str = field(
        default="auto",
        metadata={"help": f"Record format: {', '.join(DATA_FORMATS)} (auto: chosen from each record's keys)."},
    )
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Read the training data lazily, checking each sample as it streams (for data larger than "
            "memory; needs --max_steps; run vlmtune validate first)."
        },
    )
    eval_data_path: str | None = field(default=None, metadata={"help": "Evaluation data, same format."})
    image_folder: str | None = field(
        default=None, metadata={"help": "Folder of relative image paths (default: the data file's)."}
    )
    video_folder: str | None = field(
        default=None, metadata={"help": "Folder of relative video paths (default: the data file's)."}
    )
    user_key: str = field(default="human", metadata={"help": "Value of 'from' in user turns."})
    assistant_key: str = field(default="gpt", metadata={"help": "Value of 'from' in assistant turns."})
    num_frames: int = field(default=8, metadata={"help": "Frames sampled evenly from each video."})
    model_max_length: int = field(
        default=2048, metadata={"help": "Longest sequence in tokens, image and video tokens included."}
    )
    pad_to_multiple_of: int | None = field(
        default=None,
        metadata={
            "help": "Pad each batch to a multiple of this (e.g. 8 for tensor cores); never to model_max_length."
        },
    )
    skip_bad_samples: bool = field(
        default=False,
        metadata={
            "help": "Train on the good samples when the checks before training find bad ones (they are logged "
            "and counted), instead of refusing to start. Samples that turn out bad during training (e.g. too "
            "long once images are expanded) are always skipped and counted, never a crash."
        },
    )
    packing: bool = field(
        default=False,
        metadata={
            "help": "Concatenate each batch's samples into rows instead of padding them (one row with "
            "flash_attention_2); samples never attend to each other. Families whose record allows it."
        },
    )
    max_pixels: int | None = field(
        default=None,
        metadata={"help": "Qwen-VL families: resize each image to at most this many pixels (fewer image tokens)."},
    )

    def __post_init__(self):
        if self.data_format not in DATA_FORMATS:
            raise ArgumentError(f"--data_format must be one of {', '.join(DATA_FORMATS)}, got {self.data_format!r}")
        if self.num_frames < 1:
            raise ArgumentError("--num_frames must be at least 1")
        if self.model_max_length < 16:
            raise ArgumentError("--model_max_length must be at least 16")
        if self.pad_to_multiple_of is not None and self.pad_to_multiple_of < 1:
            raise ArgumentError("--pad_to_multiple_of must be positive")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise ArgumentError("--max_pixels must be positive")


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    """transformers.TrainingArguments with defaults that suit a VLM finetune (see `vlmtune train --help`)."""

    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Keep dataset columns: vlmtune's dataset yields model inputs already."}
    )
    logging_steps: float = field(default=10, metadata={"help": "Log the loss every N steps."})
    save_strategy: str = field(default="no", metadata={"help": "When to write checkpoints: no, steps or epoch."})
    save_safetensors: bool = field(default=True, metadata={"help": "Save weights as safetensors."})
    # --- evaluation by generation and the vision tower under sharding (vlmtune.evaluation, vlmtune.trainer) ---
    eval_metric: str | None = field(
        default=None,
        metadata={
            "help": "Also score greedy replies to the eval data: exact_match, or a function given by import path "
            "module:function, called as f(predictions, references) -> number or dict of numbers."
        },
    )
    eval_max_new_tokens: int = field(default=32, metadata={"help": "Longest generated reply for --eval_metric."})
    vision_tower_every_step: bool | None = field(
        default=None,
        metadata={
            "help": "Run the vision tower on a tiny dummy image (weighted 0) when a batch has no image or video, "
            "so every rank uses it in every step. Default: on under DeepSpeed ZeRO-3 and FSDP, which hang "
            "otherwise; also needed for DDP with --ddp_find_unused_parameters false and text-only samples."
        },
    )
    group_by_length: bool = field(
        default=False,
        metadata={
            "help": "Batch samples of similar length (less padding); lengths are estimated from the text and the "
            "image file headers, cached. Same as --train_sampling_strategy group_by_length."
        },
    )

    def __post_init__(self):
        if self.group_by_length:
            self.train_sampling_strategy = "group_by_length"
        super().__post_init__()
        if self.eval_metric:
            from vlmtune.evaluation import check_metric_spec

            check_metric_spec(self.eval_metric)
        if self.eval_max_new_tokens < 1:
            raise ArgumentError("--eval_max_new_tokens must be at least 1")


def yaml_to_argv(path: str) -> list[str]:
    """A YAML mapping of argument names to values, as command-line words (so the real command line wins).

    Quote values that YAML would read as booleans but are strings here, e.g. `save_strategy: "no"`.
    """
    if not Path(path).is_file():
        raise ArgumentError(f"--config {path}: file not found")
    try:
        config = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ArgumentError(f"--config {path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ArgumentError(f"{path}: expected a mapping of argument names to values")
    argv = []
    for key, value in config.items():
        if value is None:
            continue  # null: keep the default
        values = value if isinstance(value, list) else [value]
        argv += [f"--{key}", *[str(v).lower() if isinstance(v, bool) else str(v) for v in values]]
    return argv


def split_config(argv: list[str]) -> tuple[str | None, list[str]]:
    """Take `--config PATH` or `--config=PATH` out of the command line."""
    for at, word in enumerate(argv):
        if word.startswith("--config="):
            return word.split("=", 1)[1], argv[:at] + argv[at + 1 :]
        if word == "--config":
            if at + 1 >= len(argv):
                raise SystemExit("--config needs a YAML file path")
            return argv[at + 1], argv[:at] + argv[at + 2 :]
    return None, argv


def build_parser(
    dataclass_types: tuple = (ModelArguments, DataArguments, TrainingArguments),
    description: str = "Finetune a registered vision-language model (vlmtune train).",
) -> HfArgumentParser:
    parser = HfArgumentParser(dataclass_types, description=description)
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="YAML file of argument values; arguments given on the command line win over it.",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    return parse_dataclasses(list(sys.argv[1:] if argv is None else argv))


def parse_dataclasses(argv: list[str], dataclass_types: tuple | None = None, description: str | None = None) -> tuple:
    """The command line (after `--config x.yaml`'s values, so that it wins) parsed into the dataclasses."""
    config, argv = split_config(argv)
    if config:
        argv = yaml_to_argv(config) + argv
    parser = build_parser() if dataclass_types is None else build_parser(dataclass_types, description)
    return parser.parse_args_into_dataclasses(args=argv)
