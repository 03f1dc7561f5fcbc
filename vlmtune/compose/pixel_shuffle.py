"""The pixel-shuffle connector of `vlmtune compose --projector pixel_shuffle`: the parts as a native
`Idefics3ForConditionalGeneration` (Idefics3 / SmolVLM / nanoVLM's connector).

Idefics3's connector folds each `factor x factor` block of patch features into one token (pixel shuffle) and maps
it to the LLM's width with one linear layer: `factor**2` times fewer image tokens than LLaVA's projector (4x at
the default factor 2). Idefics3's vision model is SigLIP's architecture with the same parameter names, so a
SigLIP tower's weights load into it unchanged; other towers are refused. It reads the tower's last layer (after
its final layer norm), so `--vision_feature_layer` does not apply. The checkpoint uses Idefics3's prompt format
(`User:<image>...<end_of_utterance>\\nAssistant: ...`, the bos written only where the LLM's tokenizer has one)
and its processor, without image splitting (one global tile per image, as vlmtune's tiny Idefics3).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from vlmtune.errors import ArgumentError
from vlmtune.loaders.idefics3 import CHAT_TEMPLATE as IDEFICS3_TEMPLATE
from vlmtune.loaders.idefics3 import IMAGE_MARKERS, ROW_COL_TOKENS

logger = logging.getLogger("vlmtune")

FAMILY_ID = "idefics3-composed"
END_OF_TURN = IMAGE_MARKERS["end_of_utterance_token"]
# Idefics3's released template opens with Llama 3's bos text; a composed LLM writes its own bos, or none.
CHAT_TEMPLATE = IDEFICS3_TEMPLATE.replace("<|begin_of_text|>", "{{ bos_token or '' }}", 1)


def check_tower(vision_config: Any, name: str, height: int, factor: int) -> int:
    """The image tokens per image after the shuffle; refuses towers and sizes the connector cannot take."""
    if vision_config.model_type != "siglip_vision_model":
        raise ArgumentError(
            f"--vision {name}: --projector pixel_shuffle builds Idefics3's class, whose vision model is SigLIP's "
            f"architecture; a {vision_config.model_type} tower needs --projector mlp2x_gelu or linear"
        )
    side = height // vision_config.patch_size
    if factor < 1 or side % factor:
        step = vision_config.patch_size * factor
        raise ArgumentError(
            f"--pixel_shuffle_factor {factor}: {side}x{side} patches per image do not split into {factor}x{factor} "
            f"blocks; pass --image_size as a multiple of {step} (patch size x factor)"
        )
    return (side // factor) ** 2


def warn_if_vllm_cannot_serve(llm_config: Any, name: str) -> None:
    """vLLM's Idefics3 builds its text model as Llama (Llama, SmolLM2); other LLMs run in transformers only."""
    if llm_config.model_type != "llama":
        logger.warning(
            "--llm %s: a %s language model with --projector pixel_shuffle trains and runs in transformers, but "
            "vLLM's Idefics3 cannot serve it (it builds the text model as Llama)",
            name,
            llm_config.model_type,
        )


def tokenizer_kwargs() -> dict[str, Any]:
    """What the LLM's tokenizer is loaded with: Idefics3's image markers and end-of-turn as special tokens."""
    return {"extra_special_tokens": IMAGE_MARKERS}


def add_row_col_tokens(tokenizer: Any) -> None:
    """The <row_i_col_j> tokens that Idefics3's processor writes when image splitting is turned on."""
    tokenizer.add_tokens(ROW_COL_TOKENS, special_tokens=True)


def build(
    tower: Any, llm: Any, tokenizer: Any, image_processor: Any, size: int, factor: int, image_tokens: int, seed: int
) -> tuple[Any, Any]:
    """(Idefics3ForConditionalGeneration, Idefics3Processor) holding the parts' weights and a fresh connector."""
    from transformers import (
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        Idefics3VisionConfig,
    )

    source = tower.config
    vision_config = Idefics3VisionConfig(
        **{
            key: getattr(source, key)
            for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "patch_size")
        },
        image_size=source.image_size,
        hidden_act=source.hidden_act,
        layer_norm_eps=source.layer_norm_eps,
    )
    config = Idefics3Config(
        vision_config=vision_config,
        text_config=llm.config,
        scale_factor=factor,
        image_token_id=tokenizer.image_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=llm.config.tie_word_embeddings,
    )
    with torch.device("meta"):
        model = Idefics3ForConditionalGeneration(config)
    with torch.device("cpu"):
        vision_model = type(model.model.vision_model)(vision_config).to(tower.dtype)
        vision_model.load_state_dict(tower.state_dict(), strict=True, assign=True)  # same names as SigLIP's
        torch.manual_seed(seed)
        connector = type(model.model.connector)(config).to(llm.dtype)
    model.model.vision_model = vision_model
    model.model.connector = connector
    model.model.text_model = getattr(llm, llm.base_model_prefix)
    model.lm_head = llm.get_output_embeddings()
    model.generation_config = llm.generation_config

    kwargs = {"do_image_splitting": False, "size": {"longest_edge": size}, "max_image_size": {"longest_edge": size}}
    for key in ("image_mean", "image_std"):  # the tower's own normalisation
        if getattr(image_processor, key, None) is not None:
            kwargs[key] = getattr(image_processor, key)
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(**kwargs),
        tokenizer=tokenizer,
        image_seq_len=image_tokens,
        chat_template=CHAT_TEMPLATE,
    )
    return model, processor
