"""Composed LLaVA models (`vlmtune compose`): any vision tower + any causal LM + a fresh projector, saved as a native
`LlavaForConditionalGeneration` checkpoint. This module holds the family's loader, its tiny model and the built-in
tiny *parts* that `vlmtune compose` accepts offline:

    tiny-siglip   SigLIP vision tower (no class token), 32 px, patches of 8 -> 16 image tokens
    tiny-clip     CLIP vision tower (one class token), 32 px, patches of 8
    tiny-qwen3    Qwen3 causal LM, tied embeddings, ChatML tokens and a text-only Qwen3-style chat template
    tiny-llama    Llama causal LM, <s>/</s> tokens and no chat template (a base model)

Each part is a random model of the real transformers classes with a small locally trained tokenizer, cached like
the tiny models (vlmtune/loaders/tiny.py). `tiny-llava-composed` (and `tiny-idefics3-composed`, with the pixel-shuffle
connector) is made by `vlmtune compose` itself from tiny-siglip and tiny-qwen3, so every registry-wide test runs
through compose.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from transformers import (
    CLIPImageProcessor,
    CLIPVisionConfig,
    CLIPVisionModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
    SiglipImageProcessor,
    SiglipVisionModel,
)

from vlmtune.loaders.base import (
    TINY_VISION_SIZES,
    tiny_chatml_tokenizer,
    tiny_siglip_config,
    tiny_text_config,
)
from vlmtune.loaders.tiny import ensure_tiny_checkpoint, train_tokenizer

TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8

# A Qwen3-style text-only template: it reads every message's content as a string (as the released Qwen3 template
# does), so it cannot render image parts and compose falls back to ChatML for it.
QWEN3_TEXT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def build_tiny(folder: Path) -> None:
    from vlmtune.compose.build import compose  # compose imports this module for its tiny parts

    compose("tiny-siglip", "tiny-qwen3", folder)


def build_tiny_pixel_shuffle(folder: Path) -> None:
    """tiny-idefics3-composed: the same parts with the pixel-shuffle connector (Idefics3's class)."""
    from vlmtune.compose.build import compose

    compose("tiny-siglip", "tiny-qwen3", folder, projector="pixel_shuffle")


def build_tiny_siglip(folder: Path) -> None:
    config = tiny_siglip_config(TINY_IMAGE_SIZE, TINY_PATCH_SIZE)
    torch.manual_seed(0)
    SiglipVisionModel(config).save_pretrained(folder)
    SiglipImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}).save_pretrained(folder)


def build_tiny_clip(folder: Path) -> None:
    config = CLIPVisionConfig(
        **TINY_VISION_SIZES, image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE, projection_dim=64
    )
    torch.manual_seed(0)
    CLIPVisionModel(config).save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    ).save_pretrained(folder)


def build_tiny_qwen3(folder: Path) -> None:
    # Qwen3 instruct tokenizer: no bos, eos "<|im_end|>", pad "<|endoftext|>"; no image token (a text model).
    tokenizer = tiny_chatml_tokenizer()
    tokenizer.chat_template = QWEN3_TEXT_TEMPLATE
    config = Qwen3Config(**tiny_text_config(tokenizer, head_dim=32), tie_word_embeddings=True)
    save_tiny_llm(folder, Qwen3ForCausalLM, config, tokenizer)


def build_tiny_llama(folder: Path) -> None:
    tokenizer = train_tokenizer(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}, add_bos=True
    )
    config = LlamaConfig(**tiny_text_config(tokenizer), tie_word_embeddings=False)
    save_tiny_llm(folder, LlamaForCausalLM, config, tokenizer)


def save_tiny_llm(folder: Path, model_class: type, config: Any, tokenizer: Any) -> None:
    torch.manual_seed(0)
    model = model_class(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


TINY_PARTS: dict[str, Callable[[Path], None]] = {
    "tiny-siglip": build_tiny_siglip,
    "tiny-clip": build_tiny_clip,
    "tiny-qwen3": build_tiny_qwen3,
    "tiny-llama": build_tiny_llama,
}


def tiny_part_path(name: str) -> Path:
    """The cached folder of a built-in tiny part, built on first use."""
    return ensure_tiny_checkpoint(f"part-{name}", TINY_PARTS[name])
