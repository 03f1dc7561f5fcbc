"""Idefics2 (`Idefics2ForConditionalGeneration` + `Idefics2Processor`), e.g. https://huggingface.co/HuggingFaceM4/idefics2-8b
and HuggingFaceM4/idefics2-8b-chatty: a SigLIP vision tower, a perceiver resampler (`model.connector`, a fixed
number of latents per image) and a Mistral-7B language model (`model.text_model`).

The released prompt format (the `chat_template` of idefics2-8b's processor_config.json, quoted word for word in
public code found with the search tool: the comment that links huggingface.co/HuggingFaceM4/idefics2-8b/blob/main/
processor_config.json, h2oGPT's prompt types, and the test table of a Rust chat-template port under
"HuggingFaceM4/idefics2-8b-chatty"):

    User:<image>Which digit?<end_of_utterance>\\nAssistant: 7<end_of_utterance>\\n

- Idefics3's layout without its leading "<|begin_of_text|>": each turn is "{Role}: {content}<end_of_utterance>\\n"
  with the role capitalized ("System", "User", "Assistant"), the space after the colon dropped when the turn starts
  with an image; images are "<image>" where they stand. The tokenizer adds "<s>" in front.
- The generation prompt is "Assistant:", so a reply is trained as " {reply}<end_of_utterance>".
- The processor expands each "<image>" into "<fake_token_around_image>" + "<image>" * image_seq_len +
  "<fake_token_around_image>" (per crop when splitting; the released processor splits into 4 crops + the image).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Idefics2Config,
    Idefics2ForConditionalGeneration,
    Idefics2ImageProcessor,
    Idefics2PerceiverConfig,
    Idefics2Processor,
    Idefics2VisionConfig,
    MistralConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.idefics3 import CHAT_TEMPLATE as IDEFICS3_CHAT_TEMPLATE
from vlmtune.loaders.tiny import train_tokenizer

# Idefics3's template without the "<|begin_of_text|>" it writes first (the released Idefics2 one has none).
CHAT_TEMPLATE = IDEFICS3_CHAT_TEMPLATE.removeprefix("<|begin_of_text|>")

IMAGE_MARKERS = {
    "image_token": "<image>",
    "image_boundary_token": "<fake_token_around_image>",
    "end_of_utterance_token": "<end_of_utterance>",
}
# 32x32 images in patches of 8; the resampler turns each image into 4 latents, so 4 <image> tokens per image.
TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_LATENTS = 4


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<unk>"},
        extra_special_tokens=IMAGE_MARKERS,
        add_bos=True,
    )
    image_processor = Idefics2ImageProcessor(
        do_image_splitting=False, size={"shortest_edge": TINY_IMAGE_SIZE, "longest_edge": TINY_IMAGE_SIZE}
    )
    processor = Idefics2Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=TINY_LATENTS, chat_template=CHAT_TEMPLATE
    )
    config = Idefics2Config(
        text_config=MistralConfig(**tiny_text_config(tokenizer, sliding_window=None)),
        vision_config=Idefics2VisionConfig(
            **TINY_VISION_SIZES, image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE
        ),
        perceiver_config=Idefics2PerceiverConfig(
            hidden_size=128,
            resampler_n_latents=TINY_LATENTS,
            resampler_depth=1,
            resampler_n_heads=2,
            resampler_head_dim=32,
            num_key_value_heads=1,
        ),
        image_token_id=tokenizer.image_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    save_tiny(folder, Idefics2ForConditionalGeneration(config), processor)
