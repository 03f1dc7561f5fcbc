"""Qwen2-VL and Qwen2.5-VL, e.g. https://huggingface.co/Qwen/Qwen2-VL-2B-Instruct and Qwen/Qwen2.5-VL-3B-Instruct.

Both families share the processor and the chat template; they differ in model classes only.

Template revisions tested (tests/template_revisions.py, tests/test_templates.py; every masking shape each):
- the tiny template below (the released layout);
- `hub-vision-id`: the hub file with `add_vision_id` and media recognised by key, as listed in
  openvinotoolkit/openvino.genai src/cpp/src/tokenizer/chat_template_fallback_map.hpp ('Qwen2-VL-2B-Instruct
  (tokenizer_config.json)'); it renders the same text for vlmtune's conversations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    PreTrainedModel,
    ProcessorMixin,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLProcessor,
    Qwen2VLVideoProcessor,
)

from vlmtune.loaders.base import save_tiny, tiny_chatml_tokenizer, tiny_text_config

# The prompt format of the released Qwen2-VL / Qwen2.5-VL instruct checkpoints (ChatML): a default system
# message when none is given, each turn "<|im_start|>{role}\n{content}<|im_end|>\n", images as
# "<|vision_start|><|image_pad|><|vision_end|>" where they stand in the turn, videos likewise with <|video_pad|>.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}"
    "{% endfor %}<|im_end|>\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

MARKERS = ["<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]
# 56x56 pixels is 4x4 patches of 14, merged 2x2: 4 tokens per small image; larger images are capped at 64 tokens.
TINY_MIN_PIXELS = 56 * 56
TINY_MAX_PIXELS = 28 * 28 * 64


def tiny_qwen_tokenizer(markers: list[str] = MARKERS):
    """The tiny tokenizer of every Qwen VL family: ChatML markers as single tokens, eos <|im_end|>."""
    return tiny_chatml_tokenizer({"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}, markers)


def _tiny_processor() -> Qwen2VLProcessor:
    pixels = {"min_pixels": TINY_MIN_PIXELS, "max_pixels": TINY_MAX_PIXELS}
    return Qwen2VLProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        tokenizer=tiny_qwen_tokenizer(),
        chat_template=CHAT_TEMPLATE,
    )


def qwen_vision_token_ids(tokenizer) -> dict[str, int]:
    """The config's ids of the image/video placeholders and vision brackets, from the tiny tokenizer."""
    ids = tokenizer.convert_tokens_to_ids
    return {
        "image_token_id": ids("<|image_pad|>"),
        "video_token_id": ids("<|video_pad|>"),
        "vision_start_token_id": ids("<|vision_start|>"),
        "vision_end_token_id": ids("<|vision_end|>"),
    }


def build_qwen_vl(
    folder: Path,
    config_class: type,
    model_class: type[PreTrainedModel],
    processor: ProcessorMixin,
    text_config: dict[str, Any],
    vision_config: dict[str, Any],
) -> None:
    """Write a tiny checkpoint of a Qwen VL family: the text sizes of `tiny_text_config` plus `text_config`."""
    tokenizer = processor.tokenizer
    config = config_class(
        text_config=tiny_text_config(tokenizer, **text_config),
        vision_config=vision_config,
        **qwen_vision_token_ids(tokenizer),
    )
    torch.manual_seed(0)
    save_tiny(folder, model_class(config), processor)


def _build(folder: Path, config_class, model_class: type[PreTrainedModel], vision_config: dict[str, Any]) -> None:
    # head_dim 32 -> 16 rotary frequencies, split over (time, height, width) like the released [16, 24, 24].
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}
    build_qwen_vl(folder, config_class, model_class, _tiny_processor(), {"rope_parameters": rope}, vision_config)


def build_tiny(folder: Path) -> None:
    vision = {"depth": 2, "embed_dim": 64, "hidden_size": 128, "num_heads": 2, "mlp_ratio": 2}
    _build(folder, Qwen2VLConfig, Qwen2VLForConditionalGeneration, vision)


def build_tiny_2_5(folder: Path) -> None:
    vision = {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "out_hidden_size": 128,
        "num_heads": 2,
        "fullatt_block_indexes": [1],
        "window_size": 56,
    }
    _build(folder, Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration, vision)
