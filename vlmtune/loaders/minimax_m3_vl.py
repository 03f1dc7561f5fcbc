"""MiniMax M3 (`MiniMaxM3SparseForConditionalGeneration` + `MiniMaxM3VLProcessor`), the transformers type of
https://huggingface.co/MiniMaxAI/MiniMax-M3.

The LLaVA layout (`model.vision_tower`, `model.multi_modal_projector`, `model.language_model`): a ViT with 2D rotary
positions on a MoE language model (dense and MoE layers, full attention and block-sparse attention with a lightning
indexer). The processor writes each image `]<]image[>[` as one token per merged 2x2 patch, wrapped in
`]<]start of image[>[` / `]<]end of image[>[` itself; video frames carry timestamps.

No copy of MiniMax-M3's chat template was found (searched 2026-12-07): the public MiniMax templates (ms-swift's
MiniMax-Text-01 / VL-01 format) write no `]<]image[>[` token. The tiny model carries a clearly labelled stand-in:
Qwen3-VL's ChatML layout (the outside copy in vlmtune/loaders/qwen3_vl.py) with each image written as this
processor's image token, and no video part (its frames need timestamps, which a stand-in cannot decide). A real
checkpoint trains with its own template: the family record derives the end-of-turn, parts and capabilities
(video included) from the checkpoint's files and checks them before any weight is read (`vlmtune check minimax-m3`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    MiniMaxM3SparseForConditionalGeneration,
    MiniMaxM3VLConfig,
    MiniMaxM3VLImageProcessor,
    MiniMaxM3VLProcessor,
    MiniMaxM3VLTextConfig,
    MiniMaxM3VLVideoProcessor,
    MiniMaxM3VLVisionConfig,
)

from vlmtune.loaders.base import CHATML_MARKERS, TINY_VISION_SIZES, save_tiny, tiny_chatml_tokenizer, tiny_text_config
from vlmtune.loaders.qwen3_vl import CHAT_TEMPLATE

PROC = MiniMaxM3VLProcessor
# Stand-in template (see above): Qwen3-VL's, an image written as the processor's image token, videos refused.
STAND_IN_TEMPLATE = CHAT_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", PROC.IMAGE_TOKEN).replace(
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>", ""
)
assert PROC.IMAGE_TOKEN in STAND_IN_TEMPLATE and "video" not in STAND_IN_TEMPLATE
# 56x56 pixels is 4x4 patches of 14, merged 2x2: 4 tokens per small image; larger ones capped at 16 tokens.
TINY_PIXELS = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 16}
# One dense full-attention layer, one MoE layer with block-sparse attention (4 experts, 2 per token).
TINY_TEXT = {
    "head_dim": 32,
    "rotary_dim": 16,
    "layer_types": ["full_attention", "minimax_m3_sparse"],
    "mlp_layer_types": ["dense", "sparse"],
    "dense_intermediate_size": 256,
    "shared_intermediate_size": 64,
    "intermediate_size": 64,
    "num_local_experts": 4,
    "num_experts_per_tok": 2,
    "index_n_heads": 2,
    "index_head_dim": 32,
    "index_block_size": 16,
    "index_topk_blocks": 4,
}


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_chatml_tokenizer(
        {"image_token": PROC.IMAGE_TOKEN, "video_token": PROC.VIDEO_TOKEN},
        CHATML_MARKERS + [PROC.VISION_START_TOKEN, PROC.VISION_END_TOKEN],
    )
    processor = MiniMaxM3VLProcessor(
        image_processor=MiniMaxM3VLImageProcessor(size=TINY_PIXELS),
        video_processor=MiniMaxM3VLVideoProcessor(),
        tokenizer=tokenizer,
        chat_template=STAND_IN_TEMPLATE,
    )
    text = MiniMaxM3VLTextConfig(**tiny_text_config(tokenizer, **TINY_TEXT))
    config = MiniMaxM3VLConfig(
        text_config=text,
        vision_config=MiniMaxM3VLVisionConfig(**TINY_VISION_SIZES, image_size=56, patch_size=14),
        image_token_index=processor.image_token_id,
        video_token_index=processor.video_token_id,
        projector_hidden_size=text.hidden_size,
    )
    torch.manual_seed(0)
    save_tiny(folder, MiniMaxM3SparseForConditionalGeneration(config), processor)
