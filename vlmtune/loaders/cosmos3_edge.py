"""Cosmos 3 Edge (`Cosmos3EdgeForConditionalGeneration` + `Cosmos3EdgeProcessor`), the transformers type of
https://huggingface.co/nvidia/Cosmos3-Edge.

`model.visual` (a SigLIP-style tower of 16-pixel patches), `model.projector` (an MLP over 2x2 merged patches) and
`model.language_model` (a decoder with squared-ReLU MLPs). The processor is Qwen-style: each image
`<|vision_start|><|image_pad|><|vision_end|>` expanded to its merged patches, each video frame written with its
timestamp ("<1.0 seconds>"), which needs the video's metadata; the model also needs `mm_token_type_ids`, which the
processor returns only when asked (`vlmtune.collators.cosmos3_edge.Cosmos3EdgeCollator` does both).

No copy of Cosmos 3 Edge's own chat template was found (searched 2026-12-07; public code shows action-policy
checkpoints of the type). The tiny model carries a clearly labelled stand-in: Qwen3-VL's template (the outside copy
in vlmtune/loaders/qwen3_vl.py), whose image and video markers are the ones this processor expands. A real checkpoint
trains with its own template: the family record derives the end-of-turn, parts and capabilities from the
checkpoint's files and checks them before any weight is read (`vlmtune check cosmos3-edge`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Cosmos3EdgeConfig,
    Cosmos3EdgeForConditionalGeneration,
    Cosmos3EdgeImageProcessor,
    Cosmos3EdgeProcessor,
    Cosmos3EdgeTextConfig,
    Cosmos3EdgeVideoProcessor,
    Cosmos3EdgeVisionConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.qwen2_vl import qwen_vision_token_ids, tiny_qwen_tokenizer
from vlmtune.loaders.qwen3_vl import CHAT_TEMPLATE

# Stand-in template (see above): Qwen3-VL's.
STAND_IN_TEMPLATE = CHAT_TEMPLATE

# Patches of 16 merged 2x2: a 64x64 image is 4 tokens; larger ones are capped at 16 tokens (frames likewise).
TINY_PIXELS = {"shortest_edge": 64 * 64, "longest_edge": 32 * 32 * 16}
# head_dim 32 -> 16 rotary frequencies over (time, height, width), in the released proportions ([24, 20, 20]).
TINY_ROPE = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [6, 5, 5]}


def build_tiny(folder: Path) -> None:
    processor = Cosmos3EdgeProcessor(
        image_processor=Cosmos3EdgeImageProcessor(size=TINY_PIXELS),
        video_processor=Cosmos3EdgeVideoProcessor(size=TINY_PIXELS),
        tokenizer=tiny_qwen_tokenizer(),
        chat_template=STAND_IN_TEMPLATE,
    )
    tokenizer = processor.tokenizer
    config = Cosmos3EdgeConfig(
        text_config=Cosmos3EdgeTextConfig(**tiny_text_config(tokenizer, head_dim=32, rope_parameters=TINY_ROPE)),
        vision_config=Cosmos3EdgeVisionConfig(**TINY_VISION_SIZES, patch_size=16, num_patches=64),
        projector_hidden_size=128,
        **qwen_vision_token_ids(tokenizer),
    )
    torch.manual_seed(0)
    save_tiny(folder, Cosmos3EdgeForConditionalGeneration(config), processor)
