"""LLaVA-NeXT / LLaVA-1.6 (`LlavaNextForConditionalGeneration`), e.g. https://huggingface.co/llava-hf/llava-v1.6-mistral-7b-hf.

Images are processed "anyres": the image processor picks the best of `image_grid_pinpoints` for each image's
size, cuts the resized image into tiles of the vision tower's size plus one downscaled base tile, and returns
`pixel_values` of shape [images, tiles, 3, H, W] (tiles padded to the most in the call) and `image_sizes`
[images, 2]; the number of `<image>` tokens depends on each image's size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    CLIPVisionConfig,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessor,
    LlavaNextProcessor,
    MistralConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, load_model_and_processor, save_tiny, tiny_text_config
from vlmtune.loaders.llava import tiny_llama_tokenizer

# The prompt format of https://huggingface.co/llava-hf/llava-v1.6-mistral-7b-hf (its chat_template.json):
#   "<<SYS>>\n{system}\n<</SYS>>\n\n[INST] <image>\n{question} [/INST] {answer}</s> [INST] {question2} [/INST]"
# - the tokenizer adds "<s>" in front (the template renders no bos);
# - a user turn renders all its images first ("<image>\n" each), then all its text parts joined without a
#   separator, between "[INST] " and " [/INST]";
# - an assistant turn renders " {answer}</s> " ("</s>" is the end-of-turn trained with the reply, the trailing
#   space is not part of it);
# - there is no generation prompt: the prompt simply ends with " [/INST]".
# (Early revisions of that file rendered "<\s> " instead of "</s> "; the current one renders "</s> ".)
# Other LLaVA-NeXT checkpoints keep their own released formats: llava-v1.6-vicuna-*-hf is "USER: ... ASSISTANT:"
# with no end-of-turn (like LLaVA-1.5), llava-v1.6-34b-hf is ChatML with "<|im_end|>".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{{ '[INST] ' }}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] }}{% endfor %}"
    "{{ ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'][0]['text'] + '</s> ' }}"
    "{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}"
    "{% endif %}"
    "{% endfor %}"
)

# The released checkpoints: CLIP ViT-L/14 at 336 px, pinpoints [[336, 672], [672, 336], [672, 672], [1008, 336],
# [336, 1008]]. The tiny model keeps the same shape at 16 px with patches of 8: 2x2 tokens per tile, 4 to 24
# image tokens per image (base tile + up to 2x2 tiles + one newline token per row).
TINY_IMAGE_SIZE = 16
TINY_PATCH_SIZE = 8
TINY_PINPOINTS = [[16, 32], [32, 16], [32, 32], [48, 16], [16, 48]]


def load(path: str, **model_kwargs: Any):
    return load_model_and_processor(path, LlavaNextForConditionalGeneration, **model_kwargs)


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_llama_tokenizer()
    config = LlavaNextConfig(
        text_config=MistralConfig(**tiny_text_config(tokenizer, sliding_window=None)),
        vision_config=CLIPVisionConfig(
            **TINY_VISION_SIZES,
            image_size=TINY_IMAGE_SIZE,
            patch_size=TINY_PATCH_SIZE,
            projection_dim=64,
        ),
        image_token_index=tokenizer.image_token_id,
        image_grid_pinpoints=TINY_PINPOINTS,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_seq_length=(TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2,
    )
    torch.manual_seed(0)
    model = LlavaNextForConditionalGeneration(config)
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        image_grid_pinpoints=TINY_PINPOINTS,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=TINY_PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,  # CLIP's class token, as in the released checkpoints
        chat_template=CHAT_TEMPLATE,
    )
    save_tiny(folder, model, processor)
