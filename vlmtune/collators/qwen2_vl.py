"""Qwen2-VL / Qwen2.5-VL collator: the shared core as it is.

Qwen's processor flattens every image into patch rows (`pixel_values`: [patches, dim]) with its grid in
`image_grid_thw` ([images, 3]); both concatenate along dim 0 across samples, which is the core's default, and
the model computes its 3-D rotary positions from `input_ids`, the grids and `attention_mask` per sample.
"""

from vlmtune.collators.base import VLMCollator


class Qwen2VLCollator(VLMCollator):
    pass
