"""GRPO prompts from the SFT readers: a sample's final assistant turn leaves the prompt and becomes `solution`.

A record in any format `vlmtune.data.formats` reads is a prompt. The ms-swift ClevrCount layout reads unchanged:
`{"messages": [{"role": "user", "content": "<image>How many items are there?"}], "images": ["a.png"],
"solution": "<answer> 3 </answer>"}`. Every column besides the conversation and media (`solution` and anything
else) reaches the reward functions untouched.
"""

from __future__ import annotations

from vlmtune.arguments import DataArguments
from vlmtune.data.checks import to_prompt
from vlmtune.datasets import Sample
from vlmtune.pipeline import read_data
from vlmtune.supported_models import Family


def read_prompts(path: str, family: Family, data_args: DataArguments, columns: tuple[str, ...]) -> list[Sample]:
    """Every record checked as for SFT (`vlmtune.pipeline.read_data`) plus the reward columns, as prompts."""
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
