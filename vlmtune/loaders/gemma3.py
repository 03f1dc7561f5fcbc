"""Gemma 3 (`Gemma3ForConditionalGeneration`), e.g. https://huggingface.co/google/gemma-3-4b-it.

The released prompt format (chat template of google/gemma-3-4b-it, -12b-it, -27b-it):

    <bos><start_of_turn>user
    {system}\\n\\n{user text, each image as <start_of_image>}<end_of_turn>
    <start_of_turn>model
    {reply}<end_of_turn>
    <start_of_turn>user
    ...

- There is no system role: a system message becomes a prefix "{system}\\n\\n" of the first user turn.
- The assistant role is written "model"; roles must alternate user/model.
- Every text part is trimmed; an image part is the bare marker "<start_of_image>", which the processor expands to
  "\\n\\n<start_of_image>" + "<image_soft_token>" * mm_tokens_per_image + "<end_of_image>\\n\\n".
- The processor also returns `token_type_ids` (1 on the soft image tokens), which the model uses to let each image
  attend to itself bidirectionally during training.
- The template renders `bos_token` itself, and the released tokenizer also adds <bos> when it tokenizes; the
  Gemma3 collator tokenizes the rendered text without adding special tokens (no double <bos>).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Gemma3Config,
    Gemma3ForConditionalGeneration,
    Gemma3ImageProcessor,
    Gemma3Processor,
    Gemma3TextConfig,
)

from vlmtune.loaders.base import (
    save_tiny,
    tiny_siglip_config,
    tiny_text_config,
)
from vlmtune.loaders.tiny import GEMMA_NEWLINE_RUNS, train_tokenizer

# Our own Jinja for the released format above (the system text is folded into the first user turn).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% set prefix = '' %}{% set turns = messages %}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "{% set system = messages[0]['content'] %}"
    "{% if system is not string %}{% set system = system[0]['text'] %}{% endif %}"
    "{% set prefix = system + '\n\n' %}{% set turns = messages[1:] %}"
    "{% endif %}"
    "{% for message in turns %}"
    "{% if (message['role'] == 'user') != (loop.index0 is even) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "<start_of_turn>{{ 'model' if message['role'] == 'assistant' else message['role'] }}\n"
    "{% if loop.first %}{{ prefix }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] | trim }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<start_of_image>"
    "{% elif part['type'] == 'text' %}{{ part['text'] | trim }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<end_of_turn>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}"
)

SPECIAL_TOKENS = {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"}
IMAGE_TOKENS = {"boi_token": "<start_of_image>", "eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
MARKERS = ["<start_of_turn>", "<end_of_turn>"]

# 32x32 pixels in patches of 8 = 4x4 patches, average-pooled to 2x2: 4 soft tokens per image.
TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_TOKENS_PER_IMAGE = 4


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        SPECIAL_TOKENS,
        extra_special_tokens=IMAGE_TOKENS,
        additional_special_tokens=MARKERS,
        add_bos=True,
        newline_runs=GEMMA_NEWLINE_RUNS,
    )
    ids = tokenizer.convert_tokens_to_ids
    text_config = Gemma3TextConfig(
        **tiny_text_config(
            tokenizer,
            head_dim=32,
            query_pre_attn_scalar=32,
            sliding_window=64,
            layer_types=["sliding_attention", "full_attention"],
        )
    )
    vision_config = tiny_siglip_config(TINY_IMAGE_SIZE, TINY_PATCH_SIZE)
    config = Gemma3Config(
        text_config=text_config,
        vision_config=vision_config,
        mm_tokens_per_image=TINY_TOKENS_PER_IMAGE,
        boi_token_index=ids(IMAGE_TOKENS["boi_token"]),
        eoi_token_index=ids(IMAGE_TOKENS["eoi_token"]),
        image_token_index=ids(IMAGE_TOKENS["image_token"]),
    )
    torch.manual_seed(0)
    model = Gemma3ForConditionalGeneration(config)
    processor = Gemma3Processor(
        image_processor=Gemma3ImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}),
        tokenizer=tokenizer,
        image_seq_length=TINY_TOKENS_PER_IMAGE,
        chat_template=CHAT_TEMPLATE,
    )
    # The released generation config stops on <eos> and on <end_of_turn>.
    save_tiny(folder, model, processor, stop_tokens=[tokenizer.eos_token, "<end_of_turn>"])
