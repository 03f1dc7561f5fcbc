"""Pixtral (`LlavaForConditionalGeneration` with a Pixtral vision tower + `PixtralProcessor`), e.g.
https://huggingface.co/mistral-community/pixtral-12b (the transformers conversion of mistralai/Pixtral-12B-2409).

The released prompt format (the chat_template of mistral-community/pixtral-12b in the revision that reads text parts
from "text" or "content", found copied verbatim in public code; the transformers docs use both keys and show the
same "<s>[INST][IMG]\\n...[/INST]" layout):

    <s>[INST]{system}\\n\\n{user text, each image as [IMG]}[/INST]{reply}</s>[INST]{user}[/INST]{reply}</s>

- There is no system block: an optional system message is written before the text of the first user turn,
  followed by a blank line; without one nothing is added (no default system prompt, unlike Mistral 3).
- The template renders `<s>` itself; the released tokenizer adds no bos of its own.
- User content parts are written in order without separators; an image is the bare `[IMG]`.
- An assistant turn is its text followed by `</s>` (trained with the reply); a prompt ends with `[/INST]`.
- The processor expands `[IMG]` as for Mistral 3, with no patch merging (one token per 16x16 patch).
- The template reads a system message given as content parts from their "content" key (see the collator).
- An earlier revision wrote the system text into the last user turn (not re-found in a public copy, so not in
  tests/template_revisions.py); the core locates replies without relying on prefixes, so a checkpoint carrying
  it trains each reply + </s> with the system text where that revision writes it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import LlavaConfig, LlavaForConditionalGeneration, MistralConfig

from vlmtune.loaders.base import save_tiny, tiny_text_config
from vlmtune.loaders.mistral3 import tiny_mistral_tokenizer, tiny_pixtral_processor, tiny_pixtral_vision_config

# Our own Jinja for the released format above (its quirk kept: a list-form system message is read from "content").
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{% if messages[0]['content'] is string %}{% set system_message = messages[0]['content'] %}"
    "{% elif messages[0]['content'] | length == 1 and messages[0]['content'][0]['type'] == 'text' %}"
    "{% set system_message = messages[0]['content'][0]['content'] %}{% endif %}"
    "{% set loop_messages = messages[1:] %}"
    "{% else %}{% set loop_messages = messages %}{% endif %}"
    "{{ bos_token }}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('After the optional system message, conversation roles must alternate "
    "user/assistant/user/assistant/...') }}"
    "{% endif %}"
    "{% if message['role'] == 'user' %}"
    "{% if loop.first and system_message is defined %}{{ '[INST]' + system_message + '\n\n' }}"
    "{% else %}[INST]{% endif %}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['content'] if 'content' in part else part['text'] }}"
    "{% elif part['type'] == 'image' %}[IMG]"
    "{% else %}{{ raise_exception('Unrecognized content type!') }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'user' %}[/INST]"
    "{% elif message['role'] == 'assistant' %}{{ eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported, with the exception of an initial "
    "optional system message!') }}{% endif %}"
    "{% endfor %}"
)


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_mistral_tokenizer(add_bos=False)
    config = LlavaConfig(
        text_config=MistralConfig(**tiny_text_config(tokenizer, head_dim=32, sliding_window=None)),
        vision_config=tiny_pixtral_vision_config(),
        image_token_index=tokenizer.image_token_id,
        vision_feature_layer=-1,  # as in the released config: the last layer, every patch
        vision_feature_select_strategy="full",
        projector_hidden_act="gelu",
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    processor = tiny_pixtral_processor(tokenizer, spatial_merge_size=1, chat_template=CHAT_TEMPLATE)
    save_tiny(folder, model, processor)
