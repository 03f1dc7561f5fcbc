"""Mistral 3 (`Mistral3ForConditionalGeneration` + `PixtralProcessor`), e.g.
https://huggingface.co/mistralai/Mistral-Small-3.1-24B-Instruct-2503.

The released prompt format (chat template of mistralai/Mistral-Small-3.1-24B-Instruct-2503, as embedded in
transformers' tests/models/mistral3/test_processing_mistral3.py, the -only-processor copy of that checkpoint):

    <s>[SYSTEM_PROMPT]{system}[/SYSTEM_PROMPT][INST]{user text, each image as [IMG]}[/INST]{reply}</s>[INST]...

- The template renders `<s>` itself (the Mistral tokenizer would add it too: the core then adds none).
- There is always a system block: without a system message the template writes its own default system prompt,
  which contains today's date (`strftime_now`). A sample without `system_prompt` is therefore trained with that
  default, exactly as the released template renders it for inference.
- User content parts are written in order without separators; an image is the bare `[IMG]`.
- An assistant turn is its text followed by `</s>` (the end-of-turn trained with the reply); there is no
  generation prompt: a prompt ends with `[/INST]`.
- The processor expands each `[IMG]` into rows of `[IMG]` separated by `[IMG_BREAK]`, the last one replaced by
  `[IMG_END]`: (height / (patch_size * spatial_merge_size)) rows of (width / ...) tokens, from each image's own
  resized size (no tiling, no fixed size).
Mistral-Small-3.2-24B-Instruct-2506 uses the same layout; its template (as copied in public code) has another
default system prompt.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Mistral3Config,
    Mistral3ForConditionalGeneration,
    MistralConfig,
    PixtralImageProcessor,
    PixtralProcessor,
    PixtralVisionConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# Jinja that sets the released template's default system prompt, word for word (it is part of the rendered text).
SET_DEFAULT_SYSTEM_MESSAGE = (
    "{%- set today = strftime_now('%Y-%m-%d') %}"
    '{%- set default_system_message = "You are Mistral Small 3, a Large Language Model (LLM) created by Mistral AI, '
    "a French startup headquartered in Paris.\\nYour knowledge base was last updated on 2023-10-01. The current "
    "date is \" + today + \".\\n\\nWhen you're not sure about some information, you say that you don't have the "
    "information and don't make up anything.\\nIf the user's question is not clear, ambiguous, or does not provide "
    "enough context for you to accurately answer the question, you do not try to answer it right away and you rather "
    'ask the user to clarify their request (e.g. \\"What are some good restaurants around me?\\" => \\"Where are '
    'you?\\" or \\"When is the next flight to Tokyo\\" => \\"Where do you travel from?\\")" %}'
)

# Our own Jinja for the released format above.
CHAT_TEMPLATE = SET_DEFAULT_SYSTEM_MESSAGE + (
    "{{ bos_token }}"
    "{% if messages[0]['role'] == 'system' %}"
    "{% set system_message = messages[0]['content'] %}"
    "{% if system_message is not string %}{% set system_message = system_message[0]['text'] %}{% endif %}"
    "{% set loop_messages = messages[1:] %}"
    "{% else %}{% set system_message = default_system_message %}{% set loop_messages = messages %}{% endif %}"
    "{{ '[SYSTEM_PROMPT]' + system_message + '[/SYSTEM_PROMPT]' }}"
    "{% for message in loop_messages %}"
    "{% if message['role'] == 'user' %}[INST]"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] in ('image', 'image_url') %}[IMG]"
    "{% else %}{{ raise_exception('Only text and image blocks are supported in message content!') }}{% endif %}"
    "{% endfor %}{% endif %}[/INST]"
    "{% elif message['role'] == 'assistant' %}"
    "{{ (message['content'] if message['content'] is string else message['content'][0]['text']) + eos_token }}"
    "{% else %}{{ raise_exception('Only user, system and assistant roles are supported!') }}{% endif %}"
    "{% endfor %}"
)

SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
IMAGE_TOKENS = {"image_token": "[IMG]"}
MARKERS = ["[IMG_BREAK]", "[IMG_END]", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]"]

# 32x32 images in patches of 8 (4x4 patches); Mistral 3 merges 2x2 patches into one token: 2x2 tokens per image.
TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8


def tiny_mistral_tokenizer(add_bos: bool = True):
    """The Tekken tokenizer's special tokens (`<s>`, `</s>`, the [INST]/[IMG]/... markers); `<s>` added in front
    when `add_bos` (Mistral Small 3.1's tokenizer does, pixtral-12b's does not)."""
    return train_tokenizer(
        SPECIAL_TOKENS, extra_special_tokens=IMAGE_TOKENS, additional_special_tokens=MARKERS, add_bos=add_bos
    )


def tiny_pixtral_vision_config() -> PixtralVisionConfig:
    return PixtralVisionConfig(**TINY_VISION_SIZES, image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE)


def tiny_pixtral_processor(tokenizer, spatial_merge_size: int, chat_template: str) -> PixtralProcessor:
    image_processor = PixtralImageProcessor(
        size={"longest_edge": TINY_IMAGE_SIZE},
        patch_size={"height": TINY_PATCH_SIZE, "width": TINY_PATCH_SIZE},
    )
    return PixtralProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=TINY_PATCH_SIZE,
        spatial_merge_size=spatial_merge_size,
        chat_template=chat_template,
    )


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_mistral_tokenizer()
    config = Mistral3Config(
        text_config=MistralConfig(**tiny_text_config(tokenizer, head_dim=32, sliding_window=None)),
        vision_config=tiny_pixtral_vision_config(),
        image_token_index=tokenizer.image_token_id,
        spatial_merge_size=2,
        vision_feature_layer=-1,
        multimodal_projector_bias=False,
    )
    torch.manual_seed(0)
    model = Mistral3ForConditionalGeneration(config)
    processor = tiny_pixtral_processor(tokenizer, spatial_merge_size=2, chat_template=CHAT_TEMPLATE)
    save_tiny(folder, model, processor)
