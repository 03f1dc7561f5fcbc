"""Gemma 3n (`Gemma3nForConditionalGeneration`), e.g. https://huggingface.co/google/gemma-3n-E4B-it, for image-text.

The released prompt format (chat template of google/gemma-3n-E2B-it / -E4B-it, embedded in transformers'
`convert_gemma3n_weights.py`) is Gemma 3's, with other media placeholders:

    <bos><start_of_turn>user
    {system}\\n\\n{user text, each image as <image_soft_token>}<end_of_turn>
    <start_of_turn>model
    {reply}<end_of_turn>
    ...

- No system role: a system message becomes the prefix "{system}\\n\\n" of the first user turn (not trimmed).
- Roles must alternate user/model; text parts are trimmed; an image part is "<image_soft_token>", which the
  processor expands to "\\n\\n<start_of_image>" + "<image_soft_token>" * image_seq_length + "<end_of_image>\\n\\n".
- Audio parts render as "<audio_soft_token>"; audio input is out of scope for vlmtune (the audio tower is loaded
  and stays frozen), so samples are images and text only.

The vision tower is timm's MobileNetV5 (`TimmWrapper`), so this family needs the `timm` package. Its token layout
is part of the model: ids from `vision_config.vocab_offset` are vision tokens embedded by `embed_vision`, ids from
`audio_config.vocab_offset` audio tokens; the tiny tokenizer puts <end_of_image>/<image_soft_token> and
<end_of_audio>/<audio_soft_token> at the end of its vocabulary in that order, as the released one does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    Gemma3nAudioConfig,
    Gemma3nAudioFeatureExtractor,
    Gemma3nConfig,
    Gemma3nForConditionalGeneration,
    Gemma3nProcessor,
    Gemma3nTextConfig,
    Gemma3nVisionConfig,
    PreTrainedTokenizerFast,
    SiglipImageProcessor,
)

from vlmtune.loaders import gemma3
from vlmtune.loaders.base import load_model_and_processor, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import GEMMA_NEWLINE_RUNS, train_tokenizer

# Gemma 3's template with Gemma 3n's image placeholder (the released templates differ in nothing else we render).
CHAT_TEMPLATE = gemma3.CHAT_TEMPLATE.replace("<start_of_image>", "<image_soft_token>")

SPECIAL_TOKENS = gemma3.SPECIAL_TOKENS
# Brackets that open media are ordinary text tokens; the rest are vision / audio tokens at the vocabulary's end.
OPENING_TOKENS = {"boi_token": "<start_of_image>", "boa_token": "<start_of_audio>"}
VISION_TOKENS = {"eoi_token": "<end_of_image>", "image_token": "<image_soft_token>"}
AUDIO_TOKENS = {"eoa_token": "<end_of_audio>", "audio_token": "<audio_soft_token>"}
MARKERS = gemma3.MARKERS

# MobileNetV5 at 1/16 of its channels; its multi-scale fusion output pooled to 2x2: 4 soft tokens per image.
TINY_IMAGE_SIZE = 32
TINY_VISION_ARGS = {"channel_multiplier": 0.0625, "msfa_output_resolution": 2}
TINY_TOKENS_PER_IMAGE = 4


def require_timm() -> None:
    try:
        import timm  # noqa: F401  (optional: only Gemma 3n's vision tower needs it)
    except ImportError as error:
        raise RuntimeError("Gemma 3n's vision tower is a timm model: pip install timm") from error


def load(path: str, **model_kwargs: Any):
    require_timm()
    return load_model_and_processor(path, Gemma3nForConditionalGeneration, **model_kwargs)


def tiny_tokenizer() -> tuple[PreTrainedTokenizerFast, int]:
    """The tiny tokenizer and the id where its vision tokens start (audio tokens follow them)."""
    text = train_tokenizer(
        SPECIAL_TOKENS,
        extra_special_tokens=OPENING_TOKENS,
        additional_special_tokens=MARKERS,
        add_bos=True,
        newline_runs=GEMMA_NEWLINE_RUNS,
    )
    backend = text.backend_tokenizer
    vision_offset = backend.get_vocab_size(with_added_tokens=True)
    backend.add_special_tokens([*VISION_TOKENS.values(), *AUDIO_TOKENS.values()])  # ids appended in this order
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        extra_special_tokens={**OPENING_TOKENS, **VISION_TOKENS, **AUDIO_TOKENS},
        additional_special_tokens=MARKERS,
        model_max_length=text.model_max_length,
        **SPECIAL_TOKENS,
    )
    return tokenizer, vision_offset


def build_tiny(folder: Path) -> None:
    require_timm()
    tokenizer, vision_offset = tiny_tokenizer()
    audio_offset = vision_offset + len(VISION_TOKENS)
    ids = tokenizer.convert_tokens_to_ids
    text_config = Gemma3nTextConfig(
        **tiny_text_config(tokenizer, head_dim=32, sliding_window=64),
        layer_types=["sliding_attention", "full_attention"],
        vocab_size_per_layer_input=vision_offset,  # per-layer embeddings cover the text tokens only, as released
        hidden_size_per_layer_input=16,
        num_kv_shared_layers=0,
        laurel_rank=8,
        activation_sparsity_pattern=[0.0, 0.0],
    )
    vision_config = Gemma3nVisionConfig(
        architecture="mobilenetv5_300m_enc",
        model_args=TINY_VISION_ARGS,
        hidden_size=2048,  # the fusion adapter's output width, fixed by the architecture
        vocab_size=len(VISION_TOKENS),
        vocab_offset=vision_offset,
    )
    audio_config = Gemma3nAudioConfig(
        hidden_size=64,
        conf_num_hidden_layers=1,
        conf_num_attention_heads=2,
        sscp_conv_channel_size=[8, 4],
        vocab_size=len(AUDIO_TOKENS),
        vocab_offset=audio_offset,
    )
    config = Gemma3nConfig(
        text_config=text_config,
        vision_config=vision_config,
        audio_config=audio_config,
        vision_soft_tokens_per_image=TINY_TOKENS_PER_IMAGE,
        boi_token_id=ids(OPENING_TOKENS["boi_token"]),
        eoi_token_id=ids(VISION_TOKENS["eoi_token"]),
        image_token_id=ids(VISION_TOKENS["image_token"]),
        boa_token_id=ids(OPENING_TOKENS["boa_token"]),
        eoa_token_id=ids(AUDIO_TOKENS["eoa_token"]),
        audio_token_id=ids(AUDIO_TOKENS["audio_token"]),
    )
    torch.manual_seed(0)
    model = Gemma3nForConditionalGeneration(config)
    size = {"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    processor = Gemma3nProcessor(
        feature_extractor=Gemma3nAudioFeatureExtractor(),
        image_processor=SiglipImageProcessor(size=size),
        tokenizer=tokenizer,
        image_seq_length=TINY_TOKENS_PER_IMAGE,
        chat_template=CHAT_TEMPLATE,
    )
    # The released generation config stops on <eos> and on <end_of_turn>.
    save_tiny(folder, model, processor, stop_tokens=[tokenizer.eos_token, "<end_of_turn>"])
