"""Gemma 4 unified (`Gemma4UnifiedForConditionalGeneration` + `Gemma4UnifiedProcessor`), e.g.
https://huggingface.co/google/gemma-4-12B-it: an encoder-free Gemma 4. No vision or audio tower: raw merged pixel
patches go through a small embedder inside the model (`model.embed_vision`: norms, a dense layer and factorized
position embeddings, then `model.embed_vision.multimodal_embedder`, the norm + linear into the language model) and raw
waveform frames through `model.embed_audio` (a norm + linear).

vlmtune trains it on images: `model.embed_vision` is the vision encoder, its `multimodal_embedder` the projector, and
the audio embedder is not vision, so it sits in `others`, frozen (audio input is not supported). Video is off as for
gemma4: the processor writes each frame's timestamp, which vlmtune's frames do not carry.

The processor is Gemma 4's (the same image, begin/end-of-image, video and audio tokens; `<|image|>` expanded to
`<|image>` + soft tokens + `<image|>`), so the tiny model reuses gemma4's tokenizer pieces and, as a stand-in, gemma4's
template (the released E2B/E4B format, vlmtune/loaders/gemma4.py). No copy of gemma-4-12B-it's own template was found
(searched 2026-12-07); a real checkpoint trains on its own, its end-of-turn, parts and capabilities derived from its
files and checked at load (`vlmtune check`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Gemma4UnifiedAudioConfig,
    Gemma4UnifiedAudioFeatureExtractor,
    Gemma4UnifiedConfig,
    Gemma4UnifiedForConditionalGeneration,
    Gemma4UnifiedImageProcessor,
    Gemma4UnifiedProcessor,
    Gemma4UnifiedTextConfig,
    Gemma4UnifiedVideoProcessor,
    Gemma4UnifiedVisionConfig,
)

from vlmtune.loaders.base import save_tiny, tiny_text_config
from vlmtune.loaders.gemma4 import CHAT_TEMPLATE, MEDIA_TOKENS, tiny_tokenizer

# Patches of 8 merged 3x3 (24x24 pixels per soft token), at most 70 soft tokens per image, as gemma4's tiny model.
TINY_PATCH_SIZE = 8
TINY_POOLING = 3
TINY_SOFT_TOKENS = 70
TINY_AUDIO_SAMPLES = 16  # waveform samples per audio soft token (released: 640, 40 ms at 16 kHz)


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    sizes = tiny_text_config(tokenizer, head_dim=32, sliding_window=64)
    # The full-attention layer's own head size and kv heads (per_layer_config; released: 512 wide).
    text_config = Gemma4UnifiedTextConfig(
        **sizes,
        layer_types=["sliding_attention", "full_attention"],
        global_head_dim=32,
        num_global_key_value_heads=sizes["num_key_value_heads"],
    )
    config = Gemma4UnifiedConfig(
        text_config=text_config,
        vision_config=Gemma4UnifiedVisionConfig(
            patch_size=TINY_PATCH_SIZE,
            pooling_kernel_size=TINY_POOLING,
            mm_embed_dim=64,
            mm_posemb_size=64,
            output_proj_dims=64,
        ),
        audio_config=Gemma4UnifiedAudioConfig(audio_embed_dim=TINY_AUDIO_SAMPLES),
        boi_token_id=ids(MEDIA_TOKENS["boi_token"]),
        eoi_token_id=ids(MEDIA_TOKENS["eoi_token"]),
        image_token_id=ids(MEDIA_TOKENS["image_token"]),
        video_token_id=ids("<|video|>"),
        boa_token_id=ids(MEDIA_TOKENS["boa_token"]),
        eoa_token_index=ids(MEDIA_TOKENS["eoa_token"]),
        audio_token_id=ids(MEDIA_TOKENS["audio_token"]),
    )
    torch.manual_seed(0)
    model = Gemma4UnifiedForConditionalGeneration(config)
    vision = {"patch_size": TINY_PATCH_SIZE, "pooling_kernel_size": TINY_POOLING, "max_soft_tokens": TINY_SOFT_TOKENS}
    processor = Gemma4UnifiedProcessor(
        feature_extractor=Gemma4UnifiedAudioFeatureExtractor(
            feature_size=TINY_AUDIO_SAMPLES, audio_samples_per_token=TINY_AUDIO_SAMPLES
        ),
        image_processor=Gemma4UnifiedImageProcessor(**vision),
        video_processor=Gemma4UnifiedVideoProcessor(**vision),
        tokenizer=tokenizer,
        image_seq_length=TINY_SOFT_TOKENS,
        chat_template=CHAT_TEMPLATE,
    )
    # Gemma 4's generation config stops on <eos> and on <turn|>.
    save_tiny(folder, model, processor, stop_tokens=[tokenizer.eos_token, "<turn|>"])
