"""Gemma 3 collator: the shared core, with the whole expanded image counted as media.

(Gemma 3's template renders `<bos>` itself; the core then tokenizes without adding another, as it does for
every template that writes its own bos.)

The truncation guard must know the soft image tokens: Gemma3Processor.image_token_id is the id of
`<start_of_image>` (the placeholder in the text), not of `<image_soft_token>` (what the expansion writes), so the
core alone would let a cut inside an image's soft tokens through ("Image features and image tokens do not
match"). The media ids here are the whole expanded image: `<start_of_image>`, the soft tokens, `<end_of_image>`.

Nothing else differs: `pixel_values` are [images, 3, H, W] per sample (no pan-and-scan crops), so several
samples' images concatenate along dim 0 (the core's default); `token_type_ids` (1 on image soft tokens, used
for bidirectional attention within each image) is a sequence key that the core pads with 0.
"""

from __future__ import annotations

from typing import Any

from vlmtune.collators.base import VLMCollator


class Gemma3Collator(VLMCollator):
    def __init__(self, processor: Any, *args: Any, **kwargs: Any):
        super().__init__(processor, *args, **kwargs)
        tokenizer = processor.tokenizer
        self.media_token_ids |= {tokenizer.image_token_id, tokenizer.boi_token_id, tokenizer.eoi_token_id}
