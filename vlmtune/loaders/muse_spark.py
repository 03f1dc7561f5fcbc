"""Muse Spark (`MuseSparkForConditionalGeneration` + `MuseSparkProcessor`): https://huggingface.co/meta-models/
Muse-Spark-Open-816B-A42B, Meta's omni model: Muse Glimmer's vision path (`model.vision_tower`, then
`model.vision_adapter`, `model.vision_projection`, `model.perception_emb_norm`: the projector), a raw-waveform audio
tower (`model.audio_tower`) and a mixture-of-experts language model with gated residuals.

vlmtune trains it on images and video: the audio tower is not vision, so the convention leaves it in `others`,
frozen (audio input is not supported). Its image and video processors are Muse Glimmer's (the auto mappings say so),
its tokenizer Llama 4's vocabulary, and no copy of Muse Spark's released chat template was found (searched
2026-12-07), so the tiny model carries the same labelled stand-in as muse-glimmer (vlmtune/loaders/muse_glimmer.py):
Llama 4's template with images written as the processor's image token `<|patch|>`. A real checkpoint trains on its
own template: its end-of-turn, parts and capabilities are derived from its files and checked at load
(`vlmtune check`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    MuseSparkAudioConfig,
    MuseSparkConfig,
    MuseSparkFeatureExtractor,
    MuseSparkForConditionalGeneration,
    MuseSparkProcessor,
    MuseSparkTextConfig,
    MuseSparkVisionConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.llama4 import IMAGE_LAYOUT_TOKENS, MARKERS, SPECIAL_TOKENS, STOP_TOKENS
from vlmtune.loaders.muse_glimmer import (
    STAND_IN_TEMPLATE,
    TINY_MERGE,
    TINY_PATCH_SIZE,
    TINY_POSITIONS,
    VIDEO_TOKENS,
    tiny_media_processors,
)
from vlmtune.loaders.tiny import train_tokenizer

AUDIO_TOKENS = ["<|soft_audio_start|>", "<|soft_audio_end|>"]
# The audio tower's pyramid, shrunk: 2 stages collapsing 4 * 4 = 16 waveform samples into one token.
TINY_AUDIO_PATCHES = (4, 4)


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        SPECIAL_TOKENS,
        extra_special_tokens={"image_token": "<|patch|>", "video_token": "<|video|>", "audio_token": "<|audio|>"},
        additional_special_tokens=MARKERS
        + [t for t in IMAGE_LAYOUT_TOKENS if t != "<|patch|>"]
        + VIDEO_TOKENS
        + AUDIO_TOKENS,
        add_bos=True,
    )
    text = tiny_text_config(tokenizer, head_dim=32, sliding_window=64)
    text["output_multiplier"] = (256 / text["hidden_size"]) ** 0.5  # the released rule, 1 / sqrt(hidden_size / 256)
    text.pop("max_position_embeddings")
    # One dense layer, then one sparse (MoE) layer: 4 experts of 64, top 2, pooled to 64 wide.
    text.update(
        mlp_layer_types=["dense", "sparse"],
        num_local_experts=4,
        num_experts_per_tok=2,
        moe_intermediate_size=64,
        moe_hidden_size=64,
    )
    vision_hidden = TINY_VISION_SIZES["hidden_size"]
    config = MuseSparkConfig(
        text_config=MuseSparkTextConfig(**text),
        vision_config=MuseSparkVisionConfig(
            **TINY_VISION_SIZES,
            patch_size=TINY_PATCH_SIZE,
            merge_size=TINY_MERGE,
            pos_emb_height=TINY_POSITIONS,
            pos_emb_width=TINY_POSITIONS,
            max_position_embeddings=TINY_POSITIONS**2,
        ),
        audio_config=MuseSparkAudioConfig(
            patch_sizes=TINY_AUDIO_PATCHES,
            hidden_sizes=(16, 32),
            depths=(1, 1),
            num_hidden_layers=2,
            out_hidden_size=text["hidden_size"],
        ),
        image_token_id=tokenizer.image_token_id,
        video_token_id=tokenizer.video_token_id,
        audio_token_id=tokenizer.audio_token_id,
        out_hidden_size=vision_hidden * TINY_MERGE**2,
        projector_hidden_size=vision_hidden,
    )
    torch.manual_seed(0)
    processor = MuseSparkProcessor(
        **tiny_media_processors(),
        feature_extractor=MuseSparkFeatureExtractor(samples_per_token=TINY_AUDIO_PATCHES[0] * TINY_AUDIO_PATCHES[1]),
        tokenizer=tokenizer,
        chat_template=STAND_IN_TEMPLATE,
    )
    save_tiny(folder, MuseSparkForConditionalGeneration(config), processor, stop_tokens=STOP_TOKENS)
