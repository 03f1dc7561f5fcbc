"""MiniCPM-V 4.6 and 4.7 (`MiniCPMV4_6ForConditionalGeneration` / `MiniCPMV4_7ForConditionalGeneration`), the
transformers types of https://huggingface.co/openbmb/MiniCPM-V-4.6 and https://huggingface.co/openbmb/MiniCPM-V-4.7.

`model.vision_tower` (a SigLIP-style tower with a window-attention merger after one of its layers),
`model.merger` and `model.language_model`. Each image placeholder becomes `<image_id>N</image_id>` plus the global
view `<image>` + placeholder tokens + `</image>`, then `<slice>...</slice>` rows for large images; the placeholder
strings are the tokenizer's own (`image_token`, `image_start_token`, ...), so a checkpoint's tokenizer names them.
All views of a call are packed into one row of patches (`vlmtune.collators.minicpmv.MiniCPMVCollator`).

No copy of either checkpoint's own chat template was found (searched 2026-12-07; the 4.7 35B-A3B upload has no
model card). The tiny models carry a clearly labelled stand-in: Qwen3-VL's ChatML layout (the outside copy in
vlmtune/loaders/qwen3_vl.py) with each image written as the tokenizer's image placeholder. A real checkpoint trains
with its own template: the family record derives the end-of-turn, parts and capabilities from the checkpoint's files
and checks them before any weight is read (`vlmtune check minicpm-v-4.6`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    MiniCPMV4_6Config,
    MiniCPMV4_6ForConditionalGeneration,
    MiniCPMV4_6ImageProcessor,
    MiniCPMV4_6Processor,
    MiniCPMV4_6VideoProcessor,
    MiniCPMV4_7Config,
    MiniCPMV4_7ForConditionalGeneration,
    MiniCPMV4_7Processor,
)

from vlmtune.loaders.base import CHATML_MARKERS, save_tiny, tiny_chatml_tokenizer, tiny_text_config
from vlmtune.loaders.qwen3_5 import TINY_TEXT as QWEN3_5_TEXT
from vlmtune.loaders.qwen3_vl import CHAT_TEMPLATE

MEDIA_TOKENS = {
    "image_token": "<|image_pad|>",
    "video_token": "<|video_pad|>",
    "image_start_token": "<image>",
    "image_end_token": "</image>",
    "slice_start_token": "<slice>",
    "slice_end_token": "</slice>",
    "image_id_start_token": "<image_id>",
    "image_id_end_token": "</image_id>",
}
# Stand-in template (see above): Qwen3-VL's, an image or video written as the tokenizer's placeholder alone.
STAND_IN_TEMPLATE = CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<|image_pad|>").replace(
    "<|vision_start|><|video_pad|><|vision_end|>", "<|video_pad|>"
)

# 56-pixel views in patches of 14, merged 4x4 ("16x"): one token per view; larger images add 56-pixel slices.
TINY_VIEW = 56
TINY_MEDIA = {"scale_resolution": TINY_VIEW, "patch_size": 14, "max_slice_nums": 4}
TINY_VISION = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": TINY_VIEW,
    "patch_size": 14,
    "insert_layer_id": 0,
}


def tiny_processor(processor_class: type):
    """4.6's or 4.7's processor (both use 4.6's image and video processors) with tiny view sizes."""
    tokenizer = tiny_chatml_tokenizer(MEDIA_TOKENS, CHATML_MARKERS)
    return processor_class(
        image_processor=MiniCPMV4_6ImageProcessor(**TINY_MEDIA),
        video_processor=MiniCPMV4_6VideoProcessor(**TINY_MEDIA),
        tokenizer=tokenizer,
        chat_template=STAND_IN_TEMPLATE,
    )


def build(folder: Path, config_class: type, model_class: type, processor_class: type, **extra: Any) -> None:
    processor = tiny_processor(processor_class)
    tokenizer = processor.tokenizer
    config = config_class(
        # Qwen3.5's text model as vlmtune's tiny Qwen3.5 has it: one Gated DeltaNet and one full-attention layer.
        text_config={"model_type": "qwen3_5_text", **tiny_text_config(tokenizer), **QWEN3_5_TEXT},
        vision_config=TINY_VISION,
        insert_layer_id=0,
        image_token_id=processor.image_token_id,
        video_token_id=processor.video_token_id,
        **extra,
    )
    torch.manual_seed(0)
    save_tiny(folder, model_class(config), processor)


def build_tiny(folder: Path) -> None:
    build(folder, MiniCPMV4_6Config, MiniCPMV4_6ForConditionalGeneration, MiniCPMV4_6Processor, image_size=TINY_VIEW)


def build_tiny_4_7(folder: Path) -> None:
    build(folder, MiniCPMV4_7Config, MiniCPMV4_7ForConditionalGeneration, MiniCPMV4_7Processor)
