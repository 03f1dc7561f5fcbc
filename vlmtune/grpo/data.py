"""GRPO prompts from the SFT readers: a sample's final assistant turn leaves the prompt and becomes `solution`.

A record in any format `vlmtune.formats` reads is a prompt. The ms-swift ClevrCount layout reads unchanged:
`{"messages": [{"role": "user", "content": "<image>How many items are there?"}], "images": ["a.png"],
"solution": "<answer> 3 </answer>"}`. Every column besides the conversation and media (`solution` and anything
else) reaches the reward functions untouched.
"""

from __future__ import annotations

import dataclasses

from vlmtune.arguments import DataArguments
from vlmtune.datasets import ASSISTANT, DataError, Sample
from vlmtune.supported_models import Family


def to_prompt(sample: Sample) -> Sample:
    """The sample without its final assistant turn; that turn's text is kept as `solution` when none is given."""
    if not sample.turns or sample.turns[-1].role != ASSISTANT:
        return sample
    extra = dict(sample.extra)
    extra.setdefault("solution", sample.turns[-1].text)
    return dataclasses.replace(sample, turns=sample.turns[:-1], extra=extra)


def check_reward_columns(sample: Sample, columns: tuple[str, ...] | list[str]) -> None:
    """Every column a reward reads must exist (a final assistant turn stands in for `solution`)."""
    prompt = to_prompt(sample)
    if not prompt.turns:
        raise DataError(f"{sample.source}: no user turn is left as the prompt")
    missing = [column for column in columns if column not in prompt.extra]
    if missing:
        raise DataError(
            f"{sample.source}: no column {', '.join(map(repr, missing))} for the rewards (add it to the record, or "
            "end the conversation with the expected assistant reply, which becomes 'solution')"
        )


def read_prompts(path: str, family: Family, data_args: DataArguments, columns: tuple[str, ...]) -> list[Sample]:
    """Every record checked as for SFT (`vlmtune.train.read_data`) plus the reward columns, as prompts."""
    from vlmtune.train import read_data

    return [to_prompt(sample) for sample in read_data(path, family, data_args, reward_columns=columns)]


class PromptDataset:
    """Map-style dataset of prompt `Sample`s; the batch is the list itself (rollouts encode it)."""

    def __init__(self, samples: list[Sample]):
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]


def keep_samples(batch: list[Sample]) -> list[Sample]:
    """The data collator: prompts stay samples until the rollout renders them with the family's template."""
    return batch
