"""The thinkers of Qwen's omni models, trained on images and video: Qwen2.5-Omni
(`Qwen2_5OmniThinkerForConditionalGeneration`, e.g. https://huggingface.co/Qwen/Qwen2.5-Omni-7B) and Qwen3-Omni
(`Qwen3OmniMoeThinkerForConditionalGeneration`, e.g. https://huggingface.co/Qwen/Qwen3-Omni-30B-A3B-Instruct: a
Qwen3-VL-style vision tower with deepstack mergers and a Qwen3 MoE language model).

An omni checkpoint is a thinker (vision tower `model.visual` with its merger, audio tower `model.audio_tower`, the
language model) plus a talker and a vocoder for speech. vlmtune trains the thinker's text replies: it loads the
thinker class with the checkpoint's processor, the Omni processor (no processor class is mapped to the thinker type;
the checkpoint's processor_config.json names it). A released checkpoint's config is the whole omni model's, which
AutoModelForImageTextToText does not map: the thinker class reads its `thinker_config` and drops the weights'
`thinker.` prefix (`load`), and the parts are derived from the thinker's config (convention.py `meta_model`). The
audio tower is not vision: it sits in `others`, frozen, and audio input is not supported.

The Omni processor is Qwen2.5-VL's image and video processing with its own markers: an image is
`<|vision_bos|><|IMAGE|><|vision_eos|>`, a video `<|vision_bos|><|VIDEO|><|vision_eos|>`. No copy of the released
chat_template.json of Qwen2.5-Omni-7B was found (searched 2026-12-07; transformers' processor tests download it), so
the tiny model carries a stand-in: Qwen2-VL's template (vlmtune/loaders/qwen2_vl.py) with the Omni markers, the
layout that a public Qwen2.5-Omni-derived processor (FlashLabs' ChromaProcessor) carries as its default. A real
checkpoint trains on its own template, checked at load (`vlmtune check`). Qwen3-Omni's Omni processor writes the same
markers; no copy of its released template was found either (searched 2026-12-07), so its tiny model carries Qwen3-VL's
template (no default system turn; vlmtune/loaders/qwen3_vl.py) with the Omni markers as its stand-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    PreTrainedModel,
    ProcessorMixin,
    Qwen2_5OmniProcessor,
    Qwen2_5OmniThinkerConfig,
    Qwen2_5OmniThinkerForConditionalGeneration,
    Qwen2VLImageProcessor,
    Qwen2VLVideoProcessor,
    Qwen3OmniMoeProcessor,
    Qwen3OmniMoeThinkerConfig,
    Qwen3OmniMoeThinkerForConditionalGeneration,
    WhisperFeatureExtractor,
)

from vlmtune.loaders.base import (
    CHATML_MARKERS,
    load_model_and_processor,
    save_tiny,
    tiny_chatml_tokenizer,
    tiny_text_config,
)
from vlmtune.loaders.qwen2_vl import CHAT_TEMPLATE as QWEN2_VL_TEMPLATE
from vlmtune.loaders.qwen2_vl import TINY_MAX_PIXELS, TINY_MIN_PIXELS
from vlmtune.loaders.qwen3_vl import CHAT_TEMPLATE as QWEN3_VL_TEMPLATE
from vlmtune.loaders.qwen3_vl import TINY_MOE, TINY_ROPE, TINY_VISION


def omni_markers(template: str) -> str:
    """A Qwen VL template with its images and videos written as the Omni processor's markers."""
    return template.replace(
        "<|vision_start|><|image_pad|><|vision_end|>", "<|vision_bos|><|IMAGE|><|vision_eos|>"
    ).replace("<|vision_start|><|video_pad|><|vision_end|>", "<|vision_bos|><|VIDEO|><|vision_eos|>")


STAND_IN_TEMPLATE = omni_markers(QWEN2_VL_TEMPLATE)
QWEN3_STAND_IN_TEMPLATE = omni_markers(QWEN3_VL_TEMPLATE)
MEDIA_TOKENS = {
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
    "audio_token": "<|AUDIO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
}
TINY_MEL_BINS = 128  # the released Whisper front end's 128 mel bins


def load(path: str, **kwargs: Any) -> tuple[PreTrainedModel, ProcessorMixin]:
    """The thinker of a Qwen2.5-Omni checkpoint, and the checkpoint's Omni processor.

    A released checkpoint's config is the whole omni model's (type qwen2_5_omni, which AutoModelForImageTextToText
    does not map): the thinker class reads its `thinker_config` and drops the weights' `thinker.` prefix."""
    return load_model_and_processor(path, Qwen2_5OmniThinkerForConditionalGeneration, **kwargs)


def load_qwen3(path: str, **kwargs: Any) -> tuple[PreTrainedModel, ProcessorMixin]:
    """As `load`, for Qwen3-Omni (type qwen3_omni_moe)."""
    return load_model_and_processor(path, Qwen3OmniMoeThinkerForConditionalGeneration, **kwargs)


def tiny_processor() -> Qwen2_5OmniProcessor:
    pixels = {"min_pixels": TINY_MIN_PIXELS, "max_pixels": TINY_MAX_PIXELS}
    tokenizer = tiny_chatml_tokenizer(MEDIA_TOKENS, CHATML_MARKERS)
    return Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(**pixels),
        video_processor=Qwen2VLVideoProcessor(**pixels),
        feature_extractor=WhisperFeatureExtractor(feature_size=TINY_MEL_BINS),
        tokenizer=tokenizer,
        chat_template=STAND_IN_TEMPLATE,
    )


def omni_token_ids(tokenizer, suffix: str = "index") -> dict[str, int]:
    """The thinker config's media token ids (Qwen2.5-Omni names them `*_token_index`, Qwen3-Omni `*_token_id`)."""
    ids = tokenizer.convert_tokens_to_ids
    return {
        f"image_token_{suffix}": ids(MEDIA_TOKENS["image_token"]),
        f"video_token_{suffix}": ids(MEDIA_TOKENS["video_token"]),
        f"audio_token_{suffix}": ids(MEDIA_TOKENS["audio_token"]),
        "audio_start_token_id": ids(MEDIA_TOKENS["audio_bos_token"]),
        "audio_end_token_id": ids(MEDIA_TOKENS["audio_eos_token"]),
        # Not a field of the thinker config, but the thinker's position ids read it (released configs carry it).
        "vision_start_token_id": ids(MEDIA_TOKENS["vision_bos_token"]),
    }


def build_tiny(folder: Path) -> None:
    processor = tiny_processor()
    tokenizer = processor.tokenizer
    # head_dim 32 -> 16 rotary frequencies over (time, height, width), as the released [16, 24, 24].
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6]}
    text = tiny_text_config(tokenizer, rope_parameters=rope)
    config = Qwen2_5OmniThinkerConfig(
        text_config=text,
        vision_config={
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "out_hidden_size": text["hidden_size"],
            "num_heads": 2,
            "fullatt_block_indexes": [1],
            "window_size": 56,
        },
        audio_config={
            "num_mel_bins": TINY_MEL_BINS,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "d_model": 32,
            "output_dim": text["hidden_size"],
        },
        user_token_id=tokenizer.convert_tokens_to_ids("user"),
        **omni_token_ids(tokenizer),
    )
    torch.manual_seed(0)
    save_tiny(folder, Qwen2_5OmniThinkerForConditionalGeneration(config), processor)


def build_tiny_qwen3(folder: Path) -> None:
    pixels = {"min_pixels": TINY_MIN_PIXELS, "max_pixels": TINY_MAX_PIXELS}
    tokenizer = tiny_chatml_tokenizer(MEDIA_TOKENS, CHATML_MARKERS)
    processor = Qwen3OmniMoeProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16, image_mean=[0.5] * 3, image_std=[0.5] * 3, **pixels),
        video_processor=Qwen2VLVideoProcessor(patch_size=16, **pixels),
        feature_extractor=WhisperFeatureExtractor(feature_size=TINY_MEL_BINS),
        tokenizer=tokenizer,
        chat_template=QWEN3_STAND_IN_TEMPLATE,
    )
    text = tiny_text_config(tokenizer, head_dim=32, rope_parameters=TINY_ROPE, **TINY_MOE)
    config = Qwen3OmniMoeThinkerConfig(
        text_config=text,
        vision_config={**TINY_VISION, "deepstack_visual_indexes": [0], "out_hidden_size": text["hidden_size"]},
        audio_config={
            "num_mel_bins": TINY_MEL_BINS,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "d_model": 32,
            "downsample_hidden_size": 16,
            "output_dim": text["hidden_size"],
        },
        user_token_id=tokenizer.convert_tokens_to_ids("user"),
        **omni_token_ids(tokenizer, suffix="id"),
    )
    torch.manual_seed(0)
    save_tiny(folder, Qwen3OmniMoeThinkerForConditionalGeneration(config), processor)
