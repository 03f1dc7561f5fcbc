"""PaliGemma collator: the shared core, with the text laid out by the template and the prefix/suffix split.

- The PaliGemma processor builds the released layout itself from a bare prompt (it inserts <bos> after the
  last <image> and appends "\\n"), so the rendered text, which already has that layout, would get a second <bos>
  and newline. `run_processor` therefore only does the rest of what the processor does: each <image> becomes
  `image_seq_length` image tokens, the images go through the image processor (no image is fine: text only).
- `token_type_ids` are PaliGemma's prefix/suffix split: 0 on the images and the prompt, which attend to each other
  bidirectionally, 1 on the suffix. The suffix is the answer and its <eos>, which are exactly the trained tokens
  (a PaliGemma sample has one reply), so `encode` sets them from the labels. Prompts for generation are all
  prefix (0), as the processor returns them.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import BatchFeature

from vlmtune.collators.base import IGNORE_INDEX, VLMCollator
from vlmtune.datasets import Sample


class PaliGemmaCollator(VLMCollator):
    reply_token_type_id = 1

    def run_processor(self, text: list[str], images: list | None = None, **kwargs: Any) -> BatchFeature:
        return_tensors = kwargs.pop("return_tensors", None)
        image_token = self.processor.image_token
        expanded = [t.replace(image_token, image_token * self.processor.image_seq_length) for t in text]
        features = dict(self.tokenizer(expanded, return_token_type_ids=True, return_tensors=return_tensors, **kwargs))
        # Training passes one sample's images, generation a list of images per prompt.
        flat = [image for group in images or [] for image in (group if isinstance(group, list) else [group])]
        if flat:
            features.update(self.processor.image_processor(flat, return_tensors=return_tensors))
        return BatchFeature(features, tensor_type=return_tensors)

    def encode(self, sample: Sample, images: list, videos: list) -> dict[str, torch.Tensor]:
        features = super().encode(sample, images, videos)
        features["token_type_ids"] = (features["labels"] != IGNORE_INDEX).long()
        return features
