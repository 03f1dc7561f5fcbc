"""Preference pairs: a prompt `Sample` and two replies, read through the SFT readers (`vlmtune.data.formats`).

    pairs = read_pairs("pairs.jsonl", family, data_args)      # every record checked; DataError lists problems
    pair.with_reply(pair.chosen)                              # the conversation the collator encodes

Three record layouts (detected per record):
- TRL's: `{"prompt": "..." | [messages], "chosen": "..." | [messages], "rejected": ..., "images": [...]}`;
  conversational prompts may hold `{"type": "image"}` parts, whose files are the `images` column in order.
- ShareGPT / LLaMA-Factory: `{"conversations": [turns ending with the user's], "chosen": {"from": "gpt",
  "value": "..."}, "rejected": {...}, "images": [...]}` (`system`, `videos` as for SFT).
- OpenAI messages: `{"messages": [messages ending with the user's], "chosen": ..., "rejected": ..., "images"}`.
A reply is a string, a `{"from"/"role", "value"/"content"}` turn, or a list holding one assistant message.
Each record becomes an SFT record (the prompt plus the chosen reply as its last assistant turn) read by
`record_to_sample`, so media, roles, placeholders and the family's capabilities are checked as for SFT.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from vlmtune.arguments import DataArguments
from vlmtune.collators.base import IGNORE_INDEX, SEQUENCE_KEYS
from vlmtune.core.packing import PackingCollator
from vlmtune.data.checks import MediaChecks, Report, check_family, count_records, data_options, path_warnings
from vlmtune.data.formats import ReadOptions, iter_records, problem_list, record_to_sample
from vlmtune.datasets import ASSISTANT, IMAGE_PLACEHOLDER, Sample, Turn, encode_with_media, load_media
from vlmtune.errors import BadSample, DataError
from vlmtune.progress import progress
from vlmtune.supported_models import Family

logger = logging.getLogger("vlmtune")

REPLY_KEYS = ("chosen", "rejected")


@dataclass
class PreferencePair:
    prompt: Sample  # ends with a user turn
    chosen: str
    rejected: str

    @property
    def source(self) -> str:
        return self.prompt.source

    def with_reply(self, reply: str) -> Sample:
        """The prompt with `reply` as its final assistant turn: what SFT would train on."""
        return dataclasses.replace(self.prompt, turns=[*self.prompt.turns, Turn(ASSISTANT, reply)])


def reply_text(value: Any, where: str) -> str:
    """A reply's text from a string, a turn dict, or a list holding one assistant message."""
    if isinstance(value, list):
        if len(value) != 1 or not isinstance(value[0], dict):
            raise DataError(f"{where}: a reply given as a list must hold exactly one assistant message")
        value = value[0]
    if isinstance(value, dict):
        role = value.get("role", value.get("from"))
        if role not in (None, "assistant", "gpt"):
            raise DataError(f"{where}: the reply must be an assistant message, got role {role!r}")
        value = value.get("content", value.get("value"))
        if isinstance(value, list):
            texts = [part.get("text") for part in value if isinstance(part, dict) and part.get("type") == "text"]
            if len(texts) != len(value) or not all(isinstance(text, str) for text in texts):
                raise DataError(f"{where}: a reply can hold text parts only")
            value = "\n".join(texts)
    if not isinstance(value, str):
        raise DataError(f"{where}: a reply must be a string or an assistant message, got {type(value).__name__}")
    if not value.strip():
        raise DataError(f"{where}: the reply is empty")
    return value


def trl_messages(prompt: Any, images: list | None, source: str) -> list[dict]:
    """TRL's prompt as OpenAI messages; `{"type": "image"}` parts (files in the `images` column) become <image>."""
    if isinstance(prompt, str):
        count = prompt.count(IMAGE_PLACEHOLDER)
        placeholders = IMAGE_PLACEHOLDER * (len(images or []) - count) if count == 0 else ""
        return [{"role": "user", "content": placeholders + prompt}]
    if not isinstance(prompt, list) or not prompt:
        raise DataError(f"{source}: field 'prompt' must be a string or a non-empty list of messages")
    messages = []
    for message in prompt:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            content = [
                {"type": "text", "text": IMAGE_PLACEHOLDER}
                if isinstance(part, dict) and part.get("type") == "image" and len(part) == 1
                else part
                for part in content
            ]
            message = {**message, "content": content}
        messages.append(message)
    return messages


def sft_record(record: Any, source: str) -> tuple[dict, str]:
    """(an SFT record: the prompt + the chosen reply as the last assistant turn, the rejected reply's text)."""
    if not isinstance(record, dict):
        raise DataError(f"{source}: a sample must be a JSON object, got {type(record).__name__}")
    for key in REPLY_KEYS:
        if key not in record:
            raise DataError(f"{source}: no field {key!r} (a preference pair needs 'chosen' and 'rejected')")
    chosen = reply_text(record["chosen"], f"{source}: field 'chosen'")
    rejected = reply_text(record["rejected"], f"{source}: field 'rejected'")
    if chosen.strip() == rejected.strip():
        raise DataError(f"{source}: 'chosen' and 'rejected' are the same reply (the pair teaches nothing)")
    rest = {key: value for key, value in record.items() if key not in (*REPLY_KEYS, "prompt")}
    if "prompt" in record:
        rest["messages"] = trl_messages(record["prompt"], record.get("images"), source)
    if "messages" in rest:
        turns = rest["messages"]
        last = turns[-1] if isinstance(turns, list) and turns and isinstance(turns[-1], dict) else {}
        if last.get("role") == "assistant":
            raise DataError(f"{source}: the prompt ends with an assistant turn; put that reply in 'chosen'/'rejected'")
        rest["messages"] = [*turns, {"role": "assistant", "content": chosen}]
    elif "conversations" in rest:
        turns = rest["conversations"]
        last = turns[-1] if isinstance(turns, list) and turns and isinstance(turns[-1], dict) else {}
        if last.get("from") in ("gpt", "assistant"):
            raise DataError(f"{source}: the prompt ends with an assistant turn; put that reply in 'chosen'/'rejected'")
        rest["conversations"] = [*turns, {"from": "assistant", "value": chosen}]
    else:
        raise DataError(f"{source}: no prompt: give 'prompt' (TRL), 'conversations' (ShareGPT) or 'messages'")
    return rest, rejected


def record_to_pair(record: Any, source: str, options: ReadOptions) -> PreferencePair:
    """One record as a pair, read by the SFT reader; raises DataError naming the source and the problem."""
    sft, rejected = sft_record(record, source)
    data_format = options.data_format if options.data_format != "auto" else ("openai" if "messages" in sft else "auto")
    sample = record_to_sample(sft, source, dataclasses.replace(options, data_format=data_format))
    prompt = dataclasses.replace(sample, turns=sample.turns[:-1])
    return PreferencePair(prompt=prompt, chosen=sample.turns[-1].text, rejected=rejected)


def check_pairs(
    data_path: str,
    options: ReadOptions,
    family: Family | None = None,
    decode_media: bool = True,
    encode=None,
    num_frames: int = 8,
) -> Report:
    """`vlmtune.data.checks.check_data` for preference pairs: the SFT checks on prompt + each reply, the pair's
    own checks (both replies, not equal, a prompt ending with the user), the media; `encode` (a collator's) also
    runs the processor on both conversations. `report.samples` holds the good `PreferencePair`s."""
    report = Report(str(data_path))
    media = MediaChecks()
    what = f"checking {Path(data_path).name}" + (" with the processor" if encode else "")
    for source, record in progress(iter_records(data_path), count_records(data_path), what):
        report.checked += 1
        try:
            pair = record_to_pair(record, source, options)
            check_family(pair.with_reply(pair.chosen), family)
            if encode is None:
                media.check(pair.prompt, decode_media, num_frames)
            else:
                load_images = family.to_load_image if family else True
                for reply in (pair.chosen, pair.rejected):
                    encode_with_media(encode, pair.with_reply(reply), load_images, num_frames)
        except (DataError, BadSample) as error:
            report.errors.append(str(error))
            continue
        report.warnings += path_warnings(pair.prompt, options, media.real_path)
        report.samples.append(pair)
    if report.checked == 0:
        report.errors.append(f"{data_path}: no samples")
    return report


def read_pairs(path: str, family: Family, data_args: DataArguments) -> list[PreferencePair]:
    """Every pair checked before any model loads (as `vlmtune.pipeline.read_data` does for SFT samples)."""
    report = check_pairs(
        path, data_options(path, data_args), family, decode_media=False, num_frames=data_args.num_frames
    )
    for warning in report.warnings:
        logger.warning(warning)
    if report.errors and not data_args.skip_bad_samples:
        raise DataError(
            problem_list(report.errors, path) + "\nfix them (vlmtune validate --task dpo --data_path ... lists every "
            "problem), or pass --skip_bad_samples to train on the good pairs only"
        )
    if report.errors:
        logger.warning("skipping bad pairs (%d checked): %s", report.checked, problem_list(report.errors, path))
    if not report.samples:
        raise DataError(f"{path}: no usable preference pairs")
    return report.samples


class PairDataset:
    """Map-style dataset of pairs: item i is (chosen features, rejected features), each encoded by the family's
    collator (`encode`: the prompt's turns plus the reply as the final assistant turn), the media loaded once.
    `ref_logps` ([N, 2], set by `--precompute_ref_log_probs`) rides along as each pair's reference log-probs."""

    def __init__(self, pairs: list[PreferencePair], encode, load_images: bool, num_frames: int):
        self.pairs, self.encode = pairs, encode
        self.load_images, self.num_frames = load_images, num_frames
        self.ref_logps = None

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        images, videos = load_media(pair.prompt, self.load_images, self.num_frames)
        item = {"chosen": self.encode(pair.with_reply(pair.chosen), images, videos)}
        item["rejected"] = self.encode(pair.with_reply(pair.rejected), images, videos)
        if self.ref_logps is not None:
            item["ref_logps"] = self.ref_logps[index]
        return item


class PairCollator:
    """Chosen rows first, then rejected rows, padded into one batch by the family collator (`__call__`): the pairs
    of a batch go through one forward. Precomputed reference log-probs come as `ref_chosen_logps` /
    `ref_rejected_logps`."""

    def __init__(self, collator):
        self.collator = collator

    def __call__(self, items: list[dict]) -> dict:
        batch = self.collator([item["chosen"] for item in items] + [item["rejected"] for item in items])
        if "ref_logps" in items[0]:
            ref = torch.stack([item["ref_logps"] for item in items])
            batch["ref_chosen_logps"], batch["ref_rejected_logps"] = ref[:, 0], ref[:, 1]
        return batch


class SharedPromptCollator:
    """Each pair as ONE row: the prompt once, the chosen reply after it, then the rejected reply, which sees the
    prompt but not the chosen reply (a 4-D mask). The prompt's tokens and media go through the model once per
    pair, not twice, and a row is the prompt plus both replies rather than two padded conversations.

    The rejected reply's positions continue from the prompt's (Qwen-VL: its 3-D positions, from the model's
    `get_rope_index`, as `vlmtune.core.packing` computes them), so each reply sees exactly what it would see in a
    conversation of its own. Each trained token comes with the position whose logits predict it (`pair_sources`:
    the previous token, or for the rejected reply's first token the prompt's last), its label (`pair_targets`)
    and its side (`pair_sides`: 0 chosen, 1 rejected, -1 none), which `vlmtune.dpo.trainer.reply_logps` sums.
    Used for the families whose record says they pack (their masks are plain causal ones) with eager or sdpa
    attention; `tests/test_dpo_logps.py` checks the log-probs against each conversation alone."""

    def __init__(self, collator, rope_index=None):
        self.collator = collator
        self.positions = PackingCollator(collator, rope_index).positions

    def __call__(self, items: list[dict]) -> dict:
        rows = [self.pair_row(item["chosen"], item["rejected"]) for item in items]
        width = max(len(row["input_ids"]) for row in rows)
        trained = max(len(row["pair_targets"]) for row in rows)
        fills = {"input_ids": self.collator.pad_token_id, "pair_sides": -1}
        batch = {}
        for key in rows[0]:
            if key != "pair_mask":
                size = trained if key.startswith("pair_") else width
                batch[key] = torch.stack([pad_last(row[key], size, fills.get(key, 0)) for row in rows])
        if batch["position_ids"].dim() == 3:  # Qwen-VL's [4, rows, width]: text positions, then time/height/width
            batch["position_ids"] = batch["position_ids"].transpose(0, 1)
        batch["pair_mask"] = torch.stack([pad_mask(row["pair_mask"], width) for row in rows])
        batch.update(self.collator.merge_all_media([item["chosen"] for item in items]))
        if "ref_logps" in items[0]:
            ref = torch.stack([item["ref_logps"] for item in items])
            batch["ref_chosen_logps"], batch["ref_rejected_logps"] = ref[:, 0], ref[:, 1]
        return batch

    def pair_row(self, chosen: dict, rejected: dict) -> dict[str, torch.Tensor]:
        """One pair's row: the chosen conversation, then the rejected one's tokens after the shared prompt."""
        shared = shared_prompt_length(chosen, rejected)
        length, tail = len(chosen["input_ids"]), len(rejected["input_ids"]) - shared
        row = {}
        for key in SEQUENCE_KEYS:
            if key in chosen and key not in ("labels", "attention_mask"):
                row[key] = torch.cat([chosen[key], rejected[key][shared:]])
        positions = self.positions(chosen)  # [length] or [4, length]
        after = positions[..., shared - 1 : shared] + 1 + torch.arange(tail)
        row["position_ids"] = torch.cat([positions, after], dim=-1)
        sources, targets, sides = [], [], []
        for side, labels, offset in ((0, chosen["labels"], 0), (1, rejected["labels"], length - shared)):
            for index in (labels != IGNORE_INDEX).nonzero().flatten().tolist():
                at = index + offset  # where this token sits in the row
                sources.append(shared - 1 if side and index == shared else at - 1)
                targets.append(int(labels[index]))
                sides.append(side)
        row["pair_sources"], row["pair_targets"] = torch.tensor(sources), torch.tensor(targets)
        row["pair_sides"] = torch.tensor(sides)
        allowed = torch.ones(length + tail, length + tail, dtype=torch.bool).tril()
        allowed[length:, shared:length] = False  # the rejected reply does not see the chosen one
        row["pair_mask"] = allowed
        return row


def shared_prompt_length(chosen: dict, rejected: dict) -> int:
    """How many leading tokens the two conversations share, up to the first trained token of either."""
    ids = chosen["input_ids"], rejected["input_ids"]
    limit = min(len(ids[0]), len(ids[1]))
    differ = (ids[0][:limit] != ids[1][:limit]).nonzero()
    common = int(differ[0]) if len(differ) else limit
    first = [int((f["labels"] != IGNORE_INDEX).nonzero()[0]) for f in (chosen, rejected)]
    return min(common, *first)


def pad_last(values: torch.Tensor, size: int, fill: int) -> torch.Tensor:
    """Right-pad the last dimension to `size`."""
    extra = size - values.shape[-1]
    return torch.cat([values, values.new_full((*values.shape[:-1], extra), fill)], dim=-1) if extra else values


def pad_mask(allowed: torch.Tensor, size: int) -> torch.Tensor:
    """[1, size, size]: the row's mask, padding tokens seeing only themselves (no row of the softmax is empty)."""
    out = torch.eye(size, dtype=torch.bool)
    out[: len(allowed), : len(allowed)] = allowed
    return out[None]
