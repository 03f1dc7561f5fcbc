"""ERNIE 4.5 VL (`Ernie4_5_VLMoeForConditionalGeneration` + `Ernie4_5_VLMoeProcessor`), the transformers type of
https://huggingface.co/baidu/ERNIE-4.5-VL-28B-A3B-PT.

`model.vision_tower` (a Qwen2-VL-style ViT), `model.resampler_model` (merges 2x2 patches, and frame pairs of videos,
into the language model's width: the projector) and `model.language_model` (a MoE decoder with separate text and
vision experts and 3D rotary positions). The processor expands each `<|IMAGE_PLACEHOLDER|>` to one token per merged
patch and returns, besides `mm_token_type_ids`, `moe_mm_token_type_ids`: which expert group each token goes to (the
image brackets included), a row along the tokens like `input_ids` (padded with 0, text; `vlmtune.collators.base`).

No usable copy of ERNIE 4.5 VL's chat template was found (searched 2026-12-07): its processor ships none, and the one
outside copy (DEFAULT_CHAT_TEMPLATE in transformers' convert_ernie4_5_vl_moe_to_hf.py) holds a newline plus 12 spaces
inside its string literals and closes a reply with the text '<|end_of_sentence |>'. The tiny model carries a clearly
labelled stand-in: Qwen2-VL's ChatML layout (the outside copy in vlmtune/loaders/qwen2_vl.py) with each image written
as ERNIE's `<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>` (the token strings of PaddleOCR-VL's released
template, on the same ERNIE 4.5 tokenizer) and no video part (the video processor draws timestamps with a font file
of the checkpoint). A real checkpoint trains with its own template: the family record derives the end-of-turn, parts
and capabilities from the checkpoint's files and checks them before any weight is read
(`vlmtune check ernie-4.5-vl-28b-a3b`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Ernie4_5_VLMoeConfig,
    Ernie4_5_VLMoeForConditionalGeneration,
    Ernie4_5_VLMoeImageProcessor,
    Ernie4_5_VLMoeProcessor,
    Ernie4_5_VLMoeTextConfig,
    Ernie4_5_VLMoeVideoProcessor,
    Ernie4_5_VLMoeVisionConfig,
)

from vlmtune.loaders.base import CHATML_MARKERS, save_tiny, tiny_chatml_tokenizer, tiny_text_config
from vlmtune.loaders.qwen2_vl import CHAT_TEMPLATE, TINY_MAX_PIXELS, TINY_MIN_PIXELS

MEDIA_TOKENS = {
    "image_token": "<|IMAGE_PLACEHOLDER|>",
    "image_start_token": "<|IMAGE_START|>",
    "image_end_token": "<|IMAGE_END|>",
    "video_token": "<|VIDEO_PLACEHOLDER|>",
    "video_start_token": "<|VIDEO_START|>",
    "video_end_token": "<|VIDEO_END|>",
}
IMAGE = "<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>"
# Stand-in template (see above): Qwen2-VL's, images in ERNIE's brackets, videos not written.
STAND_IN_TEMPLATE = CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", IMAGE).replace(
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>", ""
)
assert IMAGE in STAND_IN_TEMPLATE and "video" not in STAND_IN_TEMPLATE
# One dense and one MoE layer: 4 text and 4 vision experts, 2 per token, one shared expert.
TINY_TEXT = {
    "head_dim": 32,
    # 16 rotary frequencies over (height, width, time), in the released proportions ([22, 22, 20] of 64).
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [6, 6, 4]},
    "mlp_layer_types": ["dense", "sparse"],
    "moe_intermediate_size": [64, 64],
    "moe_k": 2,
    "moe_num_experts": 4,
    "moe_num_shared_experts": 1,
}


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_chatml_tokenizer(MEDIA_TOKENS, CHATML_MARKERS)
    pixels = {"min_pixels": TINY_MIN_PIXELS, "max_pixels": TINY_MAX_PIXELS}
    processor = Ernie4_5_VLMoeProcessor(
        image_processor=Ernie4_5_VLMoeImageProcessor(**pixels),
        # No timestamps drawn on frames: that needs a font file, and the stand-in writes no videos.
        video_processor=Ernie4_5_VLMoeVideoProcessor(draw_on_frames=False),
        tokenizer=tokenizer,
        chat_template=STAND_IN_TEMPLATE,
    )
    ids = {f"{name}_id": tokenizer.convert_tokens_to_ids(token) for name, token in MEDIA_TOKENS.items()}
    config = Ernie4_5_VLMoeConfig(
        text_config=Ernie4_5_VLMoeTextConfig(**tiny_text_config(tokenizer, **TINY_TEXT)),
        vision_config=Ernie4_5_VLMoeVisionConfig(
            depth=2, hidden_size=64, intermediate_size=128, num_heads=2, patch_size=14
        ),
        **ids,
    )
    torch.manual_seed(0)
    save_tiny(folder, Ernie4_5_VLMoeForConditionalGeneration(config), processor)
