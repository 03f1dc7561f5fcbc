"""Aria (`AriaForConditionalGeneration` + `AriaProcessor`): https://huggingface.co/rhymes-ai/Aria, a MoE language
model (`model.language_model`, experts plus shared experts) with an Idefics3-style vision tower and a cross-attention
projector that turns each image's patches into a fixed number of queries (`model.multi_modal_projector`).

The released prompt format (the chat template that transformers' `convert_aria_weights_to_hf.py` writes into the
converted rhymes-ai/Aria checkpoint; huggingface/transformers src/transformers/models/aria/, read with the search
tool), ChatML with the image wrapped in fill-in-the-middle markers:

    <|im_start|>system\\n{system}<|im_end|>\\n                    (only when given; no default system message)
    <|im_start|>user\\n<fim_prefix><|img|><fim_suffix>{text}<|im_end|>\\n
    <|im_start|>assistant\\n{reply}<|im_end|>\\n

- Content parts are written in order, as they are (no trimming, no separators); the generation prompt is
  "<|im_start|>assistant\\n", so a reply is trained as "{reply}<|im_end|>".
- The processor expands each "<|img|>" into `size_conversion[max_image_size]` tokens per crop (128 at 490 pixels,
  256 at 980; images are resized to `max_image_size`, which `AriaProcessor` sets to 980 for every call).
- The tiny model keeps the processor's 980-pixel images and covers them with 7x7 patches of 140 pixels, each image
  becoming 4 queries, so that it runs the released processor unchanged.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AriaConfig,
    AriaForConditionalGeneration,
    AriaImageProcessor,
    AriaProcessor,
    Idefics3VisionConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# The converted checkpoint's template, word for word.
CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% elif message['content'] is iterable %}{% for item in message['content'] %}"
    "{% if item['type'] == 'text' %}{{ item['text'] }}"
    "{% elif item['type'] == 'image' %}<fim_prefix><|img|><fim_suffix>{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = {
    "bos_token": "<|startoftext|>",
    "eos_token": "<|im_end|>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
}
MARKERS = ["<|im_start|>", "<fim_prefix>", "<fim_suffix>"]
TINY_IMAGE_SIZE = 980  # AriaProcessor resizes every image to max_image_size=980
TINY_PATCH_SIZE = 140  # 7x7 patches
TINY_QUERIES = 4
TINY_MOE = {"moe_num_experts": 4, "moe_topk": 2, "moe_num_shared_experts": 1, "moe_intermediate_size": 64}


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        SPECIAL_TOKENS, extra_special_tokens={"image_token": "<|img|>"}, additional_special_tokens=MARKERS
    )
    processor = AriaProcessor(
        image_processor=AriaImageProcessor(),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        size_conversion={490: TINY_QUERIES, 980: TINY_QUERIES},
    )
    patches = (TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2
    config = AriaConfig(
        text_config=tiny_text_config(tokenizer, **TINY_MOE),
        vision_config=Idefics3VisionConfig(
            **TINY_VISION_SIZES, image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE
        ),
        projector_patch_to_query_dict={patches: TINY_QUERIES},
        image_token_index=tokenizer.image_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    save_tiny(folder, AriaForConditionalGeneration(config), processor)
