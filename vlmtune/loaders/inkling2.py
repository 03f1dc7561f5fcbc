"""Inkling 2 (`Inkling2ForConditionalGeneration` + `Inkling2Processor`), the transformers type of
https://huggingface.co/thinkingmachines/Inkling-2-Small-MXFP8.

`model.vision_tower` (a ViT of 40-pixel patches with its merger and MLP projection inside) and `model.language_model`
(a MoE decoder with sliding and full attention, short convolutions, attention residuals). The image processor keeps
each image's own size: one `<|unused_200054|>` token per 40x40 tile, no resizing.

No copy of Inkling 2's chat template was found (searched 2026-12-07), nor one of a sibling (the audio-vision Inkling
type in transformers ships none either); its processor ships none. The tiny model carries a clearly labelled
stand-in: Qwen3-VL's ChatML layout (the outside copy in vlmtune/loaders/qwen3_vl.py) with each image written as this
processor's image token. A real checkpoint trains with its own template: the family record derives the end-of-turn,
parts and capabilities from the checkpoint's files and checks them before any weight is read
(`vlmtune check inkling-2-small`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Inkling2Config,
    Inkling2ForConditionalGeneration,
    Inkling2ImageProcessor,
    Inkling2Processor,
    Inkling2TextConfig,
    Inkling2VisionConfig,
)

from vlmtune.loaders.base import CHATML_MARKERS, save_tiny, tiny_chatml_tokenizer, tiny_text_config
from vlmtune.loaders.qwen3_vl import CHAT_TEMPLATE

IMAGE_TOKEN = "<|unused_200054|>"  # Inkling2Processor's default
# Stand-in template (see above): Qwen3-VL's, an image written as the processor's image token.
STAND_IN_TEMPLATE = CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", IMAGE_TOKEN)
# Patches of 8 pixels (20 released) merged 2x2 into one token per 16-pixel tile: a 32x32 image is 4 tokens.
TINY_PATCH = 8
TINY_TILE = TINY_PATCH * 2
# One sliding and one full ("hybrid") layer, each its own attention-residual block; 4 experts, 2 per token.
TINY_TEXT = {
    "head_dim": 32,
    "swa_num_attention_heads": 4,
    "swa_num_key_value_heads": 2,
    "swa_head_dim": 32,
    "sliding_window_size": 64,
    "rel_extent": 64,
    "layer_types": ["hybrid_sliding", "hybrid"],
    "n_layers_per_attn_res_block": 1,
    "moe_intermediate_size": 64,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
}


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_chatml_tokenizer({"image_token": IMAGE_TOKEN}, CHATML_MARKERS)
    text = tiny_text_config(tokenizer, **TINY_TEXT)
    text.pop("intermediate_size")  # an alias of moe_intermediate_size here
    text["unpadded_vocab_size"] = text["vocab_size"]
    config = Inkling2Config(
        text_config=Inkling2TextConfig(**text),
        vision_config=Inkling2VisionConfig(
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            patch_size=TINY_PATCH,
            posemb_grid_size=8,
            projection_hidden_dim=128,
            text_hidden_size=text["hidden_size"],
        ),
        image_token_id=tokenizer.image_token_id,
    )
    processor = Inkling2Processor(
        image_processor=Inkling2ImageProcessor(size={"height": TINY_TILE, "width": TINY_TILE}),
        tokenizer=tokenizer,
        chat_template=STAND_IN_TEMPLATE,
    )
    torch.manual_seed(0)
    save_tiny(folder, Inkling2ForConditionalGeneration(config), processor)
