"""Granite Vision 4 (`Granite4VisionForConditionalGeneration` + `Granite4VisionProcessor`), the transformers type of
https://huggingface.co/ibm-granite/granite-vision-4.1-4b (transformers' docs/source/en/model_doc/granite4_vision.md).

LLaVA-NeXT's layout and tiling (`model.vision_tower`, a SigLIP tower; each image a base tile plus anyres tiles, one
`model.image_newline` per row) with two sets of window Q-Former projectors in place of one MLP: features of several
vision layers go through `model.layerwise_projectors` into early language-model layers, the deepest features split
into four spatial groups through `model.spatial_projectors` into later ones (DeepStack injection).

No copy of Granite Vision 4.1's chat template was found (searched 2026-12-07); its processor ships none, and the
Granite Vision 3 format quoted in transformers' granitevision.md shows no image placeholder. The tiny model carries a
clearly labelled stand-in: Qwen3-VL's ChatML layout (the outside copy in vlmtune/loaders/qwen3_vl.py) with each
image written as this processor's `<image>`. A real checkpoint trains with its own template: the family record
derives the end-of-turn and capabilities from the checkpoint's files and checks them before any weight is read
(`vlmtune check granite-vision-4.1-4b`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Granite4VisionConfig,
    Granite4VisionForConditionalGeneration,
    Granite4VisionProcessor,
    Granite4VisionTextConfig,
    LlavaNextImageProcessor,
)

from vlmtune.loaders.base import CHATML_MARKERS, save_tiny, tiny_chatml_tokenizer, tiny_siglip_config, tiny_text_config
from vlmtune.loaders.qwen3_vl import CHAT_TEMPLATE

STAND_IN_TEMPLATE = CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>").replace(
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>", ""
)
assert "<image>" in STAND_IN_TEMPLATE and "video" not in STAND_IN_TEMPLATE
# Tiles of 32 pixels in patches of 8 (384 in 16 released): 4x4 patches, one window of 4x4 queried by 2x2 tokens.
TINY_TILE = 32
TINY_PATCH = 8
TINY_PINPOINTS = [[32, 64], [64, 32], [64, 64]]
DOWNSAMPLE = "2/4"  # query side / window side, as released


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_chatml_tokenizer({"image_token": "<image>"}, CHATML_MARKERS)
    # Four language-model layers: two take layerwise features (from the last two vision layers), all four a spatial
    # group (released: 4 + 4 injection points).
    text = Granite4VisionTextConfig(**tiny_text_config(tokenizer, num_hidden_layers=4))
    config = Granite4VisionConfig(
        text_config=text,
        vision_config=tiny_siglip_config(TINY_TILE, TINY_PATCH),
        image_token_index=tokenizer.image_token_id,
        image_grid_pinpoints=TINY_PINPOINTS,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        image_seq_length=4,
        downsample_rate=DOWNSAMPLE,
        deepstack_layer_map=[[-1, 0], [-2, 1]],
        spatial_target_layers=[0, 1, 2, 3],
        qformer_config={"intermediate_size": 128},
    )
    processor = Granite4VisionProcessor(
        image_processor=LlavaNextImageProcessor(
            size={"shortest_edge": TINY_TILE},
            crop_size={"height": TINY_TILE, "width": TINY_TILE},
            image_grid_pinpoints=TINY_PINPOINTS,
            do_center_crop=False,
        ),
        tokenizer=tokenizer,
        chat_template=STAND_IN_TEMPLATE,
        patch_size=TINY_PATCH,
        vision_feature_select_strategy="full",
        downsample_rate=DOWNSAMPLE,
    )
    torch.manual_seed(0)
    save_tiny(folder, Granite4VisionForConditionalGeneration(config), processor)
