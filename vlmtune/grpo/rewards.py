"""Reward functions: built-in ones and user ones, all called as TRL calls them.

    f(prompts: list[str], completions: list[str], **columns) -> list[float | None]

`prompts` are the prompts' user text, `completions` the decoded replies; every other column of the samples
arrives as a keyword list (`solution`, anything else in the record), plus `completion_ids` (token ids). None means
"no score for this one" (it is left out of the sum). User rewards: `module:function` (imported, never eval'd),
or any function name defined in a `--reward_plugin` file (ms-swift's external plugin style).

Built in:
- `format`: 1 when the reply is `<think>...</think><answer>...</answer>` (tags configurable), else 0.
- `accuracy`: 1 when the answer (inside the answer tags if present, else the whole reply) matches `solution`:
  math-verify when it is installed, else numbers compared as numbers, a multiple-choice letter as the letter,
  otherwise exact text (case and surrounding space ignored). The solution's own answer tags are stripped.
- `length`: DAPO's soft overlong punishment: 0 up to `max_completion_length - overlong_buffer` tokens, then
  linearly down to -1 at `max_completion_length`.
- `repetition`: minus the share of repeated 3-grams of words in the reply (0: none repeated).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from vlmtune.errors import ArgumentError, DataError

RewardFunc = Callable[..., list[float | None]]


class RewardError(DataError):
    """A reward function raised or returned something unusable; the message names the reward and the sample."""


def answer_text(text: str, tags: tuple[str, str]) -> str:
    """The text inside the last answer tags, or the whole text when there are none."""
    found = re.findall(re.escape(tags[0]) + r"(.*?)" + re.escape(tags[1]), text, flags=re.DOTALL)
    return (found[-1] if found else text).strip()


def format_reward(
    prompts: list[str],
    completions: list[str],
    think_tags=("<think>", "</think>"),
    answer_tags=("<answer>", "</answer>"),
    **_,
) -> list[float]:
    pattern = re.compile(
        r"^\s*{}.*?{}\s*{}.*?{}\s*$".format(*map(re.escape, (*think_tags, *answer_tags))), flags=re.DOTALL
    )
    return [1.0 if pattern.match(text) else 0.0 for text in completions]


NUMBER = re.compile(r"^[-+]?\d+(?:[.,]\d+)?$")
CHOICE = re.compile(r"^\(?([A-Za-z])[).:]?(?:\s.*)?$", flags=re.DOTALL)


def answers_match(answer: str, solution: str) -> bool:
    """Numbers as numbers, a multiple-choice letter as the letter, else exact text (case/space ignored)."""
    answer, solution = answer.strip().rstrip("."), solution.strip().rstrip(".")
    if NUMBER.match(answer) and NUMBER.match(solution):
        return float(answer.replace(",", ".")) == float(solution.replace(",", "."))
    if len(solution) == 1 and solution.isalpha():
        choice = CHOICE.match(answer)
        return bool(choice) and choice.group(1).upper() == solution.upper()
    return " ".join(answer.lower().split()) == " ".join(solution.lower().split())


def math_verify_match(answer: str, solution: str) -> bool | None:
    """math-verify's verdict when it is installed and parses both; None otherwise (fall back to answers_match)."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return None
    gold, guess = parse(solution), parse(answer)
    if not gold or not guess:
        return None
    return bool(verify(gold, guess))


def accuracy_reward(
    prompts: list[str],
    completions: list[str],
    solution: list[Any] | None = None,
    answer_tags=("<answer>", "</answer>"),
    **_,
) -> list[float | None]:
    if solution is None:
        raise ValueError("the accuracy reward needs a 'solution' column (or a final assistant turn in each sample)")
    scores: list[float | None] = []
    for text, reference in zip(completions, solution, strict=True):
        if reference is None:
            scores.append(None)
            continue
        answer, gold = answer_text(text, answer_tags), answer_text(str(reference), answer_tags)
        verdict = math_verify_match(answer, gold)
        scores.append(1.0 if (answers_match(answer, gold) if verdict is None else verdict) else 0.0)
    return scores


def length_reward(
    prompts: list[str],
    completions: list[str],
    completion_ids: list[list[int]],
    max_completion_length: int = 512,
    overlong_buffer: int = 0,
    **_,
) -> list[float]:
    buffer = overlong_buffer or max(1, max_completion_length // 4)
    start = max_completion_length - buffer
    return [-min(1.0, max(0, len(ids) - start) / buffer) for ids in completion_ids]


def repetition_reward(prompts: list[str], completions: list[str], n: int = 3, **_) -> list[float]:
    scores = []
    for text in completions:
        words = text.split()
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        scores.append(-(1 - len(set(grams)) / len(grams)) if grams else 0.0)
    return scores


BUILT_IN: dict[str, RewardFunc] = {
    "format": format_reward,
    "accuracy": accuracy_reward,
    "length": length_reward,
    "repetition": repetition_reward,
}


def plugin_functions(path: str) -> dict[str, RewardFunc]:
    """The public functions a `--reward_plugin` file defines (run as a module of its own, from its path)."""
    file = Path(path)
    if not file.is_file():
        raise ArgumentError(f"--reward_plugin {path}: file not found")
    spec = importlib.util.spec_from_file_location(f"vlmtune_reward_plugin_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {
        name: value
        for name, value in vars(module).items()
        if callable(value) and not name.startswith("_") and getattr(value, "__module__", None) == module.__name__
    }


def resolve_reward(name: str, plugins: dict[str, RewardFunc], options: dict[str, Any]) -> RewardFunc:
    """A reward by name: built in (with the run's tag and length options bound), plugin, or module:function."""
    if name in BUILT_IN:
        return partial(BUILT_IN[name], **options)
    if name in plugins:
        return plugins[name]
    if ":" in name:
        module_name, _, function_name = name.partition(":")
        try:
            function = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as error:
            raise ArgumentError(f"--reward_funcs {name}: cannot import it ({error})") from None
        if not callable(function):
            raise ArgumentError(f"--reward_funcs {name}: not a function")
        return function
    known = ", ".join([*BUILT_IN, *plugins])
    raise ArgumentError(f"--reward_funcs: unknown reward {name!r} (known: {known}; or module:function)")


def resolve_rewards(names: list[str], plugin_files: list[str], options: dict[str, Any]) -> dict[str, RewardFunc]:
    plugins: dict[str, RewardFunc] = {}
    for path in plugin_files:
        plugins.update(plugin_functions(path))
    return {name: resolve_reward(name, plugins, options) for name in names}


def score(
    rewards: dict[str, RewardFunc],
    prompts: list[str],
    completions: list[str],
    columns: dict[str, list[Any]],
    sources: list[str],
) -> dict[str, list[float | None]]:
    """Every reward's scores; a reward that raises or returns the wrong count stops the run, naming it."""
    scores = {}
    for name, function in rewards.items():
        try:
            values = function(prompts=prompts, completions=completions, **columns)
        except Exception as error:  # a user's reward may raise anything: one line that names it and the sample
            at = failing_sample(function, prompts, completions, columns, sources)
            raise RewardError(f"reward {name!r} raised {type(error).__name__}: {error} (sample {at})") from error
        if not isinstance(values, list | tuple) or len(values) != len(completions):
            raise RewardError(
                f"reward {name!r} must return a list of {len(completions)} floats (one per completion), got "
                f"{type(values).__name__}{'' if not hasattr(values, '__len__') else f' of {len(values)}'}"
            )
        for value, source in zip(values, sources, strict=True):
            if value is not None and not isinstance(value, int | float):
                raise RewardError(
                    f"reward {name!r} returned {value!r} for sample {source!r}; expected a float or None"
                )
        scores[name] = [None if value is None else float(value) for value in values]
    return scores


def failing_sample(function: RewardFunc, prompts: list, completions: list, columns: dict, sources: list[str]) -> str:
    """The first sample on which `function` raises when called on it alone (to name it in the error)."""
    for i, source in enumerate(sources):
        try:
            function(
                prompts=prompts[i : i + 1],
                completions=completions[i : i + 1],
                **{k: v[i : i + 1] for k, v in columns.items()},
            )
        except Exception:  # the same failure, now on one sample
            return repr(source)
    return f"unknown: it raised only on the whole batch starting with {sources[0]!r}"
