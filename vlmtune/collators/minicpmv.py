"""MiniCPM-V 4.6 / 4.7 collator: the shared core, with the processor's packed views and its own frame sampling.

`MiniCPMV4_6Processor` packs every view of a call (global views and slices of all its images) into one row,
`pixel_values` [1, 3, patch, total patches] with `target_sizes` [views, 2] saying where each ends, and the vision
tower reads that row NaViT-style; samples are therefore put together along the last dim, not stacked on dim 0 (the
same for a video's `pixel_values_videos`). Its video processor samples frames again unless told not to, and needs a
duration vlmtune's decoded frames do not carry: vlmtune has already sampled them (`timed_videos` passes
`do_sample_frames=False` with the frames' real metadata).
"""

from __future__ import annotations

import torch

from vlmtune.collators.base import VLMCollator

PACKED_VIEW_KEYS = ("pixel_values", "pixel_values_videos")


class MiniCPMVCollator(VLMCollator):
    timed_videos = True

    def merge_media(self, key: str, values: list[torch.Tensor]) -> torch.Tensor:
        if key in PACKED_VIEW_KEYS:
            return torch.cat(values, dim=-1)  # one packed row of views, as one processor call gives
        return super().merge_media(key, values)
