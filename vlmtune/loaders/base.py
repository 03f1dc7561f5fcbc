"""What every family loader shares: `from_pretrained` of model and processor, and tiny-config helpers."""

from __future__ import annotations

from typing import Any

from transformers import AutoProcessor, PreTrainedModel, ProcessorMixin, SiglipVisionConfig

from vlmtune.loaders.released import save_released
from vlmtune.loaders.tiny import train_tokenizer


def load_model_and_processor(
    path: str, model_class: type[PreTrainedModel], **model_kwargs: Any
) -> tuple[PreTrainedModel, ProcessorMixin]:
    """Load a checkpoint (hub id or local folder) with the family's model class and the saved processor.

    `model_kwargs` go to `from_pretrained` as they are (dtype, quantization_config, attn_implementation,
    trust_remote_code, device_map).
    """
    trust_remote_code = model_kwargs.get("trust_remote_code", False)
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    model = model_class.from_pretrained(path, **model_kwargs)
    return model, processor


def load_auto(path: str, **model_kwargs: Any) -> tuple[PreTrainedModel, ProcessorMixin]:
    """The loader of a family whose checkpoints load with `AutoModelForImageTextToText` (most of them)."""
    from transformers import AutoModelForImageTextToText

    return load_model_and_processor(path, AutoModelForImageTextToText, **model_kwargs)


# The vision tower of every tiny model: 2 layers, 64 wide (the image and patch sizes are the family's).
TINY_VISION_SIZES = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 2}


# Template markers of Qwen's ChatML (Qwen1.5 to Qwen3, and the VLMs built on them), kept as single tokens.
CHATML_MARKERS = ["<|im_start|>", "<|im_end|>"]


def tiny_chatml_tokenizer(media_tokens: dict[str, str] | None = None, markers: list[str] | None = None):
    """The tiny tokenizer of a family on a Qwen LLM: no bos, eos `<|im_end|>`, pad `<|endoftext|>`, the family's
    media tokens (`{"image_token": ...}`) and template markers (ChatML's by default) as special tokens."""
    return train_tokenizer(
        {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
        extra_special_tokens=media_tokens,
        additional_special_tokens=CHATML_MARKERS if markers is None else markers,
    )


def tiny_siglip_config(image_size: int, patch_size: int) -> SiglipVisionConfig:
    """The tiny SigLIP tower of every family built on SigLIP, without the pooling head (as released VLMs have it)."""
    return SiglipVisionConfig(**TINY_VISION_SIZES, image_size=image_size, patch_size=patch_size, vision_use_head=False)


def tiny_text_config(tokenizer, **overrides: Any) -> dict[str, Any]:
    """Sizes of a tiny decoder (2 layers, 128 wide) with the tokenizer's vocabulary and special-token ids.

    The special ids must come from the tiny tokenizer: the real configs carry ids outside its vocabulary.
    """
    config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config.update(overrides)
    return config


def save_tiny(folder, model: PreTrainedModel, processor: ProcessorMixin, stop_tokens: list[str] | None = None) -> None:
    """Write a tiny checkpoint the way a released one is laid out (safetensors weights in the released key
    layout + processor files).

    Generation stops on the tokenizer's eos, or on every token of `stop_tokens` where the released generation
    config lists several (e.g. eos and the end-of-turn token).
    """
    tokenizer = processor.tokenizer
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = (
        tokenizer.convert_tokens_to_ids(stop_tokens) if stop_tokens else tokenizer.eos_token_id
    )
    save_released(model, folder)  # the released key layout, so that vLLM loads tiny bases too
    processor.save_pretrained(folder)
