"""InternVL collator: the shared core as it is.

The processor puts image tiles and video frames, in their order in the text, into one `pixel_values` tensor of
[tiles + frames, 3, H, W] per sample, and the model fills the `<IMG_CONTEXT>` tokens of the batch in order, so
several samples' `pixel_values` concatenate along dim 0 (the core's default). The ChatML template renders no bos
and closes every turn with `<|im_end|>`, which is trained with each reply.
"""

from vlmtune.collators.base import VLMCollator


class InternVLCollator(VLMCollator):
    pass
