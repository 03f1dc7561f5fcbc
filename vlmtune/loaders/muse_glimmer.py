"""Muse Glimmer (`MuseGlimmerForConditionalGeneration` + `MuseGlimmerProcessor`): https://huggingface.co/meta-models/
Muse-Glimmer-30B, Meta's VLM: a windowed-attention vision tower with merged patches (`model.vision_tower`), an MLP
adapter, a projection and a norm into the language model (`model.vision_adapter`, `model.vision_projection`,
`model.perception_emb_norm`: the projector), and a language model with sliding / NoPE layers and soft-capped logits.

No copy of Muse Glimmer's released chat template was found (searched 2026-12-07: public code, issues and pages for
copies of its hub template and vLLM prompts), and its processor ships none. Its tokenizer is Llama 4's: the same
vocabulary size (202048), bos/eos ids (200000 `<|begin_of_text|>`, 200001 `<|end_of_text|>`) and image layout tokens
(`<|image_start|>`, `<|patch|>`, `<|image_end|>`). The tiny model therefore carries a stand-in: the Llama 4 template
that transformers ships as `Llama4Processor`'s default (vlmtune/loaders/llama4.py), with an image part written as
this processor's image token `<|patch|>` (which `MuseGlimmerProcessor` expands, where Llama 4's expands `<|image|>`).
A real checkpoint trains on its own template: its end-of-turn, parts and capabilities are derived from its files and
checked at load (`vlmtune check`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    MuseGlimmerConfig,
    MuseGlimmerForConditionalGeneration,
    MuseGlimmerImageProcessor,
    MuseGlimmerProcessor,
    MuseGlimmerTextConfig,
    MuseGlimmerVideoProcessor,
    MuseGlimmerVisionConfig,
)
from transformers.models.llama4.processing_llama4 import chat_template as LLAMA4_TEMPLATE

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.llama4 import IMAGE_LAYOUT_TOKENS, MARKERS, SPECIAL_TOKENS, STOP_TOKENS
from vlmtune.loaders.tiny import train_tokenizer

STAND_IN_TEMPLATE = LLAMA4_TEMPLATE.replace("'<|image|>'", "'<|patch|>'")
VIDEO_TOKENS = ["<|vid_start|>", "<|vid_frame_separator|>", "<|vid_end|>"]
TINY_PATCH_SIZE = 8
TINY_MERGE = 2
# At most 16 merged <|patch|> tokens per image; the position table covers 8x8 patches.
TINY_IMAGE_TOKENS = 16
TINY_POSITIONS = 8


def tiny_media_processors() -> dict:
    """The tiny image and video processors (also Muse Spark's): the tiny patch and merge sizes."""
    return {
        "image_processor": MuseGlimmerImageProcessor(
            patch_size=TINY_PATCH_SIZE, merge_size=TINY_MERGE, max_image_tokens=TINY_IMAGE_TOKENS
        ),
        "video_processor": MuseGlimmerVideoProcessor(patch_size=TINY_PATCH_SIZE, merge_size=TINY_MERGE),
    }


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        SPECIAL_TOKENS,
        extra_special_tokens={"image_token": "<|patch|>", "video_token": "<|video|>"},
        additional_special_tokens=MARKERS + [t for t in IMAGE_LAYOUT_TOKENS if t != "<|patch|>"] + VIDEO_TOKENS,
        add_bos=True,
    )
    text = tiny_text_config(tokenizer, head_dim=32, sliding_window=64)
    # The logit scale follows the released rule, 1 / sqrt(hidden_size / 256) (0.196 for 6656 wide; 1.41 here).
    text["output_multiplier"] = (256 / text["hidden_size"]) ** 0.5
    text.pop("max_position_embeddings")  # the released value; 4096 for the other tiny models
    vision_hidden = TINY_VISION_SIZES["hidden_size"]
    config = MuseGlimmerConfig(
        text_config=MuseGlimmerTextConfig(**text),  # one sliding layer, then one NoPE full-attention layer
        vision_config=MuseGlimmerVisionConfig(
            **TINY_VISION_SIZES,
            patch_size=TINY_PATCH_SIZE,
            merge_size=TINY_MERGE,
            pos_emb_height=TINY_POSITIONS,
            pos_emb_width=TINY_POSITIONS,
            max_position_embeddings=TINY_POSITIONS**2,
        ),
        image_token_id=tokenizer.image_token_id,
        video_token_id=tokenizer.video_token_id,
        out_hidden_size=vision_hidden * TINY_MERGE**2,
        projector_hidden_size=vision_hidden,
    )
    torch.manual_seed(0)
    processor = MuseGlimmerProcessor(
        **tiny_media_processors(),
        tokenizer=tokenizer,
        chat_template=STAND_IN_TEMPLATE,
    )
    save_tiny(folder, MuseGlimmerForConditionalGeneration(config), processor, stop_tokens=STOP_TOKENS)
