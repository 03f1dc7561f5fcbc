"""EXAONE 4.5 (`Exaone4_5_ForConditionalGeneration` + `Exaone4_5_Processor`), the transformers type of
https://huggingface.co/LGAI-EXAONE/EXAONE-4.5-33B.

Qwen2.5-VL's vision tower (window attention, `model.visual` with its merger inside) on an EXAONE 4 language model
(sliding and global attention, QK norms). The processor is Qwen2-VL's: each `<|image_pad|>` / `<|video_pad|>`
expanded to its merged patches, videos without frame timestamps.

No copy of EXAONE 4.5's own chat template was found (searched 2026-12-07), nor one of its image markers: EXAONE
4.0, the text-only predecessor, has no image parts. The tiny model carries a clearly labelled stand-in: Qwen2-VL's
template (the outside copy in vlmtune/loaders/qwen2_vl.py), whose image and video markers are the ones this
processor expands. A real checkpoint trains with its own template: the family record derives the end-of-turn,
parts and capabilities from the checkpoint's files and checks them before any weight is read
(`vlmtune check exaone-4.5-33b`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import Exaone4_5_Config, Exaone4_5_ForConditionalGeneration, Exaone4_5_Processor, Exaone4Config

from vlmtune.loaders.base import save_tiny, tiny_text_config
from vlmtune.loaders.qwen2_vl import CHAT_TEMPLATE, _tiny_processor

# Stand-in template (see above): Qwen2-VL's.
STAND_IN_TEMPLATE = CHAT_TEMPLATE

# Qwen2.5-VL's tiny vision sizes (vlmtune/loaders/qwen2_vl.py): one window-attention and one full-attention block.
TINY_VISION = {
    "depth": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "out_hidden_size": 128,
    "num_heads": 2,
    "num_key_value_heads": 2,
    "fullatt_block_indexes": [1],
    "window_size": 56,
}


def build_tiny(folder: Path) -> None:
    qwen = _tiny_processor()
    processor = Exaone4_5_Processor(
        image_processor=qwen.image_processor,
        tokenizer=qwen.tokenizer,
        video_processor=qwen.video_processor,
        chat_template=STAND_IN_TEMPLATE,
    )
    tokenizer = processor.tokenizer
    # One sliding-window and one global layer, as the released pattern alternates them.
    text = Exaone4Config(
        **tiny_text_config(tokenizer, head_dim=32, layer_types=["sliding_attention", "full_attention"]),
        sliding_window=64,
    )
    config = Exaone4_5_Config(
        text_config=text,
        vision_config=TINY_VISION,
        image_token_id=processor.image_token_id,
        video_token_id=processor.video_token_id,
    )
    torch.manual_seed(0)
    save_tiny(folder, Exaone4_5_ForConditionalGeneration(config), processor)
