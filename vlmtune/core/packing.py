"""Packing (`--packing`): the encoded samples of a batch are concatenated into rows, with (almost) no padding.

With flash-attention the whole batch becomes one row and there is no padding at all. With eager / sdpa the
samples fill rows no longer than the batch's longest sample (first-fit decreasing): their block-diagonal mask
costs the square of the row length, and rows that short never cost more than the padded batch would.

How samples stay apart in a row (no sample can attend to another):
- every sample's positions restart at 0 (`position_ids`), and no `attention_mask` is passed. transformers
  then derives the sample boundaries from the restarts: flash-attention 2/3 run their variable-length kernels
  on them (`cu_seqlens`), and for eager / sdpa / flex attention `transformers.masking_utils` builds a
  block-diagonal causal mask. That detection is transformers' own; no masking logic is copied here, and
  `tests/test_packing.py` proves it by changing one sample and checking that the other's logits stay put.
  transformers looks for the restarts only when no cache is in use, and a model builds a cache by default
  (`use_cache` in its config, even in training): a packed batch therefore carries `use_cache=False`.
- the Qwen2-VL / Qwen2.5-VL families rotate with 3-D (time, height, width) positions. They are computed per
  sample with the model's public `get_rope_index` (each sample with its own image grids, starting at 0) and
  concatenated; the row of 1-D text positions is put in front ([4, rows, length]), which is how these models
  accept packed positions and find the boundaries.
- the first token of every sample gets label -100, so the last token of one sample never learns to predict
  the next sample's first token (it is never a reply token anyway).

Packing is allowed for the families whose record says `packing=True` (verified by the loss-equality test) and
for attention kernels that honour the boundaries (`ISOLATING_ATTENTION`); anything else is refused with a
message, never silently cross-attended.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from vlmtune.collators.base import IGNORE_INDEX, SEQUENCE_KEYS
from vlmtune.errors import ArgumentError

# Attention kernels that keep packed samples apart when given restarting position_ids and no attention mask.
ISOLATING_ATTENTION = ("eager", "sdpa", "flex_attention", "flash_attention_2", "flash_attention_3")

RopeIndex = Callable[..., tuple[torch.Tensor, torch.Tensor]]


def multimodal_rope_index(model: torch.nn.Module) -> RopeIndex | None:
    """The model's `get_rope_index` (Qwen-VL 3-D rotary positions), or None for models with 1-D positions."""
    inner = getattr(model, "model", model)
    return getattr(inner, "get_rope_index", None)


def check_packing(model: torch.nn.Module, family_id: str, family_packs: bool) -> None:
    """Refuse packing where it is not verified or where the attention kernel could mix samples."""
    check_family_packs(family_id, family_packs)
    check_attention_isolates(model)


def check_family_packs(family_id: str, family_packs: bool) -> None:
    """Refuse packing for a family it is not verified for (before any model loads)."""
    if not family_packs:
        raise ArgumentError(
            f"--packing is not supported for the {family_id} family (not verified to keep samples apart); "
            "train without --packing (batches are still padded only to their longest sample)"
        )


def check_attention_isolates(model: torch.nn.Module) -> None:
    """Refuse packing when the model's attention kernel could let packed samples see each other."""
    # transformers keeps the resolved kernel in this config attribute; there is no public accessor.
    attention = model.config._attn_implementation
    if attention not in ISOLATING_ATTENTION:
        raise ArgumentError(
            f"--packing needs an attention kernel that keeps packed samples apart ({', '.join(ISOLATING_ATTENTION)}); "
            f"this model runs {attention!r}: pass --attn_implementation sdpa (or flash_attention_2 on a GPU)"
        )


def packing_collator(model: torch.nn.Module, family: Any, collator: Any) -> PackingCollator:
    """The batcher for `--packing`: refuses what cannot be packed safely (call before PEFT wraps the model)."""
    check_packing(model, family.family_id, family.packing)
    one_row = model.config._attn_implementation.startswith("flash_attention")
    return PackingCollator(collator, multimodal_rope_index(model), one_row=one_row)


def fill_rows(lengths: list[int], capacity: int) -> list[list[int]]:
    """Sample indices grouped into rows of at most `capacity` tokens, longest first, each into the first row
    with room (first-fit decreasing)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        for row, space in enumerate(room):
            if lengths[index] <= space:
                rows[row].append(index)
                room[row] -= lengths[index]
                break
        else:
            rows.append([index])
            room.append(capacity - lengths[index])
    return rows


class PackingCollator:
    """Wraps a family collator (`VLMCollator`): the same encoded samples, batched as packed rows.

    `one_row=True` (flash-attention: its variable-length kernels want a batch of one row) puts the whole batch
    in one row without any padding. Otherwise (eager / sdpa, whose block-diagonal mask costs the square of the
    row length) the samples fill rows no longer than the batch's longest sample, so a step never computes more
    than the padded batch would; a shorter row ends in one padding segment that attends only to itself and has
    no labels.
    """

    def __init__(self, collator: Any, rope_index: RopeIndex | None = None, one_row: bool = True):
        self.collator = collator
        self.rope_index = rope_index
        self.one_row = one_row

    def __call__(self, features: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
        lengths = [len(f["input_ids"]) for f in features]
        rows = [list(range(len(features)))] if self.one_row else fill_rows(lengths, max(lengths))
        width = max(sum(lengths[i] for i in row) for row in rows)
        packed = [self.pack_row([features[i] for i in row], width) for row in rows]
        batch: dict[str, Any] = {}
        for key in packed[0]:
            values = [row[key] for row in packed]
            batch[key] = torch.stack(values, dim=values[0].dim() - 1)  # [rows, width]; 3-D positions [4, rows, width]
        batch["use_cache"] = False  # with a cache, transformers would not look for the sample boundaries
        # Images are matched to their tokens in reading order, so their tensors follow the rows' sample order.
        batch.update(self.collator.merge_all_media([features[i] for row in rows for i in row]))
        return batch

    def pack_row(self, features: list[dict[str, torch.Tensor]], width: int) -> dict[str, torch.Tensor]:
        """One row: the samples one after the other, positions restarting at 0, then a padding segment."""
        free = width - sum(len(f["input_ids"]) for f in features)
        row: dict[str, list[torch.Tensor]] = {"input_ids": [], "labels": [], "position_ids": []}
        for key in SEQUENCE_KEYS:
            if key in features[0] and key not in row and key != "attention_mask":
                row[key] = []
        for f in features:
            for key in row:
                if key != "position_ids":
                    row[key].append(f[key])
            row["labels"][-1] = row["labels"][-1].clone()
            row["labels"][-1][0] = IGNORE_INDEX  # no prediction across the boundary from the previous sample
            row["position_ids"].append(self.positions(f))
        if free:
            filler = {"input_ids": self.collator.pad_token_id, "labels": IGNORE_INDEX}
            for key in row:
                if key != "position_ids":
                    row[key].append(torch.full((free,), filler.get(key, 0), dtype=row[key][0].dtype))
            padding = torch.arange(free)
            row["position_ids"].append(padding if self.rope_index is None else padding.expand(4, -1))
        return {key: torch.cat(values, dim=-1) for key, values in row.items()}

    def positions(self, feature: dict[str, torch.Tensor]) -> torch.Tensor:
        """[length] text positions from 0; for 3-D rotary models [4, length]: text, then time/height/width."""
        text = torch.arange(len(feature["input_ids"]))
        if self.rope_index is None:
            return text
        token_types = feature.get("mm_token_type_ids")
        if token_types is None:
            raise ValueError(
                "--packing with 3-D rotary positions needs mm_token_type_ids from the processor; "
                "this processor returns none"
            )
        spatial, _ = self.rope_index(
            feature["input_ids"][None],
            token_types[None],
            image_grid_thw=feature.get("image_grid_thw"),
            video_grid_thw=feature.get("video_grid_thw"),
            **{key: feature[key] for key in ("second_per_grid_ts",) if key in feature},  # Qwen2.5-VL videos
        )
        return torch.cat([text[None], spatial[:, 0]], dim=0)
