"""LFM2-VL (`Lfm2VlForConditionalGeneration`), e.g. https://huggingface.co/LiquidAI/LFM2-VL-1.6B.

The released prompt format (chat_template.jinja of LiquidAI/LFM2-VL-450M and -1.6B; a public copy of the 450M
checkpoint's files is in the GitHub repository varun00391/local-finetuned-model; the ONNX export
onnx-community/LFM2-VL-3B-ONNX ships the same template):

    <|startoftext|><|im_start|>system
    {system}<|im_end|>
    <|im_start|>user
    {user text, each image as <image> where it stands}<|im_end|>
    <|im_start|>assistant
    {reply}<|im_end|>
    ...

- ChatML without a default system message; the template writes `<|startoftext|>` (the bos) itself, and the
  processor tokenizes without special tokens, so there is one bos.
- The processor expands each `<image>` into `<|image_start|>` + `<image>` * tokens + `<|image_end|>` (with
  `<|img_row_i_col_j|>` tile markers and a thumbnail for images too large for one tile).
- The tokenizer's eos is `<|im_end|>`, which ends every assistant turn.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Lfm2Config,
    Lfm2VlConfig,
    Lfm2VlForConditionalGeneration,
    Lfm2VlImageProcessor,
    Lfm2VlProcessor,
    Siglip2VisionConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# The released template, as published (it is short enough to keep verbatim).
CHAT_TEMPLATE = (
    "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n'}}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
)

SPECIAL_TOKENS = {"bos_token": "<|startoftext|>", "eos_token": "<|im_end|>", "pad_token": "<|pad|>"}
IMAGE_TOKENS = {
    "image_token": "<image>",
    "image_start_token": "<|image_start|>",
    "image_end_token": "<|image_end|>",
    "image_thumbnail": "<|img_thumbnail|>",
}
TILE_TOKENS = [f"<|img_row_{row}_col_{col}|>" for row in range(1, 4) for col in range(1, 4)]
# Patches of 8 pixels, pixel-unshuffled 2x2: a 32x32 image is 2x2 = 4 tokens (at least 4, at most 16 per tile).
TINY_PATCH_SIZE = 8
TINY_IMAGE_KWARGS = {
    "encoder_patch_size": TINY_PATCH_SIZE,
    "downsample_factor": 2,
    "min_image_tokens": 4,
    "max_image_tokens": 16,
    "tile_size": 64,
    "max_tiles": 9,
}


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        SPECIAL_TOKENS,
        extra_special_tokens=IMAGE_TOKENS,
        additional_special_tokens=["<|im_start|>", *TILE_TOKENS],
        add_bos=True,
    )
    image_processor = Lfm2VlImageProcessor(**TINY_IMAGE_KWARGS)
    # One hybrid block of each kind, as in the released LFM2 backbone (short convolutions and attention).
    text_config = Lfm2Config(
        **tiny_text_config(tokenizer, layer_types=["conv", "full_attention"]), block_auto_adjust_ff_dim=False
    )
    vision_config = Siglip2VisionConfig(
        **TINY_VISION_SIZES,
        patch_size=TINY_PATCH_SIZE,
        num_patches=image_processor.max_num_patches,
        vision_use_head=False,  # as in the released vision config
    )
    config = Lfm2VlConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=tokenizer.image_token_id,
        projector_hidden_size=128,
        downsample_factor=TINY_IMAGE_KWARGS["downsample_factor"],
    )
    torch.manual_seed(0)
    processor = Lfm2VlProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    save_tiny(folder, Lfm2VlForConditionalGeneration(config), processor)
