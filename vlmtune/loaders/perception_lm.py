"""PerceptionLM (`PerceptionLMForConditionalGeneration`), e.g. https://huggingface.co/facebook/Perception-LM-1B.

The released prompt format: the chat template that transformers' `convert_perception_lm_weights_to_hf.py` writes
into the facebook/Perception-LM-* checkpoints (`CHAT_TEMPLATE` there; transformers' processor tests use the same
string), re-written below to render the same text:

    <|begin_of_text|><|start_header_id|>system<|end_header_id|>\\n\\n{system}<|eot_id|>
    <|start_header_id|>user<|end_header_id|>\\n\\n{<|image|> per image}{<|video|> per video}{texts}<|eot_id|>
    <|start_header_id|>assistant<|end_header_id|>\\n\\n{reply}<|eot_id|>...

(shown on several lines; the template writes no newline between turns).
- A system block is always written: the given system message (a plain string, trimmed) or a default one.
- Within a turn, every image is written first, then every video, then the text parts, each trimmed and joined
  with nothing in between; where a placeholder stood in the text is not kept.
- Replies end with `<|eot_id|>`, the tokenizer's eos; the generation config also stops on `<|end_of_text|>`.
- The processor expands `<|image|>` into one token per pooled patch of every tile (a thumbnail plus up to
  `max_num_tiles` tiles of `tile_size` pixels); the model puts the image features there.

The vision tower is timm's Perception Encoder (`TimmWrapper`), so this family needs the `timm` package.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    LlamaConfig,
    PerceptionLMConfig,
    PerceptionLMForConditionalGeneration,
    PerceptionLMImageProcessor,
    PerceptionLMProcessor,
    PerceptionLMVideoProcessor,
    TimmWrapperConfig,
)

from vlmtune.loaders.base import load_model_and_processor, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

DEFAULT_SYSTEM = (
    "You are a helpful language and vision assistant. You are able to understand the visual content that the user "
    "provides, and assist the user with a variety of tasks using natural language."
)
CHAT_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}"
    "{%- set messages = messages[1:] %}"
    "{%- else %}"
    "{%- set system_message = '" + DEFAULT_SYSTEM + "' %}"
    "{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' + system_message + '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' }}"
    "{%- for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{- '<|image|>' }}{%- endfor %}"
    "{%- for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{- '<|video|>' }}{%- endfor %}"
    "{%- for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{{- content['text'] | trim }}"
    "{%- endfor %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

SPECIAL_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<|end_of_text|>"}
MEDIA_TOKENS = {"image_token": "<|image|>", "video_token": "<|video|>"}
MARKERS = ["<|start_header_id|>", "<|end_header_id|>"]
STOP_TOKENS = ["<|end_of_text|>", "<|eot_id|>"]

# Tiles of 32x32 pixels in patches of 8 (4x4 patches, plus the class token the model drops), pooled 2x2 after the
# projector: 4 image tokens per tile; a thumbnail and up to 4 tiles per image. The converted checkpoints use timm's
# PE-Core L/14 or G/14 towers at full size (transformers' converter picks one by depth and width).
TINY_TILE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_MAX_TILES = 4
TINY_POOLING_RATIO = 2
TINY_VISION_ARGS = {
    "embed_dim": 64,
    "depth": 2,
    "num_heads": 2,
    "patch_size": TINY_PATCH_SIZE,
    "img_size": (TINY_TILE_SIZE, TINY_TILE_SIZE),
    "ref_feat_shape": (TINY_TILE_SIZE // TINY_PATCH_SIZE, TINY_TILE_SIZE // TINY_PATCH_SIZE),
    "global_pool": "",  # as converted: the tower returns every patch, the attention pool is dropped
}


def require_timm() -> None:
    try:
        import timm  # noqa: F401  (optional: only PerceptionLM's and Gemma 3n's vision towers need it)
    except ImportError as error:
        raise RuntimeError("PerceptionLM's vision tower is a timm model: pip install timm") from error


def load(path: str, **model_kwargs: Any):
    require_timm()
    return load_model_and_processor(path, PerceptionLMForConditionalGeneration, **model_kwargs)


def build_tiny(folder: Path) -> None:
    require_timm()
    tokenizer = train_tokenizer(
        SPECIAL_TOKENS, extra_special_tokens=MEDIA_TOKENS, additional_special_tokens=MARKERS, add_bos=True
    )
    ids = tokenizer.convert_tokens_to_ids
    vision_config = TimmWrapperConfig(architecture="vit_pe_core_large_patch14_336", model_args=TINY_VISION_ARGS)
    config = PerceptionLMConfig(
        text_config=LlamaConfig(**tiny_text_config(tokenizer)),
        vision_config=vision_config,
        vision_use_cls_token=True,
        projector_pooling_ratio=TINY_POOLING_RATIO,
        image_token_id=ids(MEDIA_TOKENS["image_token"]),
        video_token_id=ids(MEDIA_TOKENS["video_token"]),
    )
    torch.manual_seed(0)
    model = PerceptionLMForConditionalGeneration(config)
    size = {"height": TINY_TILE_SIZE, "width": TINY_TILE_SIZE}
    image_processor = PerceptionLMImageProcessor(
        vision_input_type="thumb+tile",
        tile_size=TINY_TILE_SIZE,
        max_num_tiles=TINY_MAX_TILES,
        size=size,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    processor = PerceptionLMProcessor(
        image_processor=image_processor,
        video_processor=PerceptionLMVideoProcessor(size=size),
        tokenizer=tokenizer,
        patch_size=TINY_PATCH_SIZE,
        pooling_ratio=TINY_POOLING_RATIO,
        chat_template=CHAT_TEMPLATE,
    )
    save_tiny(folder, model, processor, stop_tokens=STOP_TOKENS)
