"""LLaVA-1.5 collator: the shared core as it is.

Differs from the core only through its family record: its template renders no end-of-turn, so the core appends
the tokenizer's eos to each reply (`reply_end=None`). `pixel_values` of several samples are stacked per image.
"""

from vlmtune.collators.base import VLMCollator


class LlavaCollator(VLMCollator):
    pass
