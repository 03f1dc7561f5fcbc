"""Ovis2 (`Ovis2ForConditionalGeneration`), the transformers-native conversions such as
https://huggingface.co/thisisiron/Ovis2-1B-hf (AIDC-AI/Ovis2-* themselves need remote code).

The released prompt format (the chat template of thisisiron/Ovis2-1B-hf, which transformers' Ovis2 processor
tests render and reproduce: tests/models/ovis2/test_processing_ovis2.py in huggingface/transformers):

    <|im_start|>system
    You are a helpful assistant.<|im_end|>
    <|im_start|>user
    <image>
    {user text}<|im_end|>
    <|im_start|>assistant
    {reply}<|im_end|>
    ...

- The default system message is always written first; a system message of the conversation becomes a second
  "<|im_start|>system" turn after it (the template has no special case for it).
- Each image is "<image>\\n" where it stands. "<image>" is plain text to the released Qwen2 tokenizer; the
  processor replaces it with "<IMG_START>" + "<IMG_ATOM>" * image_seq_length + "<IMG_GRID>" (+ one run of
  atoms per tile, separated by "<IMG_COL>" / "<IMG_ROW>", when the image is cropped into tiles) + "<IMG_END>".
  The model fills "<IMG_ATOM>" (config.image_token_id) with visual embeddings and the five indicators
  (config.visual_indicator_token_ids) with learned indicator embeddings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    Ovis2Config,
    Ovis2ForConditionalGeneration,
    Ovis2ImageProcessor,
    Ovis2Processor,
    Ovis2VisionConfig,
)

from vlmtune.loaders.base import (
    TINY_VISION_SIZES,
    load_model_and_processor,
    save_tiny,
    tiny_chatml_tokenizer,
    tiny_text_config,
)

# The released template, as published (short enough to keep verbatim).
CHAT_TEMPLATE = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% for message in messages %}"
    "{{'<|im_start|>' + message['role'] + '\n'}}{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{'<|im_end|>\n'}}{% endfor %}{% if add_generation_prompt %}{{'<|im_start|>assistant\n' }}{% endif %}"
)

IMAGE_ATOM = "<IMG_ATOM>"
# The visual indicators in the order of config.visual_indicator_token_ids (as the processor writes them).
VISUAL_INDICATORS = ["<IMG_START>", "<IMG_GRID>", "<IMG_COL>", "<IMG_ROW>", "<IMG_END>"]
# 32x32 pixels in patches of 8 = 4x4 patches, merged 2x2 by hidden_stride: 4 atoms per image tile.
TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_HIDDEN_STRIDE = 2
TINY_IMAGE_SEQ_LEN = (TINY_IMAGE_SIZE // TINY_PATCH_SIZE // TINY_HIDDEN_STRIDE) ** 2


def load(path: str, **model_kwargs: Any):
    return load_model_and_processor(path, Ovis2ForConditionalGeneration, **model_kwargs)


def build_tiny(folder: Path) -> None:
    # "<image>" stays plain text, as in the released tokenizer; the tokens the processor writes are special.
    tokenizer = tiny_chatml_tokenizer({"image_token": IMAGE_ATOM}, ["<|im_start|>", *VISUAL_INDICATORS])
    ids = tokenizer.convert_tokens_to_ids
    vision_config = Ovis2VisionConfig(
        **TINY_VISION_SIZES,
        image_size=TINY_IMAGE_SIZE,
        patch_size=TINY_PATCH_SIZE,
        hidden_stride=TINY_HIDDEN_STRIDE,
        vocab_size=64,  # the visual vocabulary: softmax over 64 visual words, 5 of them the indicators
    )
    config = Ovis2Config(
        text_config=tiny_text_config(tokenizer),
        vision_config=vision_config,
        image_token_id=ids(IMAGE_ATOM),
        visual_indicator_token_ids=[ids(token) for token in VISUAL_INDICATORS],
        vocab_size=len(tokenizer),
        hidden_size=128,
    )
    processor = Ovis2Processor(
        image_processor=Ovis2ImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        image_seq_length=TINY_IMAGE_SEQ_LEN,
    )
    torch.manual_seed(0)
    save_tiny(folder, Ovis2ForConditionalGeneration(config), processor)
