"""Llama 3.2 Vision (Mllama, `MllamaForConditionalGeneration`), e.g.
https://huggingface.co/meta-llama/Llama-3.2-11B-Vision-Instruct and meta-llama/Llama-3.2-90B-Vision-Instruct.

The released prompt format (chat_template.json of the -Instruct checkpoints; public copies of it are found with
the search tool, e.g. the one embedded in NVIDIA NeMo's `MLlamaTemplateConfig`):

    <|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\n
    Cutting Knowledge Date: December 2023\\nToday Date: {date}\\n\\n{system}<|eot_id|>
    <|start_header_id|>user<|end_header_id|>\\n\\n{user text, each image as <|image|>}<|eot_id|>
    <|start_header_id|>assistant<|end_header_id|>\\n\\n{reply}<|eot_id|>...

(shown on several lines; the template writes no newline between turns).
- A conversation WITHOUT images always starts with that system block, even when no system prompt is given (then
  the block ends "...{date}\\n\\n<|eot_id|>"). `{date}` is `date_string` when the caller passes one, else today's
  date (`strftime_now("%d %b %Y")`, e.g. "23 Nov 2026"), so a text-only sample renders the day it is encoded.
- A conversation WITH images gets no system block, and a system prompt next to an image is an error of the
  template itself ("Prompting with images is incompatible with system messages."): the released checkpoint was
  never trained on both. The system text is read as `messages[0]['content'] | trim`, i.e. as a plain string.
- Images are single `<|image|>` tokens where they stand; the model reads the pixels through cross-attention
  layers (`cross_attention_mask` says which text tokens see which image), so the processor does not expand them.
- Replies end with `<|eot_id|>`; the generation config stops on <|end_of_text|>, <|eom_id|> and <|eot_id|>.
- The template's tool-calling branches (`tools`, `custom_tools`, `ipython` roles) are left out here: vlmtune's
  samples have no tools, and every other branch renders the same text as the released template.

Tiny model: the text model's embedding has `vocab_size + 8` rows (the real image token id 128256 is past the
vocabulary); its `padding_idx` is the config's `pad_token_id`, which must be the tiny tokenizer's (the real default
128004 is past a tiny vocabulary). Tiles of 32x32 pixels, at most 2 per image.

Template revisions tested (tests/template_revisions.py, tests/test_templates.py; every masking shape each):
- the original release: the tiny template below (refuses a system prompt next to images);
- `hub-2024-12`: meta-llama/Llama-3.2-11B-Vision-Instruct's chat_template.json as quoted by zjysteven/lmms-finetune
  collators/llama_3_2_vision.py @1157f46 (2024-12-07): a user-supplied system prompt is written (in the dated
  system block) also next to images, so `llama-3.2-11b-vision-instruct` is registered with
  `system_prompt_with_images=True`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    MllamaConfig,
    MllamaForConditionalGeneration,
    MllamaImageProcessor,
    MllamaProcessor,
    MllamaTextConfig,
    MllamaVisionConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# Our own Jinja for the released format above (without the tool branches).
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}"
    "{%- if strftime_now is defined %}{%- set date_string = strftime_now('%d %b %Y') %}"
    "{%- else %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{%- set image_ns = namespace(has_images=false) %}"
    "{%- for message in messages %}{%- for content in message['content'] %}"
    "{%- if content['type'] == 'image' %}{%- set image_ns.has_images = true %}{%- endif %}"
    "{%- endfor %}{%- endfor %}"
    "{%- if image_ns.has_images and not system_message == '' %}"
    "{{- raise_exception('Prompting with images is incompatible with system messages.') }}"
    "{%- endif %}"
    "{%- if not image_ns.has_images %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\n\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\n' }}"
    "{{- 'Today Date: ' + date_string + '\n\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for content in message['content'] %}"
    "{%- if content['type'] == 'image' %}{{- '<|image|>' }}"
    "{%- elif content['type'] == 'text' %}{{- content['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)

SPECIAL_TOKENS = {
    "bos_token": "<|begin_of_text|>",
    "eos_token": "<|eot_id|>",
    "pad_token": "<|finetune_right_pad_id|>",
}
# <|python_tag|> is looked up by the processor; <|end_of_text|> and <|eom_id|> end generation like <|eot_id|>.
MARKERS = ["<|start_header_id|>", "<|end_header_id|>", "<|end_of_text|>", "<|eom_id|>", "<|python_tag|>"]
STOP_TOKENS = ["<|end_of_text|>", "<|eom_id|>", "<|eot_id|>"]

TINY_TILE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_MAX_TILES = 2
# The aspect ratios (in tiles) that 2 tiles allow, in the order MllamaImageProcessor numbers them.
TINY_ASPECT_RATIOS = [[1, 1], [1, 2], [2, 1]]


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        SPECIAL_TOKENS,
        extra_special_tokens={"image_token": "<|image|>"},
        additional_special_tokens=MARKERS,
        add_bos=True,
    )
    # Two decoder layers: a self-attention layer, then a cross-attention layer that reads the image.
    text_config = MllamaTextConfig(**tiny_text_config(tokenizer, cross_attention_layers=[1]))
    vision_config = MllamaVisionConfig(
        **TINY_VISION_SIZES,
        num_global_layers=1,
        image_size=TINY_TILE_SIZE,
        patch_size=TINY_PATCH_SIZE,
        max_num_tiles=TINY_MAX_TILES,
        supported_aspect_ratios=TINY_ASPECT_RATIOS,
        intermediate_layers_indices=[0],
        # The vision output is the last hidden state plus one per intermediate layer, concatenated.
        vision_output_dim=TINY_VISION_SIZES["hidden_size"] * 2,
    )
    config = MllamaConfig(
        text_config=text_config, vision_config=vision_config, image_token_index=tokenizer.image_token_id
    )
    torch.manual_seed(0)
    model = MllamaForConditionalGeneration(config)
    # A fresh model's cross-attention layers are closed: their tanh gates start at 0, so images change nothing and
    # no gradient reaches the vision model. Open them, as they are in a trained checkpoint.
    with torch.no_grad():
        for layer in model.model.language_model.layers:
            if hasattr(layer, "cross_attn_attn_gate"):
                layer.cross_attn_attn_gate.fill_(1.0)
                layer.cross_attn_mlp_gate.fill_(1.0)
    image_processor = MllamaImageProcessor(
        size={"height": TINY_TILE_SIZE, "width": TINY_TILE_SIZE}, max_image_tiles=TINY_MAX_TILES
    )
    processor = MllamaProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    save_tiny(folder, model, processor, stop_tokens=STOP_TOKENS)
