"""LFM3-VL (`Lfm3VlForConditionalGeneration` + `Lfm3VlProcessor`), the transformers type of
https://huggingface.co/LiquidAI/LFM3-VL-2B.

The LLaVA layout (`model.vision_tower`, `model.multi_modal_projector`, `model.language_model`): a vision tower of
short convolutions and attention over the patch grid, an LFM3 language model (short convolutions, sliding and full
attention). The processor is Qwen's: Qwen2-VL's image processor and Qwen3-VL's video processor, each image
`<|vision_start|><|image_pad|><|vision_end|>` expanded to its merged patches, each video frame written with its
timestamp ("<1.0 seconds>"), which needs the video's metadata (`Qwen3VLCollator` passes it).

No copy of LFM3-VL's own chat template was found (searched 2026-12-07; public mentions call the model unreleased).
The tiny model carries a clearly labelled stand-in: Qwen3-VL's template (the outside copy in
vlmtune/loaders/qwen3_vl.py), whose image and video markers are the ones this processor expands. LFM2-VL's
template, the vendor's previous one, writes `<image>`, which this processor does not expand. A real checkpoint
trains with its own template: the family record derives the end-of-turn, parts and capabilities from the
checkpoint's files and checks them before any weight is read (`vlmtune check lfm3-vl-2b`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Lfm3Config,
    Lfm3VlConfig,
    Lfm3VlForConditionalGeneration,
    Lfm3VlProcessor,
    Lfm3VlVisionConfig,
)

from vlmtune.loaders.base import save_tiny, tiny_text_config
from vlmtune.loaders.qwen2_vl import qwen_vision_token_ids
from vlmtune.loaders.qwen3_vl import CHAT_TEMPLATE, tiny_processor

# Stand-in template (see above): Qwen3-VL's.
STAND_IN_TEMPLATE = CHAT_TEMPLATE

# One block of each kind the released models interleave: a short convolution and (gated) attention.
TINY_VISION = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "layer_types": ["conv", "full_attention"],
    "patch_size": 16,
}


def build_tiny(folder: Path) -> None:
    qwen = tiny_processor(STAND_IN_TEMPLATE)
    processor = Lfm3VlProcessor(
        image_processor=qwen.image_processor,
        tokenizer=qwen.tokenizer,
        video_processor=qwen.video_processor,
        chat_template=STAND_IN_TEMPLATE,
    )
    tokenizer = processor.tokenizer
    text = Lfm3Config(**tiny_text_config(tokenizer, head_dim=32, layer_types=["conv", "full_attention"]))
    config = Lfm3VlConfig(
        text_config=text,
        vision_config=Lfm3VlVisionConfig(**TINY_VISION),
        projector_hidden_size=128,
        **qwen_vision_token_ids(tokenizer),
    )
    torch.manual_seed(0)
    save_tiny(folder, Lfm3VlForConditionalGeneration(config), processor)
