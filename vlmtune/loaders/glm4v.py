"""GLM-4.1V (`Glm4vForConditionalGeneration`, model type glm4v), e.g. https://huggingface.co/zai-org/GLM-4.1V-9B-Thinking.

The released prompt format (chat_template of zai-org/GLM-4.1V-9B-Thinking, quoted verbatim as
"official_chat_template" in public evaluation records found with the search tool, and matching vLLM's GLM-4.1V
example prompt):

    [gMASK]<sop><|system|>
    {system}<|user|>
    {user text, each image as <|begin_of_image|><|image|><|end_of_image|>}<|assistant|>
    {reply}<|user|>
    ...

- No separators between turns: each role marker opens its turn; the generation prompt is "<|assistant|>\\n".
- System and assistant content are written with `{{ msg.content }}`: they must be strings (a list of parts would
  be written as its Python repr); the GLM-4V collator passes them as strings. User parts are written in order
  without separators; a video part is "<|begin_of_video|><|video|><|end_of_video|>".
- Assistant text is written verbatim: the template has no thinking logic (GLM-4.1V-9B-Thinking answers as
  "<think>...</think><answer>...</answer>"; replies are trained as the data writes them). The conversation
  renders prefix by prefix.
- No end-of-turn text follows a reply: the next turn's "<|user|>" closes it, and the released generation config
  stops on <|endoftext|>, <|user|> and <|observation|>. vlmtune trains "<|user|>" after each reply as its
  end-of-turn (the GLM-4V collator appends it after the last reply, as GLM's own fine-tuning scripts do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import (
    Glm4vConfig,
    Glm4vForConditionalGeneration,
    Glm4vImageProcessor,
    Glm4vProcessor,
    Glm4vVideoProcessor,
)

from vlmtune.loaders.base import load_model_and_processor, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# Our own Jinja for the released format above (without the `metadata` form of assistant turns).
CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}<|system|>\n{{ message['content'] }}"
    "{% elif message['role'] == 'user' %}<|user|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'video' %}<|begin_of_video|><|video|><|end_of_video|>"
    "{% elif part['type'] == 'image' %}<|begin_of_image|><|image|><|end_of_image|>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% elif message['role'] == 'assistant' %}<|assistant|>\n{{ message['content'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

MARKERS = [
    "[gMASK]",
    "<sop>",
    "<|system|>",
    "<|user|>",
    "<|assistant|>",
    "<|observation|>",
    "<|begin_of_image|>",
    "<|end_of_image|>",
    "<|begin_of_video|>",
    "<|end_of_video|>",
    "<think>",
    "</think>",
]
MEDIA_TOKENS = {"image_token": "<|image|>", "video_token": "<|video|>"}
# 56x56 pixels is 4x4 patches of 14, merged 2x2: 4 tokens per small image; larger ones are capped at 64 tokens.
TINY_SIZE = {"shortest_edge": 56 * 56, "longest_edge": 28 * 28 * 64}


def load(path: str, **model_kwargs: Any):
    return load_model_and_processor(path, Glm4vForConditionalGeneration, **model_kwargs)


def tiny_processor(
    processor_class: type = Glm4vProcessor,
    image_processor_class: type = Glm4vImageProcessor,
    video_processor_class: type = Glm4vVideoProcessor,
):
    """A GLM-V processor (of the given classes) with a tiny tokenizer, tiny image sizes and the GLM-4.1V chat
    template."""
    tokenizer = train_tokenizer(
        {"eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>"},
        extra_special_tokens=MEDIA_TOKENS,
        additional_special_tokens=MARKERS,
    )
    return processor_class(
        image_processor=image_processor_class(size=TINY_SIZE),
        video_processor=video_processor_class(size=TINY_SIZE),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )


def tiny_config_kwargs(tokenizer) -> dict[str, Any]:
    """Vision sizes, rotary layout and token ids shared by the tiny GLM-V models (text sizes come separately)."""
    ids = tokenizer.convert_tokens_to_ids
    return {
        "vision_config": {
            "depth": 2,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_heads": 2,
            "out_hidden_size": 128,
            "image_size": 56,
            "patch_size": 14,
        },
        "image_token_id": ids(MEDIA_TOKENS["image_token"]),
        "video_token_id": ids(MEDIA_TOKENS["video_token"]),
        "image_start_token_id": ids("<|begin_of_image|>"),
        "image_end_token_id": ids("<|end_of_image|>"),
        "video_start_token_id": ids("<|begin_of_video|>"),
        "video_end_token_id": ids("<|end_of_video|>"),
    }


# head_dim 32 with GLM's partial rotary factor 0.5 -> 8 rotary frequencies over (time, height, width), like the
# released [8, 12, 12] of 32.
TINY_ROPE = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.5, "mrope_section": [2, 3, 3]}


def build_tiny(folder: Path) -> None:
    processor = tiny_processor()
    tokenizer = processor.tokenizer
    config = Glm4vConfig(
        text_config=tiny_text_config(tokenizer, head_dim=32, rope_parameters=TINY_ROPE),
        **tiny_config_kwargs(tokenizer),
    )
    torch.manual_seed(0)
    model = Glm4vForConditionalGeneration(config)
    # The released generation config stops on <|endoftext|>, <|user|> and <|observation|>.
    save_tiny(folder, model, processor, stop_tokens=[processor.tokenizer.eos_token, "<|user|>", "<|observation|>"])
