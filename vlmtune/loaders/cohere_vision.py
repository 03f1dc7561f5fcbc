"""Aya Vision (`AyaVisionForConditionalGeneration`, model type aya_vision: https://huggingface.co/CohereLabs/aya-vision-8b)
and Command A Vision (`Cohere2VisionForConditionalGeneration`, cohere2_vision:
https://huggingface.co/CohereLabs/command-a-vision-07-2025): a SigLIP tower, a pixel-shuffle projector, a Cohere 2
language model, images cut into tiles.

Templates: no copy of either checkpoint's released chat template was found (searched 2026-12-07: public code,
issues and pages; transformers' processor tests load them from the hub). Both families are registered by convention
(`conventional_family`): a real checkpoint's own template is read at load, and its end-of-turn, replies and
capabilities are derived and checked there (`vlmtune check`), so what trains is that template.

The tiny models carry a stand-in, labelled as such: the Command-R chat format (CohereForAI/c4ai-command-r's
template as copied in llama.cpp's tests/test-chat-template.cpp, found with the search tool), the nearest released
Cohere format whose text was found, with image parts written as the processor's image placeholder:

    <BOS_TOKEN><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{system}<|END_OF_TURN_TOKEN|>             (only when given)
    <|START_OF_TURN_TOKEN|><|USER_TOKEN|>{user, trimmed}<|END_OF_TURN_TOKEN|>
    <|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{reply, trimmed}<|END_OF_TURN_TOKEN|>

The eos (and so the stop token) is "<|END_OF_TURN_TOKEN|>", which closes each reply.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    AyaVisionConfig,
    AyaVisionForConditionalGeneration,
    AyaVisionProcessor,
    Cohere2Config,
    Cohere2VisionConfig,
    Cohere2VisionForConditionalGeneration,
    Cohere2VisionImageProcessor,
    Cohere2VisionProcessor,
    GotOcr2ImageProcessor,
)

from vlmtune.loaders.base import save_tiny, tiny_siglip_config, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# Stand-in template (see above): Command-R's turns, user parts laid out in order, `image` as IMAGE.
STAND_IN_TEMPLATE = (
    "{{ bos_token }}"
    "{% macro render(content) %}"
    "{% if content is string %}{{ content }}"
    "{% else %}{% for part in content %}"
    "{% if part['type'] == 'image' %}IMAGE{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% endmacro %}"
    "{% for message in messages %}"
    "{% set content = render(message['content']) | trim %}"
    "{% if message['role'] == 'system' %}<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{{ content }}<|END_OF_TURN_TOKEN|>"
    "{% elif message['role'] == 'user' %}<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{{ content }}<|END_OF_TURN_TOKEN|>"
    "{% elif message['role'] == 'assistant' %}"
    "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{{ content }}<|END_OF_TURN_TOKEN|>"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>{% endif %}"
)
MARKERS = [
    "<|START_OF_TURN_TOKEN|>",
    "<|END_OF_TURN_TOKEN|>",
    "<|SYSTEM_TOKEN|>",
    "<|USER_TOKEN|>",
    "<|CHATBOT_TOKEN|>",
    "<|START_OF_IMG|>",
    "<|END_OF_IMG|>",
    "<|IMG_PATCH|>",
    "<|IMG_LINE_BREAK|>",
]
SPECIAL = {"bos_token": "<BOS_TOKEN>", "eos_token": "<|END_OF_TURN_TOKEN|>", "pad_token": "<PAD>"}
# 56x56-pixel tiles of 14-pixel patches (4x4), pixel-shuffled 2x2: 4 image tokens per tile, at most 2 tiles plus
# the thumbnail of a tiled image.
TINY_TILE = 56
TINY_PATCH = 14
TINY_MAX_TILES = 2
# Cohere 2's sliding-window layers and its global one, as released (3 sliding, then 1 global), on 2 layers.
TINY_COHERE2 = {"layer_types": ["sliding_attention", "full_attention"], "sliding_window": 64, "head_dim": 32}


def tiny_config(config_class: type, tokenizer, image_token: str, **extra) -> object:
    return config_class(
        vision_config=tiny_siglip_config(TINY_TILE, TINY_PATCH),
        text_config=Cohere2Config(**tiny_text_config(tokenizer, **TINY_COHERE2)),
        downsample_factor=2,
        alignment_intermediate_size=128,
        image_token_id=tokenizer.convert_tokens_to_ids(image_token),
        **extra,
    )


def build_tiny_aya(folder: Path) -> None:
    template = STAND_IN_TEMPLATE.replace("IMAGE", "<image>")
    # The tile labels are single tokens, as AyaVisionProcessor counts them (one each; TILE_GLOBAL is among its
    # image token ids).
    tiles = ["TILE_GLOBAL", *(f"TILE_{index}" for index in range(1, TINY_MAX_TILES + 1))]
    tokenizer = train_tokenizer(SPECIAL, additional_special_tokens=[*MARKERS, "<image>", *tiles], add_bos=True)
    processor = AyaVisionProcessor(
        image_processor=GotOcr2ImageProcessor(
            size={"height": TINY_TILE, "width": TINY_TILE}, crop_to_patches=True, max_patches=TINY_MAX_TILES
        ),
        tokenizer=tokenizer,
        patch_size=TINY_PATCH,
        img_size=TINY_TILE,
        downsample_factor=2,
        chat_template=template,
    )
    # The template writes "<image>"; the processor expands it to tiles of "<|IMG_PATCH|>", which the model fills.
    config = tiny_config(AyaVisionConfig, tokenizer, "<|IMG_PATCH|>", vision_feature_select_strategy="full")
    torch.manual_seed(0)
    save_tiny(folder, AyaVisionForConditionalGeneration(config), processor)


def build_tiny_cohere2(folder: Path) -> None:
    template = STAND_IN_TEMPLATE.replace("IMAGE", "<|IMG_PATCH|>")
    media = {
        "image_token": "<|IMG_PATCH|>",
        "boi_token": "<|START_OF_IMG|>",
        "eoi_token": "<|END_OF_IMG|>",
        "img_line_break_token": "<|IMG_LINE_BREAK|>",
    }
    tokenizer = train_tokenizer(SPECIAL, extra_special_tokens=media, additional_special_tokens=MARKERS, add_bos=True)
    processor = Cohere2VisionProcessor(
        image_processor=Cohere2VisionImageProcessor(
            # patch_size here counts image tokens per tile side (4x4 patches, pixel-shuffled 2x2: 2)
            size={"height": TINY_TILE, "width": TINY_TILE},
            patch_size=TINY_TILE // TINY_PATCH // 2,
            max_patches=TINY_MAX_TILES,
        ),
        tokenizer=tokenizer,
        chat_template=template,
    )
    config = tiny_config(Cohere2VisionConfig, tokenizer, media["image_token"])
    torch.manual_seed(0)
    save_tiny(folder, Cohere2VisionForConditionalGeneration(config), processor)
