"""The web UI's forms, generated from the commands' own argument parsers (no gradio here).

Each field takes its type, choices, default and help text from the argparse action that the command's parser
makes for it (`command_parser`: `vlmtune train`'s HfArgumentParser over ModelArguments, DataArguments,
TrainingArguments; `vlmtune grpo`'s, which adds GRPOArguments; the argparse parsers of `vlmtune compose` and
`vlmtune serve`), so a form
cannot drift from the command line. The form's values become the same command-line words the command takes
(`form_argv`), a YAML file for `--config` (`to_yaml`), a shell command (`shell_command`), and are checked by the
same parsing before a run starts (`check_argv`). Every function takes the command's name, `train` by default.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import io
import shlex
from dataclasses import dataclass
from typing import Any

import yaml
from transformers.hf_argparser import string_to_bool

from vlmtune.arguments import DataArguments, ModelArguments, build_parser
from vlmtune.errors import ArgumentError

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
GRPO_FIELDS = [  # the GRPO tab's: model_id and model_local_path are the Model tab's, the rest its own
    "model_id",
    "model_local_path",
    "data_path",
    "output_dir",
    "reward_funcs",
    "reward_weights",
    "num_generations",
    "max_completion_length",
    "temperature",
    "loss_type",
    "beta",
    "learning_rate",
    "max_steps",
    "per_device_train_batch_size",
]
DPO_FIELDS = [  # the DPO tab's: model_id and model_local_path are the Model tab's, the rest its own
    "model_id",
    "model_local_path",
    "data_path",
    "output_dir",
    "loss_type",
    "loss_weights",
    "beta",
    "label_smoothing",
    "precompute_ref_log_probs",
    "prompt_once",
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
]
COMPOSE_FIELDS = [
    "vision",
    "llm",
    "output_dir",
    "projector",
    "vision_feature_layer",
    "vision_feature_select_strategy",
    "image_size",
    "chat_template",
    "pixel_shuffle_factor",
    "seed",
]
SERVE_FIELDS = [  # all of `vlmtune serve`'s arguments
    "output",
    "host",
    "port",
    "max_model_len",
    "served_model_name",
    "base",
    "dtype",
    "kv_cache_bytes",
    "api_key_file",
]
GROUPS = {cls.__name__: {f.name for f in dataclasses.fields(cls)} for cls in (ModelArguments, DataArguments)}


@dataclass(frozen=True)
class FormField:
    """One argument as a form field: `kind` is bool, int, float, choice, text or list (several words, e.g.
    `--reward_funcs format accuracy`, shown as one text; `item` is the kind of each: int, float or text).
    A `positional` argument is written as its value alone, e.g. `vlmtune serve OUTPUT`."""

    name: str
    kind: str
    default: Any
    help: str
    required: bool = False
    choices: tuple[str, ...] = ()
    item: str = "text"
    positional: bool = False


def command_parser(command: str = "train") -> argparse.ArgumentParser:
    """The argument parser of `vlmtune <command>`: train, grpo, dpo, compose or serve."""
    if command == "train":
        return build_parser()
    if command == "grpo":
        from vlmtune.grpo.arguments import build_grpo_parser

        return build_grpo_parser()
    if command == "dpo":
        from vlmtune.dpo.arguments import build_dpo_parser

        return build_dpo_parser()
    if command == "compose":
        from vlmtune.compose.build import build_parser as compose_parser

        return compose_parser()
    if command == "serve":
        from vlmtune.serving.serve import build_parser as serve_parser

        return serve_parser()
    raise ValueError(f"no form for vlmtune {command}")


@functools.cache
def parser_actions(command: str = "train") -> dict[str, argparse.Action]:
    """The first argparse action of each destination (HfArgumentParser adds `--no_<name>` after a true bool)."""
    actions: dict[str, argparse.Action] = {}
    for action in command_parser(command)._actions:
        actions.setdefault(action.dest, action)
    return actions


def form_field(action: argparse.Action) -> FormField:
    number = action.type.__name__ if action.type in (int, float) else "text"
    if action.type is string_to_bool:
        kind = "bool"
    elif action.nargs in ("+", "*"):
        kind = "list"
    elif action.choices:
        kind = "choice"
    else:
        kind = number
    default = action.default if action.default is not argparse.SUPPRESS else None
    choices = tuple(str(choice) for choice in action.choices or ())
    positional = not action.option_strings
    return FormField(action.dest, kind, default, action.help or "", bool(action.required), choices, number, positional)


def form_fields(names: list[str], command: str = "train") -> list[FormField]:
    actions = parser_actions(command)
    return [form_field(actions[name]) for name in names]


ALL_FIELDS = MODEL_FIELDS + DATA_FIELDS + TRAIN_FIELDS


def _word(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def list_text(value: Any) -> str:
    """A list field's value as the one text the form shows: its words separated by spaces."""
    if value is None:
        return ""
    return " ".join(_word(item) for item in value) if isinstance(value, list | tuple) else _word(value)


def _list_items(text: str, item: str) -> list[Any]:
    """A list field's text as its values (numbers as numbers, so that the YAML view writes them plain)."""
    words = text.split()
    if item == "text":
        return words
    try:
        return [(int if item == "int" else float)(word) for word in words]
    except ValueError:  # left as typed: the check before launch names the field
        return words


def _same(value: Any, default: Any, kind: str) -> bool:
    """A form value equals an argument's default (3 and 3.0 are the same number; "0.5" typed in text too)."""
    if kind == "list":
        return list_text(value).split() == list_text(default).split()
    if kind in ("int", "float") and default is not None:
        try:
            return float(value) == float(default)
        except (TypeError, ValueError):
            return False
    return _word(value) == _word(default)


def changed_values(values: dict[str, Any], command: str = "train") -> dict[str, Any]:
    """The form's values that differ from the defaults (and every required one), in form order.

    Empty text and empty numbers mean "the default"; whole floats in int fields come back as ints, a list
    field's text as a list.
    """
    fields = {field.name: field for field in form_fields(list(values), command)}
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
            changed[name] = _list_items(list_text(value), field.item) if field.kind == "list" else value
    return changed


def form_argv(values: dict[str, Any], command: str = "train") -> list[str]:
    """`vlmtune <command>` command-line words for the form's values: the positional arguments' first."""
    positional = {field.name for field in form_fields(list(values), command) if field.positional}
    argv, flags = [], []
    for name, value in changed_values(values, command).items():
        words = list(map(_word, value)) if isinstance(value, list) else [_word(value)]
        argv += words if name in positional else []
        flags += [] if name in positional else [f"--{name}", *words]
    return argv + flags


def to_yaml(values: dict[str, Any], command: str = "train") -> str:
    """A `--config` file with the form's changed values (yaml_to_argv of it gives `form_argv(values)`)."""
    return yaml.safe_dump(changed_values(values, command), sort_keys=False, default_flow_style=False)


def from_yaml(text: str, command: str = "train") -> dict[str, Any]:
    """A `--config` YAML text as field values; raises ArgumentError naming what is wrong with it."""
    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ArgumentError(f"not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise ArgumentError("expected a mapping of argument names to values")
    unknown = sorted(set(config) - set(parser_actions(command)))
    if unknown:
        raise ArgumentError(f"unknown argument(s) in the YAML: {', '.join(unknown)} (vlmtune {command} --help)")
    return config


def shell_command(argv: list[str], command: str = "train") -> str:
    return shlex.join(["vlmtune", command, *argv])


def check_argv(argv: list[str], command: str = "train") -> str | None:
    """None when `vlmtune <command>` (train, grpo, dpo or serve) would accept these words, else the one-line message it
    would print: the parsing and the dataclasses' checks, the model id, (grpo) the reward names and plugin files,
    (serve) the output folder and whether vLLM takes it, as serve checks them before it starts vLLM."""
    from vlmtune.errors import UnknownNameError
    from vlmtune.supported_models import get_model

    stderr = io.StringIO()
    try:
        if command == "serve":
            from vlmtune.serving.serve import server_command

            server_command(command_parser(command).parse_args(argv))
            return None
        with contextlib.redirect_stderr(stderr):
            parsed = command_parser(command).parse_args_into_dataclasses(args=argv)
        get_model(parsed[0].model_id)
        if command == "grpo":
            from vlmtune.grpo.run import reward_functions

            reward_functions(parsed[-1])
    except ArgumentError as error:
        return f"vlmtune {command}: error: {error}"
    except UnknownNameError as error:
        return f"vlmtune {command}: error: {error.args[0]}"
    except ValueError as error:  # transformers.TrainingArguments' own checks
        return f"vlmtune {command}: error: {str(error).strip().splitlines()[0]}"
    except SystemExit:  # argparse printed its usage and the error line; keep the error line
        lines = [line for line in stderr.getvalue().splitlines() if ": error: " in line]
        return f"vlmtune {command}: error: " + (lines[-1].split(": error: ", 1)[1] if lines else "invalid arguments")
    return None


def values_from_words(
    words: dict[str, Any], names: list[str], command: str = "train"
) -> tuple[dict[str, Any], list[str]]:
    """Field values for `names` from argument words (`{"lora_r": "8"}`, as in argv or a YAML file; a list
    argument's words as a list) plus the command-line words of the arguments that have no field; a field not
    given gets its default (a list field's as its text)."""
    fields = {field.name: field for field in form_fields(names, command)}
    values = {name: list_text(f.default) if f.kind == "list" else f.default for name, f in fields.items()}
    extra = []
    for name, word in words.items():
        field = fields.get(name)
        if field is None:
            extra += [f"--{name}", *(map(_word, word) if isinstance(word, list) else [_word(word)])]
        elif field.kind == "list":
            values[name] = list_text(word)
        elif field.kind == "bool":
            values[name] = string_to_bool(_word(word))
        elif field.kind in ("int", "float"):
            values[name] = (int if field.kind == "int" else float)(word)
        else:
            values[name] = str(word)
    return values, extra


def argv_words(argv: list[str]) -> dict[str, str | list[str]]:
    """`--name value...` of a command line as a mapping (the form writes every argument that way): one value as
    a word, several (a list argument's) as a list."""
    words: dict[str, list[str]] = {}
    name = None
    for word in argv:
        if word.startswith("--"):
            name = word[2:]
            words[name] = []
        elif name is not None:
            words[name].append(word)
    return {name: values[0] if len(values) == 1 else values for name, values in words.items() if values}
