"""HyperCLOVA X SEED Vision v2 (`HyperCLOVAXVisionV2ForConditionalGeneration` + `HyperCLOVAXVisionV2Processor`), the
transformers type of https://huggingface.co/naver-hyperclovax/HyperCLOVAX-SEED-Think-32B.

Qwen2.5-VL's vision tower (`model.vision_model`, window attention, its merger inside), a linear `model.projector`
and a HyperCLOVA X language model (`model.language_model`, Llama-like with muP multipliers). The processor is
Qwen2-VL's image and video processing: each `<|image_pad|>` / `<|video_pad|>` expanded to its merged patches.

No copy of HyperCLOVAX-SEED-Think-32B's chat template was found (searched 2026-12-07); its processor ships none, and
its code says the hub template writes a `<|video_duration|>` text placeholder, which the processor fills in. The tiny
model carries a clearly labelled stand-in: Qwen2-VL's template (the outside copy in vlmtune/loaders/qwen2_vl.py),
whose image and video markers are the ones this processor expands. A real checkpoint trains with its own template:
the family record derives the end-of-turn, parts and capabilities from the checkpoint's files and checks them before
any weight is read (`vlmtune check hyperclovax-seed-think-32b`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    HyperCLOVAXConfig,
    HyperCLOVAXVisionV2Config,
    HyperCLOVAXVisionV2ForConditionalGeneration,
    HyperCLOVAXVisionV2Processor,
)

from vlmtune.loaders.base import save_tiny, tiny_text_config
from vlmtune.loaders.exaone4_5 import TINY_VISION
from vlmtune.loaders.qwen2_vl import CHAT_TEMPLATE, _tiny_processor

# Stand-in template (see above): Qwen2-VL's.
STAND_IN_TEMPLATE = CHAT_TEMPLATE


def build_tiny(folder: Path) -> None:
    qwen = _tiny_processor()
    processor = HyperCLOVAXVisionV2Processor(
        image_processor=qwen.image_processor,
        tokenizer=qwen.tokenizer,
        video_processor=qwen.video_processor,
        chat_template=STAND_IN_TEMPLATE,
    )
    config = HyperCLOVAXVisionV2Config(
        text_config=HyperCLOVAXConfig(**tiny_text_config(processor.tokenizer, head_dim=32)),
        # Qwen2.5-VL's tiny vision tower, the released checkpoints' tower type.
        vision_config={"model_type": "qwen2_5_vl_vision", **TINY_VISION},
        image_token_id=processor.image_token_id,
        video_token_id=processor.video_token_id,
    )
    torch.manual_seed(0)
    save_tiny(folder, HyperCLOVAXVisionV2ForConditionalGeneration(config), processor)
