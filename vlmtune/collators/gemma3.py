"""Gemma 3 collator: the shared core as it is.

Gemma 3's template renders `<bos>` itself (the core then adds no second one) and folds a system prompt into the
first user turn. Its processor expands `<start_of_image>` into `<start_of_image>`, the `<image_soft_token>`s and
`<end_of_image>`; the core's truncation guard knows all three through the tokenizer's `boi`/`eoi`/`image` ids.
`pixel_values` are [images, 3, H, W] per sample (no pan-and-scan crops), so several samples' images concatenate
on dim 0; `token_type_ids` (1 on soft tokens, for bidirectional attention within an image) is padded with 0.
"""

from vlmtune.collators.base import VLMCollator


class Gemma3Collator(VLMCollator):
    pass
