"""Qwen2-VL / Qwen2.5-VL collator: the shared core, plus a cheap image-token count for length grouping.

Qwen's processor flattens every image into patch rows (`pixel_values`: [patches, dim]) with its grid in
`image_grid_thw` ([images, 3]); both concatenate along dim 0 across samples, which is the core's default, and
the model computes its 3-D rotary positions from `input_ids`, the grids and `attention_mask` per sample.
"""

from vlmtune.collators.base import VLMCollator


class Qwen2VLCollator(VLMCollator):
    def estimate_image_tokens(self, height: int, width: int) -> int:
        """Tokens of one image of this size: its patches after the pixel-budget resize, merged merge_size^2 to 1.

        Used by `vlmtune.data.lengths` to sort samples by length without opening a single image.
        """
        image_processor = self.processor.image_processor
        patches = image_processor.get_number_of_image_patches(height, width, {})
        return patches // image_processor.merge_size**2
