"""Llama 3.2 Vision (Mllama) collator: the shared core, plus what cross-attention over image tiles needs.

- The released template reads the system prompt as a plain string (`messages[0]['content'] | trim`); given the
  core's list of parts it would render the list's Python repr, so `system_prompt_as_string` passes the text itself.
- The original template refuses a system prompt next to an image (the checkpoint was never trained on both);
  the data check rejects such samples before training (`system_prompt_with_images`, per checkpoint: the current
  hub revision of Llama-3.2-11B-Vision-Instruct accepts them), and the core turns the template's own refusal
  into a BadSample naming the sample.
- The template writes a dated system block only into conversations without images, so the part of a
  conversation before its first image renders with a block that the whole conversation lacks; the core locates
  replies without relying on prefixes (`vlmtune.collators.replies`).
- The processor does not expand `<|image|>`; it returns per sample `pixel_values` [1, images, tiles, 3, H, W],
  `aspect_ratio_ids` [1, images], `aspect_ratio_mask` [1, images, tiles] and `cross_attention_mask`
  [1, tokens, images, tiles] (which text tokens see which image tile). Samples with different numbers of images,
  text-only samples included, are padded to the batch's most images and tiles in `__call__`, as the processor
  pads a batch within one call: zero pixels, aspect ratio id 0 (the model's padding id), the first tile marked
  in `aspect_ratio_mask` (as the processor does for its padding images), and a zero cross-attention mask, so a
  token that sees an image never sees a padding image. `cross_attention_mask` runs along the tokens too: it is
  cut with the tokens when a sample is truncated, and its padding tokens repeat its last row, as the processor
  pads a batch (they are outside the attention mask and the labels either way).
- The processor itself cannot batch a text-only sample with image samples (it fails, or returns aspect ratios
  for fewer samples than texts); here a text-only sample gets padding images only. Note that HF's Mllama lets a
  token that sees no image (text-only samples, text before a sample's first image) attend to all of its image
  slots in the cross-attention layers, masking only their MLP output: a text-only sample next to image samples
  is not computed exactly as alone (where the cross-attention layers are skipped), as in any batch the processor
  pads.
"""

from __future__ import annotations

import torch

from vlmtune.collators.base import VLMCollator

# The processor's image outputs, all with the sample's images on dim 1.
IMAGE_KEYS = ("pixel_values", "aspect_ratio_ids", "aspect_ratio_mask", "cross_attention_mask")


class MllamaCollator(VLMCollator):
    system_prompt_as_string = True

    def truncate(self, features: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
        features = super().truncate(features, source)
        if "cross_attention_mask" in features:
            features["cross_attention_mask"] = features["cross_attention_mask"][:, : len(features["input_ids"])]
        return features

    def __call__(self, features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        batch = super().__call__([{k: v for k, v in f.items() if k not in IMAGE_KEYS} for f in features])
        if any("pixel_values" in f for f in features):
            batch.update(pad_images(features, batch["input_ids"].shape[1]))
        return batch


def pad_images(features: list[dict[str, torch.Tensor]], length: int) -> dict[str, torch.Tensor]:
    """The image tensors of a batch, padded to its most images and tiles (and `length` tokens for the mask)."""
    with_images = [f for f in features if "pixel_values" in f]
    num_images = max(f["pixel_values"].shape[1] for f in with_images)
    num_tiles = max(f["pixel_values"].shape[2] for f in with_images)
    pixel_shape = with_images[0]["pixel_values"].shape[3:]
    shapes = {
        "pixel_values": (num_images, num_tiles, *pixel_shape),
        "aspect_ratio_ids": (num_images,),
        "aspect_ratio_mask": (num_images, num_tiles),
        "cross_attention_mask": (length, num_images, num_tiles),
    }
    batch = {}
    for key, shape in shapes.items():
        template = with_images[0][key]
        out = template.new_zeros((len(features), *shape))
        if key == "aspect_ratio_mask":
            out[:, :, 0] = 1  # as the processor marks its padding images
        for i, f in enumerate(features):
            if key in f:
                value = f[key][0]
                out[i][tuple(slice(0, n) for n in value.shape)] = value
                if key == "cross_attention_mask":  # padding tokens see what the last token sees, as in the processor
                    out[i, len(value) :, : value.shape[1], : value.shape[2]] = value[-1]
        batch[key] = out
    return batch
