"""Command-line arguments of `vlmtune train`: three dataclasses parsed by `HfArgumentParser`, plus a YAML file.

vlmtune train --config my_run.yaml --learning_rate 1e-4    # the command line beats the file
vlmtune train --use_lora True --warmup_ratio 0.03 ...      # lmms-finetune's flags, read as vlmtune's (logged)

Also the parsers every command builds (`CommandParser`, `DataclassParser`): an unknown flag is named with the
closest valid ones, and every argument error ends the command with one line (see vlmtune/apps/cli.py).
"""

from __future__ import annotations

import argparse
import difflib
import logging
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NoReturn

import transformers
import yaml
from transformers import HfArgumentParser

from vlmtune.data.formats import DATA_FORMATS
from vlmtune.errors import ArgumentError

logger = logging.getLogger("vlmtune")

# The metric `--eval_metric` names when it is not an import path (vlmtune.core.evaluation).
BUILT_IN_METRIC = "exact_match"


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
    # --- evaluation by generation and the vision tower under sharding (vlmtune.core.evaluation, .trainer) ---
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
        try:
            super().__post_init__()
        except ValueError as error:  # transformers' own checks (e.g. --tf32 without a GPU): one line, exit 2
            raise ArgumentError(" ".join(str(error).split())) from None
        except ImportError as error:  # a flag's package is missing (--deepspeed without deepspeed)
            flag = "--deepspeed: " if self.deepspeed else ""
            raise ArgumentError(f"{flag}{' '.join(str(error).split())} (install it, or drop the flag)") from None
        check_loggers(self.report_to)
        if self.eval_metric:
            check_metric_spec(self.eval_metric)
        if self.eval_max_new_tokens < 1:
            raise ArgumentError("--eval_max_new_tokens must be at least 1")


def check_metric_spec(spec: str) -> None:
    """Raise ArgumentError unless `spec` is `exact_match` or looks like `module:function`."""
    module, _, function = spec.partition(":")
    if spec != BUILT_IN_METRIC and not (module and function):
        raise ArgumentError(f"--eval_metric must be {BUILT_IN_METRIC} or an import path module:function, got {spec!r}")


def check_loggers(report_to: list[str]) -> None:
    """Refuse a `--report_to` logger whose package is missing now, not after the model has loaded."""
    from transformers.integrations import get_available_reporting_integrations

    missing = [name for name in report_to if name not in get_available_reporting_integrations()]
    if missing:
        raise ArgumentError(
            f"--report_to {' '.join(missing)}: not installed (pip install {' '.join(missing)}), or log to another"
        )


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
                raise ArgumentError("--config needs a YAML file path")
            return argv[at + 1], argv[:at] + argv[at + 2 :]
    return None, argv


def build_parser(
    dataclass_types: tuple = (ModelArguments, DataArguments, TrainingArguments),
    description: str = "Finetune a registered vision-language model (vlmtune train).",
    prog: str = "vlmtune train",
) -> DataclassParser:
    parser = DataclassParser(dataclass_types, prog=prog, description=description)
    parser.add_argument(
        "--config",
        default=argparse.SUPPRESS,
        help="YAML file of argument values; arguments given on the command line win over it.",
    )
    return parser


def parse_args(argv: list[str] | None = None) -> tuple[ModelArguments, DataArguments, TrainingArguments]:
    return parse_dataclasses(list(sys.argv[1:] if argv is None else argv))


def parse_dataclasses(argv: list[str], parser: DataclassParser | None = None) -> tuple:
    """The command line (after `--config x.yaml`'s values, so that it wins) parsed into the dataclasses of
    `parser` (a `build_parser(...)`; default: vlmtune train's)."""
    config, argv = split_config(argv)
    if config:
        argv = yaml_to_argv(config) + argv
    argv, notes = translate_lmms_finetune(argv)
    for note in notes:
        logger.info(note)
    return (parser or build_parser()).parse_args_into_dataclasses(args=argv)


# --- every command's parser: unknown flags named with close matches, errors in one line ----------------------


class OneLineErrors:
    """Parse errors (missing flag, bad value, unknown flag) raise ArgumentError, which vlmtune.apps.cli prints as one
    line with exit status 2, instead of argparse's usage text or HfArgumentParser's ValueError traceback. Flags
    must be spelled out: argparse's prefix matching (`--epoch` taken for `--epochs`) is off, so a cut or
    misspelled flag is named with its close matches rather than read as another one."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # argparse's documented hook for its errors
        raise ArgumentError(message)


class CommandParser(OneLineErrors, argparse.ArgumentParser):
    """argparse.ArgumentParser for a vlmtune command; `parse_args` names unknown flags with the closest ones."""

    def parse_args(self, args=None, namespace=None):  # argparse's signature
        args = sys.argv[1:] if args is None else list(args)
        reject_unknown(self, args)
        return super().parse_args(args, namespace)


class DataclassParser(OneLineErrors, HfArgumentParser):
    """HfArgumentParser for a vlmtune command; `parse_args_into_dataclasses` names unknown flags with the closest
    ones before any dataclass checks its values."""

    def parse_args_into_dataclasses(self, args=None, **kwargs) -> tuple[Any, ...]:
        args = sys.argv[1:] if args is None else list(args)
        reject_unknown(self, args)
        if kwargs.pop("return_remaining_strings", False):
            return super().parse_args_into_dataclasses(args, return_remaining_strings=True, **kwargs)
        *outputs, rest = super().parse_args_into_dataclasses(args, return_remaining_strings=True, **kwargs)
        if rest:
            raise ArgumentError(f"unexpected argument(s): {' '.join(rest)} (see {self.prog} --help)")
        return tuple(outputs)


def option_strings(parser: argparse.ArgumentParser) -> list[list[str]]:
    """The flags of each option, e.g. ['--learning_rate', '--learning-rate']."""
    # argparse keeps its options in `_actions` and has no public listing of them
    return [action.option_strings for action in parser._actions if action.option_strings]


def reject_unknown(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Raise ArgumentError naming each flag of `argv` that `parser` does not know, with its closest valid flags."""
    known = {flag for flags in option_strings(parser) for flag in flags}
    unknown = []
    for word in argv:
        if word == "--":  # argparse: only values follow
            break
        flag = word.split("=", 1)[0]
        if flag.startswith("-") and flag != "-" and not NUMBER.fullmatch(word) and flag not in known:
            unknown.append(flag)
    if not unknown:
        return
    # one long name per option for the suggestions: --learning_rate, not also --learning-rate
    longs = [[f for f in flags if f.startswith("--")] for flags in option_strings(parser)]
    names = {min(f, key=lambda o: ("-" in o[2:], len(o)))[2:]: None for f in longs if f}
    hints = []
    for flag in unknown:
        close = closest(flag.lstrip("-"), list(names))
        hints.append((flag, f"did you mean {' or '.join('--' + name for name in close)}?" if close else ""))
    if len(hints) == 1 and hints[0][1]:
        raise ArgumentError(f"unknown flag {hints[0][0]}; {hints[0][1]}")
    listed = ", ".join(f"{flag} ({hint})" if hint else flag for flag, hint in hints)
    raise ArgumentError(f"unknown flag{'s' if len(hints) > 1 else ''} {listed}; see {parser.prog} --help")


def closest(word: str, choices: list[str]) -> list[str]:
    """difflib's close matches, best first, without those clearly further off than the best one."""
    matches = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    scores = [difflib.SequenceMatcher(None, word, match).ratio() for match in matches]
    return [match for match, score in zip(matches, scores, strict=True) if score >= scores[0] - 0.1]


NUMBER = re.compile(r"-\d+(\.\d*)?([eE][-+]?\d+)?")  # a negative value, not a flag


# --- lmms-finetune's launch flags -----------------------------------------------------------------------------

# The flags of lmms-finetune (github.com/zjysteven/lmms-finetune: example_scripts/example_image.sh and
# example_video.sh, and the dataclasses in its arguments.py) that vlmtune names differently, and two transformers 4
# flags those scripts pass: `--warmup_ratio`, which transformers 5 folded into `--warmup_steps` (a value below 1
# is a fraction of the steps), and `--gradient_checkpointing`, now `--activation_checkpointing`. Keys are the
# words as lmms-finetune takes them (true/false for any spelling of a boolean; VALUE for any value), values the
# vlmtune words they are read as; "" means nothing to pass, vlmtune's default already does the same. Every other
# flag of those scripts has the same name in vlmtune. docs/migration.md shows this table
# (tests/test_arguments.py keeps the two equal).
LMMS_FINETUNE_ALIASES: dict[str, str] = {
    "--use_lora true": "--llm_mode lora",
    "--use_lora false": "--llm_mode full",
    "--q_lora true": "--use_qlora true",
    "--q_lora false": "--use_qlora false",
    "--train_vision_encoder true --use_vision_lora true": "--vision_mode lora",
    "--train_vision_encoder true --use_vision_lora false": "--vision_mode full",
    "--train_vision_encoder true": "--vision_mode lora",  # lmms-finetune's default is use_vision_lora=True
    "--train_vision_encoder false": "--vision_mode frozen",
    "--use_vision_lora VALUE": "",  # without --train_vision_encoder true it has no effect there either
    "--train_vision_projector true": "--train_projector true",
    "--train_vision_projector false": "--train_projector false",
    "--use_flash_attn true": "--attn_implementation flash_attention_2",
    "--use_flash_attn false": "",
    "--mask_question_tokens true": "",
    "--lora_bias none": "",
    "--lora_weight_path VALUE": "",  # declared by lmms-finetune, never read by it
    "--warmup_ratio VALUE": "--warmup_steps VALUE",
    "--gradient_checkpointing true": "--activation_checkpointing true",  # transformers 5's name (the old one warns)
    "--gradient_checkpointing false": "--activation_checkpointing false",
}
# ... and those vlmtune refuses, with what to do instead (an exact key wins over a VALUE key of either table).
LMMS_FINETUNE_REFUSED: dict[str, str] = {
    "--mask_question_tokens false": "vlmtune trains the assistant replies (and their end-of-turn tokens) only, "
    "never the user turns; drop the flag",
    "--lora_bias VALUE": "vlmtune's LoRA adapters have no bias terms (lmms-finetune's default, none); drop the flag",
}
TRUE_WORDS, FALSE_WORDS = ("true", "t", "yes", "y", "1"), ("false", "f", "no", "n", "0")  # HfArgumentParser's


def lmms_flag_names() -> dict[str, bool]:
    """Every lmms-finetune flag of the two tables, and whether it is a boolean (its keys say true/false)."""
    names: dict[str, bool] = {}
    for key in (*LMMS_FINETUNE_ALIASES, *LMMS_FINETUNE_REFUSED):
        for name, value in re.findall(r"--(\w+) (\S+)", key):
            names[name] = names.get(name, False) or value in ("true", "false")
    return names


def take_lmms_flags(argv: list[str]) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """lmms-finetune's flags in `argv`, {name: (as written, value)} with booleans as true/false, and the rest."""
    names = lmms_flag_names()
    found: dict[str, tuple[str, str]] = {}
    rest: list[str] = []
    at = 0
    while at < len(argv):
        name, has_value, value = argv[at][2:].partition("=") if argv[at].startswith("--") else ("", "", "")
        if name not in names:
            rest.append(argv[at])
        else:
            written = argv[at]
            if not has_value and at + 1 < len(argv) and not argv[at + 1].startswith("--"):
                at, value = at + 1, argv[at + 1]
                written += f" {value}"
            elif not has_value and names[name]:
                value = "true"  # a bare boolean flag, as HfArgumentParser reads it
            elif not has_value:
                raise ArgumentError(f"--{name} needs a value")
            if names[name] and value.lower() in TRUE_WORDS + FALSE_WORDS:
                value = "true" if value.lower() in TRUE_WORDS else "false"
            found[name] = (written, value)
        at += 1
    return found, rest


def translate_lmms_finetune(argv: list[str]) -> tuple[list[str], list[str]]:
    """`argv` with lmms-finetune's flags replaced by vlmtune's (LMMS_FINETUNE_ALIASES), and one note per flag
    read; a refused flag, a bad value, or an lmms-finetune flag next to the vlmtune flag it stands for is an
    ArgumentError."""
    found, rest = take_lmms_flags(argv)
    groups = [[name] for name in found]
    encoder, vision_lora = found.get("train_vision_encoder"), found.get("use_vision_lora")
    if encoder and vision_lora and encoder[1] == "true":  # together they choose the vision mode
        groups = [g for g in groups if g[0] != "use_vision_lora"]
        groups[[g[0] for g in groups].index("train_vision_encoder")] = ["train_vision_encoder", "use_vision_lora"]
    words, notes = [], []
    for group in groups:
        written = " ".join(found[name][0] for name in group)
        value = found[group[0]][1]
        replacement = lmms_replacement(written, " ".join(f"--{n} {found[n][1]}" for n in group), group[0], value)
        for flag in replacement.split()[:1]:
            if any(word == flag or word.startswith(flag + "=") for word in rest):
                raise ArgumentError(f"{written} (lmms-finetune) and {flag} are both given; keep {flag} only")
        words += replacement.split()
        notes.append(
            f"{written} read as {replacement}" if replacement else f"{written} dropped: it changes nothing in vlmtune"
        )
    return rest + words, notes


def lmms_replacement(written: str, exact: str, name: str, value: str) -> str:
    """The vlmtune words for one lmms-finetune flag (or pair): an exact key wins over its VALUE key."""
    for key in (exact, f"--{name} VALUE"):
        if key in LMMS_FINETUNE_ALIASES:
            if name == "warmup_ratio":
                check_warmup_ratio(value)
            return LMMS_FINETUNE_ALIASES[key].replace("VALUE", value)
        if key in LMMS_FINETUNE_REFUSED:
            raise ArgumentError(f"{written} (lmms-finetune) is not supported: {LMMS_FINETUNE_REFUSED[key]}")
    raise ArgumentError(f"{written}: expected true or false")


def format_lmms_table() -> str:
    """The two lmms-finetune tables as the Markdown table of docs/migration.md."""
    rows = ["| lmms-finetune | vlmtune |", "|---|---|"]
    rows += [
        f"| `{key}` | {f'`{value}`' if value else 'nothing (the same by default)'} |"
        for key, value in LMMS_FINETUNE_ALIASES.items()
    ]
    rows += [f"| `{key}` | refused: {reason} |" for key, reason in LMMS_FINETUNE_REFUSED.items()]
    return "\n".join(rows)


def check_warmup_ratio(value: str) -> None:
    try:
        ratio = float(value)
    except ValueError:
        raise ArgumentError(f"--warmup_ratio {value}: expected a number in [0, 1)") from None
    if not 0 <= ratio < 1:
        raise ArgumentError(f"--warmup_ratio {value}: a fraction of the training steps, in [0, 1)")
