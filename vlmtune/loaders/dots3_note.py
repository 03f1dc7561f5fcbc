"""dots3 note (`Dots3NoteForConditionalGeneration` + `Dots3NoteProcessor`): https://huggingface.co/dots-studio/
dots3-note-prev, rednote's omni model: a vision tower with mixture-of-experts blocks and its merger (the projector,
`model.vision_tower.merger`), an audio tower with its adapter (`model.audio_tower`), and an MoE language model with
multi-head latent attention.

vlmtune trains it on images and video: the audio tower is not vision, so the convention leaves it in `others`, frozen
(audio input is not supported). The processor is Qwen2-VL's image processing (Qwen3-VL's for video) with dots' own
tokens: an image is `<|imgpad|>` per merged patch, which the template wraps in `<|img|>` ... `<|endofimg|>`.

No copy of dots3-note's released chat template was found (searched 2026-12-07; a public C++ runtime's text-only
prompt builder shows its turns, `<|system|>...<|endofsystem|><|user|>...<|endofuser|><|assistant|>` closed by
`<|endofassistant|>`, with an empty think block and `<no_think>` in its non-thinking mode). The tiny model carries
a stand-in: the template of its sibling dots.ocr as ms-swift defines it (swift/llm/template/template/dots.py:
system `<|system|>{system}<|endofsystem|>\\n`, turns `<|user|>{query}<|endofuser|><|assistant|>{reply}
<|endofassistant|>`, images `<|img|><|imgpad|><|endofimg|>`). A real checkpoint trains on its own template, checked at
load (`vlmtune check`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Dots3NoteConfig,
    Dots3NoteFeatureExtractor,
    Dots3NoteForConditionalGeneration,
    Dots3NoteProcessor,
    Qwen2VLImageProcessor,
    Qwen3VLVideoProcessor,
)

from vlmtune.loaders.base import save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# The stand-in (see above), our own Jinja for dots.ocr's layout; no default system turn.
STAND_IN_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>{% elif message['role'] == 'user' %}<|user|>"
    "{% else %}<|assistant|>{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|img|><|imgpad|><|endofimg|>"
    "{% elif content['type'] == 'video' %}<|img|><|video_pad|><|endofimg|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{% if message['role'] == 'system' %}<|endofsystem|>\n{% elif message['role'] == 'user' %}<|endofuser|>"
    "{% else %}<|endofassistant|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
MEDIA_TOKENS = ["<|imgpad|>", "<|video_pad|>", "<|audio_comp_pad|>", "<|img|>", "<|endofimg|>"]
MARKERS = ["<|system|>", "<|endofsystem|>", "<|user|>", "<|endofuser|>", "<|assistant|>", "<|endofassistant|>"]
# Patches of 14 merged 2x2: a 56x56 image is 4 tokens; larger images are capped at 64 tokens.
TINY_MIN_PIXELS = 56 * 56
TINY_MAX_PIXELS = 28 * 28 * 64


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        {"eos_token": "<|endofassistant|>", "pad_token": "<|endoftext|>"},
        additional_special_tokens=MARKERS + MEDIA_TOKENS,
    )
    ids = tokenizer.convert_tokens_to_ids
    text = tiny_text_config(tokenizer, head_dim=32, num_key_value_heads=4)
    # Multi-head latent attention, indexed sparse attention and 4 routed experts (+1 shared), shrunk. The indexer keeps
    # its released budget (2048 keys), above the tests' sequence lengths: batched and single rows attend alike.
    text.update(
        moe_intermediate_size=64,
        n_routed_experts=4,
        num_experts_per_tok=2,
        kv_lora_rank=32,
        q_lora_rank=32,
        qk_rope_head_dim=16,
        qk_nope_head_dim=16,
        v_head_dim=32,
        index_topk=2048,
        index_head_dim=16,
        index_n_heads=2,
        shared_experts_intermediate_size=64,
    )
    config = Dots3NoteConfig(
        text_config=text,
        # One dense block, then one block of 4 experts (released: 25 dense, then 4 to 64 experts).
        vision_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "moe_intermediate_size": 32,
            "num_local_experts": 4,
            "num_experts_per_tok": 2,
            "pyramid_num_routed": [-1, 4],
            "adapter_in_dim": 64,
            "adapter_out_dim": text["hidden_size"],
        },
        audio_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "downsample_hidden_size": 16,
            "adapter_input_size": 32,
            "adapter_out_dim": text["hidden_size"],
            "max_position_embeddings": 256,
        },
        image_token_id=ids("<|imgpad|>"),
        video_token_id=ids("<|video_pad|>"),
        audio_token_id=ids("<|audio_comp_pad|>"),
    )
    torch.manual_seed(0)
    pixels = {"min_pixels": TINY_MIN_PIXELS, "max_pixels": TINY_MAX_PIXELS}
    processor = Dots3NoteProcessor(
        # One frame per patch: the vision tower embeds 14x14x3 patches (no temporal pairs, as dots.ocr's).
        image_processor=Qwen2VLImageProcessor(patch_size=14, temporal_patch_size=1, **pixels),
        video_processor=Qwen3VLVideoProcessor(
            patch_size=14,
            temporal_patch_size=1,
            size={"shortest_edge": TINY_MIN_PIXELS, "longest_edge": TINY_MAX_PIXELS * 8},
        ),
        feature_extractor=Dots3NoteFeatureExtractor(),
        tokenizer=tokenizer,
        chat_template=STAND_IN_TEMPLATE,
    )
    save_tiny(folder, Dots3NoteForConditionalGeneration(config), processor)
