"""Idefics3 (`Idefics3ForConditionalGeneration`), e.g. https://huggingface.co/HuggingFaceM4/Idefics3-8B-Llama3.

SmolVLM v1 checkpoints (HuggingFaceTB/SmolVLM-256M-Instruct, -500M-Instruct, SmolVLM-Instruct) are saved as
`model_type: idefics3` with an `Idefics3Processor`, so they load with this family's `load` too (their own chat
template, which starts with "<|im_start|>", comes with the checkpoint).

Template revisions tested (tests/template_revisions.py, tests/test_templates.py; every masking shape each):
- the tiny template below (Idefics3-8B-Llama3's layout, "<|begin_of_text|>" first);
- `smolvlm-v1`: the SmolVLM v1 checkpoints' template ("<|im_start|>" first, same turns), as in huggingface/
  transformers tests/models/smolvlm/test_processing_smolvlm.py @007bc1e.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3ImageProcessor,
    Idefics3Processor,
    Idefics3VisionConfig,
    LlamaConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, load_model_and_processor, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# The prompt format of HuggingFaceM4/Idefics3-8B-Llama3 (its processor's chat template):
#   "<|begin_of_text|>User:<image>What is this?<end_of_utterance>\nAssistant: A cat.<end_of_utterance>\n"
# Every turn is "{Role}: {content}<end_of_utterance>\n" with the role capitalized ("System", "User",
# "Assistant"); when a turn *starts* with an image the space after the colon is dropped ("User:<image>...").
# Images are "<image>" where they stand; the processor expands each one into
# "<fake_token_around_image><global-img><image>*N<fake_token_around_image>" (plus <row_i_col_j> crops when
# splitting). The generation prompt is "Assistant:", so a reply is trained as " {reply}<end_of_utterance>".
# The released template has no special system role: a system message renders as "System: ...".
# Note: the released Llama-3 tokenizer also adds <|begin_of_text|> itself, so processor(text=rendered) starts
# with two BOS tokens (transformers PR #35950); the tiny tokenizer does the same to stay faithful.
BOS = "<|begin_of_text|>"
CHAT_TEMPLATE = (
    "<|begin_of_text|>"
    "{% for message in messages %}"
    "{% if message['content'] is string %}{% set parts = [{'type': 'text', 'text': message['content']}] %}"
    "{% else %}{% set parts = message['content'] %}{% endif %}"
    "{{ message['role'] | capitalize }}{{ ':' if parts[0]['type'] == 'image' else ': ' }}"
    "{% for part in parts %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}"
    "<end_of_utterance>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)

IMAGE_MARKERS = {
    "image_token": "<image>",
    "fake_image_token": "<fake_token_around_image>",
    "global_image_token": "<global-img>",
    "end_of_utterance_token": "<end_of_utterance>",
}
ROW_COL_TOKENS = [f"<row_{i + 1}_col_{j + 1}>" for i in range(6) for j in range(6)]
# A 32x32 image is 4x4 patches of 8, pixel-shuffled by scale_factor 2: 4 <image> tokens per image.
TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_SCALE_FACTOR = 2
TINY_IMAGE_SEQ_LEN = (TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2 // TINY_SCALE_FACTOR**2


def load(path: str, **model_kwargs: Any):
    return load_model_and_processor(path, Idefics3ForConditionalGeneration, **model_kwargs)


def tiny_vision_config(config_class):
    return config_class(
        **TINY_VISION_SIZES,
        image_size=TINY_IMAGE_SIZE,
        patch_size=TINY_PATCH_SIZE,
    )


def tiny_image_kwargs() -> dict[str, Any]:
    """No splitting: every image is squared to TINY_IMAGE_SIZE and becomes one global crop."""
    return {
        "do_image_splitting": False,
        "size": {"longest_edge": TINY_IMAGE_SIZE},
        "max_image_size": {"longest_edge": TINY_IMAGE_SIZE},
    }


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        {"bos_token": BOS, "eos_token": "<|end_of_text|>", "pad_token": "<|reserved_special_token_0|>"},
        extra_special_tokens=IMAGE_MARKERS,
        additional_special_tokens=ROW_COL_TOKENS,
        add_bos=True,
    )
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(**tiny_image_kwargs()),
        tokenizer=tokenizer,
        image_seq_len=TINY_IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )
    save_tiny_model(folder, processor, Idefics3Config, Idefics3VisionConfig, Idefics3ForConditionalGeneration)


def save_tiny_model(folder: Path, processor, config_class, vision_config_class, model_class) -> None:
    """The tiny Idefics3-style model (shared with SmolVLM) around `processor`'s tokenizer, saved with it."""
    tokenizer = processor.tokenizer
    config = config_class(
        text_config=LlamaConfig(**tiny_text_config(tokenizer)),
        vision_config=tiny_vision_config(vision_config_class),
        image_token_id=tokenizer.image_token_id,
        scale_factor=TINY_SCALE_FACTOR,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    save_tiny(folder, model_class(config), processor)
