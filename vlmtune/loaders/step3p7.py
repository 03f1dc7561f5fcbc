"""Step 3.7 (`Step3p7ForConditionalGeneration` + `Step3p7Processor`), the transformers type of
https://huggingface.co/stepfun-ai/Step-3.7-Flash.

The LLaVA layout (`model.vision_model`, `model.multi_modal_projector`, `model.language_model`): a ViT with two
stride-2 convolutions at its end, on a Step 3.5 MoE language model (sliding and full attention, a shared expert).
The processor writes each image (`<im_patch>`) as a global view `<im_start>` + patch tokens + `<im_end>`, after
local crops `<patch_start>...<patch_end>` for large or elongated images.

No copy of Step 3.7's own chat template was found (searched 2026-12-07). The tiny model carries a clearly labelled
stand-in: Qwen3-VL's ChatML layout (the outside copy in vlmtune/loaders/qwen3_vl.py) with each image written as this
processor's `<im_patch>`. A real checkpoint trains with its own template: the family record derives the
end-of-turn, parts and capabilities from the checkpoint's files and checks them before any weight is read
(`vlmtune check step-3.7-flash`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Step3p7Config,
    Step3p7ForConditionalGeneration,
    Step3p7ImageProcessor,
    Step3p7Processor,
    Step3p7TextConfig,
    Step3p7VisionConfig,
)

from vlmtune.loaders.base import CHATML_MARKERS, save_tiny, tiny_chatml_tokenizer, tiny_text_config
from vlmtune.loaders.qwen3_vl import CHAT_TEMPLATE

# Stand-in template (see above): Qwen3-VL's, an image written as the processor's placeholder.
STAND_IN_TEMPLATE = CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<im_patch>")
IMAGE_MARKERS = ["<im_start>", "<im_end>", "<patch_start>", "<patch_end>", "<patch_newline>"]

# A 112-pixel global view in patches of 14, downsampled 4x: 2x2 = 4 tokens; 56-pixel local crops of 1 token each.
TINY_GLOBAL = 112
TINY_CROP = 56
TINY_VISION = {
    "hidden_size": 64,
    "mlp_ratio": 2.0,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": TINY_GLOBAL,
    "patch_size": 14,
    "max_position_embeddings": (TINY_GLOBAL // 14) ** 2,
}
# One dense and one MoE layer (4 experts, 2 per token, a shared expert), one sliding and one full attention layer.
TINY_TEXT = {
    "head_dim": 32,
    "layer_types": ["sliding_attention", "full_attention"],
    "sliding_window": 64,
    "mlp_layer_types": ["dense", "sparse"],
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "moe_intermediate_size": 64,
    "share_expert_dim": 64,
}


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_chatml_tokenizer({"image_token": "<im_patch>"}, [*CHATML_MARKERS, *IMAGE_MARKERS])
    image_processor = Step3p7ImageProcessor(size={"height": TINY_GLOBAL, "width": TINY_GLOBAL}, patch_size=TINY_CROP)
    processor = Step3p7Processor(image_processor, tokenizer=tokenizer, chat_template=STAND_IN_TEMPLATE)
    config = Step3p7Config(
        vision_config=Step3p7VisionConfig(**TINY_VISION),
        text_config=Step3p7TextConfig(**{**tiny_text_config(tokenizer), **TINY_TEXT}),
        image_token_id=processor.image_token_id,
    )
    torch.manual_seed(0)
    save_tiny(folder, Step3p7ForConditionalGeneration(config), processor)
