"""Finding and loading the parts of `vlmtune compose` (vlmtune/compose.py): the vision tower with its image
processor, the causal LM with its tokenizer, and the refusals of parts that cannot work, each with its reason."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from vlmtune.errors import ArgumentError
from vlmtune.loaders.llava_composed import TINY_PARTS, tiny_part_path

logger = logging.getLogger("vlmtune")

# Vision towers whose model types vLLM's Llava implementation loads (CLIP, SigLIP, Pixtral).
VLLM_TOWERS = {"clip_vision_model", "siglip_vision_model", "pixtral"}
# Two-tower checkpoints (image + text encoders) whose vision half is taken.
DUAL_ENCODERS = {"clip", "siglip", "siglip2", "aimv2"}


def resolve_part(name: str, role: str) -> str:
    """A part's local path: a built-in tiny part, a folder, or a hub id already in the local HF cache."""
    if name in TINY_PARTS:
        return str(tiny_part_path(name))
    if Path(name).is_dir():
        if not (Path(name) / "config.json").is_file():
            raise ArgumentError(f"--{role} {name}: the folder has no config.json (not a transformers checkpoint)")
        return name
    from huggingface_hub import snapshot_download

    try:
        return snapshot_download(name, local_files_only=True)
    except Exception as error:  # huggingface_hub raises several kinds for "not cached" and "not a repo id"
        raise ArgumentError(
            f"--{role} {name!r} is not a built-in tiny part ({', '.join(TINY_PARTS)}), a local folder or a hub id "
            f"in the local Hugging Face cache ({type(error).__name__}); download it first (hf download {name})"
        ) from None


def vision_config_of(config: Any, name: str) -> Any:
    """The tower's config: the config itself, or the vision half of a CLIP/SigLIP-style two-tower checkpoint."""
    if config.model_type in DUAL_ENCODERS:
        config = config.vision_config
    elif hasattr(config, "vision_config") or hasattr(config, "text_config"):
        raise ArgumentError(
            f"--vision {name}: a {config.model_type} checkpoint is not a vision encoder (pass its vision tower alone)"
        )
    if config.model_type == "siglip2_vision_model":
        raise ArgumentError(
            f"--vision {name}: SigLIP2 NaFlex towers need pixel_attention_mask and spatial_shapes, which LLaVA never "
            "passes; use a fixed-resolution SigLIP2 checkpoint (saved as siglip: google/siglip2-so400m-patch14-384)"
        )
    if not hasattr(config, "patch_size"):
        raise ArgumentError(f"--vision {name}: a {config.model_type} config has no patch_size (not a ViT tower)")
    return config


def load_vision(path: str, name: str):
    """(tower, vision config, image processor) of the vision part; the tower's weights must all be in the files."""
    from transformers import MODEL_MAPPING, AutoConfig, AutoImageProcessor

    config = vision_config_of(AutoConfig.from_pretrained(path), name)
    if config.model_type not in VLLM_TOWERS:
        logger.warning(
            "--vision %s: a %s tower trains and runs in transformers, but vLLM's Llava cannot serve it (it loads "
            "CLIP, SigLIP and Pixtral towers only)",
            name,
            config.model_type,
        )
    if getattr(config, "vision_use_head", False):
        # SigLIP's attention-pooling head: LLaVA reads hidden states, never the pooled output (as llava-hf's
        # SigLIP checkpoints, which are saved without it).
        logger.info("      leaving out the tower's pooling head (LLaVA never uses it)")
        config.vision_use_head = False
    tower, info = MODEL_MAPPING[type(config)].from_pretrained(path, config=config, output_loading_info=True)
    if info["missing_keys"]:
        raise ArgumentError(
            f"--vision {name}: weights missing from the checkpoint: {sorted(info['missing_keys'])[:5]}"
        )
    return tower, config, AutoImageProcessor.from_pretrained(path)


def load_llm(path: str, name: str, tokenizer_kwargs: dict[str, Any]):
    """(causal LM, tokenizer) of the language part; a model without a causal LM head is refused."""
    from transformers import MODEL_FOR_CAUSAL_LM_MAPPING, AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(path)
    if hasattr(config, "vision_config"):
        raise ArgumentError(f"--llm {name}: a {config.model_type} checkpoint is a vision model, not a language model")
    heads = [a for a in config.architectures or [] if a.endswith(("ForCausalLM", "LMHeadModel"))]
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING or (config.architectures and not heads):
        raise ArgumentError(
            f"--llm {name}: {', '.join(config.architectures or [config.model_type])} has no causal LM head; "
            "pass a causal (decoder) language model such as Qwen3ForCausalLM"
        )
    llm, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
    missing = [k for k in info["missing_keys"] if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing:
        raise ArgumentError(f"--llm {name}: weights missing from the checkpoint: {sorted(missing)[:5]}")
    # `<image>` (and the connector's other markers) become special tokens and tokenizer attributes (`image_token`),
    # which the processors and vlmtune read.
    return llm, AutoTokenizer.from_pretrained(path, **tokenizer_kwargs)


def set_image_size(image_processor: Any, size: int) -> None:
    """Make the image processor produce `size` x `size` pixels (resize, and the center crop where it has one)."""
    if "shortest_edge" in (image_processor.size or {}):
        image_processor.size = {"shortest_edge": size}
    else:
        image_processor.size = {"height": size, "width": size}
    if getattr(image_processor, "crop_size", None):
        image_processor.crop_size = {"height": size, "width": size}


def count_extra_tokens(tower: Any, image_processor: Any, patch_size: int, name: str) -> tuple[int, int, int]:
    """(height, width, tokens beyond the patches) of the tower's output for one image as the processor makes it:
    1 for a class token (CLIP, DINOv2), 0 for SigLIP and AIMv2, more for register tokens."""
    pixels = image_processor(Image.new("RGB", (64, 64)), return_tensors="pt")["pixel_values"]
    height, width = pixels.shape[-2:]
    try:
        with torch.no_grad():
            hidden = tower(pixel_values=pixels.to(tower.dtype)).last_hidden_state
    except Exception as error:  # a tower that cannot run at the processor's size (no position interpolation)
        raise ArgumentError(
            f"--vision {name}: the tower does not run on {height}x{width} images ({error}); drop --image_size or "
            f"use the size it was trained at ({tower.config.image_size})"
        ) from None
    return height, width, hidden.shape[1] - (height // patch_size) * (width // patch_size)
