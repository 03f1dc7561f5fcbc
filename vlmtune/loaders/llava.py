"""LLaVA-1.5 (`LlavaForConditionalGeneration`), e.g. https://huggingface.co/llava-hf/llava-1.5-7b-hf.

Template revisions tested (tests/template_revisions.py, tests/test_templates.py; every masking shape each):
- the tiny template below (the released layout, no `{% generation %}` blocks);
- `hub-generation`: the hub file with `{% generation %}` around each reply + ' ', as quoted in huggingface/
  transformers tests/models/llava/test_processing_llava.py @043bb8d (also shipped by llava-v1.6-vicuna-*-hf).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# The prompt format of llava-hf/llava-1.5-*-hf: "USER: <image>\n{question} ASSISTANT: {answer} USER: ...".
# A system message is written as plain text before the first "USER:". The released template renders no
# end-of-turn marker (the model stops on the tokenizer's eos "</s>"), which is why this family's record has
# `reply_end=None`: the collator appends eos to every reply so that the model learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{ content['text'] + ' ' }}"
    "{% endfor %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8


def tiny_llama_tokenizer(video: bool = False):
    """LLaMA-style special tokens (`<s>` added in front, `</s>`, `<unk>`, `<pad>`), `<image>` (and `<video>`)."""
    media = {"image_token": "<image>", "video_token": "<video>"} if video else {"image_token": "<image>"}
    return train_tokenizer(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
        extra_special_tokens=media,
        add_bos=True,
    )


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_llama_tokenizer()
    config = LlavaConfig(
        text_config=LlamaConfig(**tiny_text_config(tokenizer)),
        vision_config=CLIPVisionConfig(
            **TINY_VISION_SIZES,
            image_size=TINY_IMAGE_SIZE,
            patch_size=TINY_PATCH_SIZE,
            projection_dim=64,
        ),
        image_token_id=tokenizer.image_token_id,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    image_processor = CLIPImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    )
    processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=TINY_PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, as in the released checkpoints
        chat_template=CHAT_TEMPLATE,
    )
    save_tiny(folder, model, processor)
