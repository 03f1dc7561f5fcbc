"""Llama 4 (`Llama4ForConditionalGeneration`, mixture of experts), e.g.
https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E-Instruct and meta-llama/Llama-4-Maverick-17B-128E-Instruct.

The released prompt format: the chat template that transformers ships as `Llama4Processor`'s default
(`transformers/models/llama4/processing_llama4.py`; the same string that transformers' `convert_llama4_weights_to_hf`
writes into the -Instruct checkpoints), which the tiny processor keeps as it is:

    <|begin_of_text|><|header_start|>system<|header_end|>\\n\\n{system}<|eot|>
    <|header_start|>user<|header_end|>\\n\\n{user text, each image as <|image|>}<|eot|>
    <|header_start|>assistant<|header_end|>\\n\\n{reply}<|eot|>...

(shown on several lines; the template writes no newline between turns).
- The system block is written only when a system message is given (its first text part, trimmed); unlike
  Llama 3.2 there is no date block, and images and a system prompt go together.
- The processor expands each `<|image|>` into `<|image_start|>`, then for an image cut into several tiles each
  tile's `<|patch|>` tokens with `<|tile_x_separator|>` / `<|tile_y_separator|>` between them, then `<|image|>`
  and the global view's `<|patch|>` tokens, then `<|image_end|>`. The model puts the image features at the
  `<|patch|>` tokens (`config.image_token_index`).
- Replies end with `<|eot|>`, the -Instruct tokenizer's eos.

The image processor returns bfloat16 `pixel_values` (it rescales in bfloat16, as Meta's code does) and the vision
model does not cast them, so a model loaded in another dtype fails on images; `load` adds a forward pre-hook
(public torch API) that casts the pixels to the vision model's dtype.

Mixture of experts: the text decoder's `Llama4TextMoe` has a `Llama4Router` (an nn.Linear subclass), a shared
expert (plain nn.Linear layers) and the routed experts as fused 3-D parameters (`experts.gate_up_proj`
[experts, hidden, 2 * expert_dim] and `experts.down_proj`). transformers 5.23 computes no load-balancing loss
for Llama 4 (`router_aux_loss_coef` is in the config but unused), so there is no auxiliary loss to keep.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    Llama4Config,
    Llama4ForConditionalGeneration,
    Llama4ImageProcessor,
    Llama4Processor,
    Llama4TextConfig,
    Llama4VisionConfig,
)

from vlmtune.loaders.base import load_model_and_processor, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

SPECIAL_TOKENS = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot|>", "pad_token": "<|finetune_right_pad_id|>"}
# The processor's image layout; <|patch|> is the token the model replaces with image features.
IMAGE_LAYOUT_TOKENS = [
    "<|image_start|>",
    "<|image|>",
    "<|patch|>",
    "<|tile_x_separator|>",
    "<|tile_y_separator|>",
    "<|image_end|>",
]
MARKERS = ["<|header_start|>", "<|header_end|>", "<|end_of_text|>", "<|eom|>", "<|python_start|>", "<|python_end|>"]
STOP_TOKENS = ["<|end_of_text|>", "<|eom|>", "<|eot|>"]

# Tiles of 32x32 pixels in patches of 8, pixel-shuffled by 0.5: 4 <|patch|> tokens per tile, at most 4 tiles.
TINY_TILE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_MAX_TILES = 4
TINY_VISION_HIDDEN = 64


def cast_pixels_to_model_dtype(vision_model: nn.Module, args: tuple) -> tuple:
    """Forward pre-hook of the vision model: its first argument, the pixels, in the model's own dtype."""
    pixel_values, *rest = args
    return (pixel_values.to(vision_model.dtype), *rest)


def load(path: str, **model_kwargs: Any):
    model, processor = load_model_and_processor(path, Llama4ForConditionalGeneration, **model_kwargs)
    model.vision_model.register_forward_pre_hook(cast_pixels_to_model_dtype)
    return model, processor


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        SPECIAL_TOKENS,
        extra_special_tokens={"image_token": "<|patch|>"},
        additional_special_tokens=MARKERS + [t for t in IMAGE_LAYOUT_TOKENS if t != "<|patch|>"],
        add_bos=True,
    )
    ids = tokenizer.convert_tokens_to_ids
    # Two layers as Maverick interleaves them: a dense one, then a mixture of 4 experts (top-1) + a shared expert.
    text_config = Llama4TextConfig(
        **tiny_text_config(
            tokenizer,
            head_dim=32,
            intermediate_size=64,  # per expert
            intermediate_size_mlp=256,  # dense layers
            num_local_experts=4,
            num_experts_per_tok=1,
            interleave_moe_layer_step=2,
        )
    )
    vision_config = Llama4VisionConfig(
        hidden_size=TINY_VISION_HIDDEN,
        intermediate_size=TINY_VISION_HIDDEN * 4,  # the pixel shuffle makes 4x wider patches for the adapter
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=TINY_TILE_SIZE,
        patch_size=TINY_PATCH_SIZE,
        projector_input_dim=128,
        projector_output_dim=128,
        vision_output_dim=128,
    )
    config = Llama4Config(
        text_config=text_config,
        vision_config=vision_config,
        boi_token_index=ids("<|image_start|>"),
        eoi_token_index=ids("<|image_end|>"),
        image_token_index=ids("<|patch|>"),
    )
    torch.manual_seed(0)
    model = Llama4ForConditionalGeneration(config)
    image_processor = Llama4ImageProcessor(
        size={"height": TINY_TILE_SIZE, "width": TINY_TILE_SIZE}, max_patches=TINY_MAX_TILES
    )
    # No chat_template argument: the processor's default is the released template.
    processor = Llama4Processor(image_processor=image_processor, tokenizer=tokenizer, patch_size=TINY_PATCH_SIZE)
    save_tiny(folder, model, processor, stop_tokens=STOP_TOKENS)
