"""The train form of the web UI, generated from `vlmtune train`'s own argument parser (no gradio here).

Each field takes its type, choices, default and help text from the argparse action that
`vlmtune.arguments.build_parser()` (HfArgumentParser over ModelArguments, DataArguments, TrainingArguments)
makes for it, so the form cannot drift from the command line. The form's values become the same command-line
words `vlmtune train` takes (`train_argv`), a YAML file for `--config` (`to_yaml`), a shell command
(`shell_command`), and are checked by the same parsing before a run starts (`check_argv`).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import shlex
from dataclasses import dataclass
from typing import Any

import yaml
from transformers.hf_argparser import string_to_bool

from vlmtune.arguments import ArgumentError, DataArguments, ModelArguments, build_parser

# The fields shown, by name; everything else keeps its default (and can still be given in the YAML view).
MODEL_FIELDS = ["model_id", "model_local_path"]
DATA_FIELDS = ["data_path", "eval_data_path", "image_folder", "model_max_length"]
TRAIN_FIELDS = [
    "output_dir",
    "llm_mode",
    "vision_mode",
    "train_projector",
    "lora_r",
    "lora_alpha",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "logging_steps",
    "save_strategy",
    "save_steps",
    "eval_strategy",
    "eval_steps",
    "bf16",
    "seed",
]
GROUPS = {cls.__name__: {f.name for f in dataclasses.fields(cls)} for cls in (ModelArguments, DataArguments)}


@dataclass(frozen=True)
class FormField:
    """One argument as a form field: `kind` is bool, int, float, choice or text."""

    name: str
    kind: str
    default: Any
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()


def parser_actions() -> dict[str, argparse.Action]:
    """The first argparse action of each destination (HfArgumentParser adds `--no_<name>` after a true bool)."""
    actions: dict[str, argparse.Action] = {}
    for action in build_parser()._actions:
        actions.setdefault(action.dest, action)
    return actions


def form_field(action: argparse.Action) -> FormField:
    if action.type is string_to_bool:
        kind = "bool"
    elif action.choices:
        kind = "choice"
    elif action.type in (int, float):
        kind = action.type.__name__
    else:
        kind = "text"
    default = action.default if action.default is not argparse.SUPPRESS else None
    choices = tuple(str(choice) for choice in action.choices or ())
    return FormField(action.dest, kind, default, action.help or "", bool(action.required), choices)


def form_fields(names: list[str]) -> list[FormField]:
    actions = parser_actions()
    return [form_field(actions[name]) for name in names]


ALL_FIELDS = MODEL_FIELDS + DATA_FIELDS + TRAIN_FIELDS


def _word(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _same(value: Any, default: Any, kind: str) -> bool:
    """A form value equals an argument's default (3 and 3.0 are the same number; "0.5" typed in text too)."""
    if kind in ("int", "float") and default is not None:
        try:
            return float(value) == float(default)
        except (TypeError, ValueError):
            return False
    return _word(value) == _word(default)


def changed_values(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values that differ from the defaults (and every required one), in form order.

    Empty text and empty numbers mean "the default"; whole floats in int fields come back as ints.
    """
    fields = {field.name: field for field in form_fields(list(values))}
    changed = {}
    for name, value in values.items():
        field = fields[name]
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, str):
            value = value.strip()
        if field.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if field.required or not _same(value, field.default, field.kind):
            changed[name] = value
    return changed


def train_argv(values: dict[str, Any]) -> list[str]:
    """`vlmtune train` command-line words for the form's values."""
    argv = []
    for name, value in changed_values(values).items():
        argv += [f"--{name}", _word(value)]
    return argv


def to_yaml(values: dict[str, Any]) -> str:
    """A `--config` file with the form's changed values (yaml_to_argv of it gives `train_argv(values)`)."""
    return yaml.safe_dump(changed_values(values), sort_keys=False, default_flow_style=False)


def from_yaml(text: str) -> dict[str, Any]:
    """A `--config` YAML text as field values; raises ArgumentError naming what is wrong with it."""
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ArgumentError(f"not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ArgumentError("expected a mapping of argument names to values")
    unknown = sorted(set(config) - set(parser_actions()))
    if unknown:
        raise ArgumentError(f"unknown argument(s) in the YAML: {', '.join(unknown)} (vlmtune train --help)")
    return config


def shell_command(argv: list[str]) -> str:
    return shlex.join(["vlmtune", "train", *argv])


def check_argv(argv: list[str]) -> str | None:
    """None when `vlmtune train` would accept these words, else the one-line message it would print."""
    from vlmtune.supported_models import UnknownNameError, get_model

    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            model_args, _, _ = build_parser().parse_args_into_dataclasses(args=argv)
        get_model(model_args.model_id)
    except ArgumentError as error:
        return f"vlmtune train: error: {error}"
    except UnknownNameError as error:
        return f"vlmtune train: error: {error.args[0]}"
    except ValueError as error:  # transformers.TrainingArguments' own checks
        return f"vlmtune train: error: {str(error).strip().splitlines()[0]}"
    except SystemExit:  # argparse printed its usage and the error line; keep the error line
        lines = [line for line in stderr.getvalue().splitlines() if ": error: " in line]
        return "vlmtune train: error: " + (lines[-1].split(": error: ", 1)[1] if lines else "invalid arguments")
    return None


def values_from_words(words: dict[str, str], names: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Field values for `names` from argument words (`{"lora_r": "8"}`, as in argv or a YAML file) plus the
    command-line words of the arguments that have no field; a field not given gets its default."""
    fields = {field.name: field for field in form_fields(names)}
    values = {name: field.default for name, field in fields.items()}
    extra = []
    for name, word in words.items():
        field = fields.get(name)
        if field is None:
            extra += [f"--{name}", _word(word)]
        elif field.kind == "bool":
            values[name] = string_to_bool(_word(word))
        elif field.kind in ("int", "float"):
            values[name] = (int if field.kind == "int" else float)(word)
        else:
            values[name] = str(word)
    return values, extra


def argv_words(argv: list[str]) -> dict[str, str]:
    """`--name value` pairs of a command line as a mapping (the form writes every argument that way)."""
    return {argv[at][2:]: argv[at + 1] for at in range(0, len(argv) - 1, 2) if argv[at].startswith("--")}
