"""ViP-LLaVA (`VipLlavaForConditionalGeneration` + `LlavaProcessor`): https://huggingface.co/llava-hf/vip-llava-7b-hf,
LLaVA-1.5 trained on visual prompts (arrows, boxes drawn on the image): the CLIP tower's features of several layers
(`vision_feature_layers`) are concatenated, normalised and projected (`model.multi_modal_projector`).

Its prompt format, as far as an outside copy shows it: transformers' tests/models/vipllava/test_processor_vipllava.py
(read with the search tool) quotes the hub template's generation prompt only, "###Human: <image>\\n{question}
###Assistant:", not how a reply ends or how a system prompt and further turns are written. No copy of the whole
template was found (searched 2026-12-07), so the tiny model carries a stand-in: the LLaVA-1.5 template of
vlmtune/loaders/llava.py (llava-hf, cited there), the model ViP-LLaVA is built on. A real checkpoint trains on its own
template; its end-of-turn, parts and capabilities are derived from its files and checked at load (`vlmtune check`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    LlamaConfig,
    LlavaProcessor,
    VipLlavaConfig,
    VipLlavaForConditionalGeneration,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.llava import CHAT_TEMPLATE as STAND_IN_TEMPLATE
from vlmtune.loaders.llava import TINY_IMAGE_SIZE, TINY_PATCH_SIZE, tiny_llama_tokenizer

# The released model concatenates layers (-2, -5, -8, -11, 6) of a 24-layer tower; the 2-layer tiny tower has three.
TINY_FEATURE_LAYERS = [-2, -1, 1]


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_llama_tokenizer()
    config = VipLlavaConfig(
        text_config=LlamaConfig(**tiny_text_config(tokenizer)),
        vision_config=CLIPVisionConfig(
            **TINY_VISION_SIZES, image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE, projection_dim=64
        ),
        image_token_index=tokenizer.image_token_id,
        vision_feature_layers=TINY_FEATURE_LAYERS,
        image_seq_length=(TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2,
    )
    torch.manual_seed(0)
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(
            size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
        ),
        tokenizer=tokenizer,
        patch_size=TINY_PATCH_SIZE,
        vision_feature_select_strategy="default",  # VipLlava drops the class token of every layer
        num_additional_image_tokens=1,
        chat_template=STAND_IN_TEMPLATE,
    )
    save_tiny(folder, VipLlavaForConditionalGeneration(config), processor)
