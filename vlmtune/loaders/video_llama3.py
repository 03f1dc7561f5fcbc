"""VideoLLaMA3 (`VideoLlama3ForConditionalGeneration`), the transformers-native conversion
https://huggingface.co/lkhl/VideoLLaMA3-2B-Image-HF (DAMO-NLP-SG/VideoLLaMA3-* themselves need remote code).

The released prompt format (chat_template.jinja of lkhl/VideoLLaMA3-2B-Image-HF, read from a public mirror of
the repository; transformers' integration test of that checkpoint expects the same ids for one image turn):

    <|im_start|>system
    {system}<|im_end|>
    <|im_start|>user
    <|image_pad|>
    {user text}<|im_end|>
    <|im_start|>assistant
    {reply}<|im_end|>
    ...

- ChatML; no default system message (the template writes one only when called with `add_system_prompt=True`,
  which chat rendering does not pass).
- Each image is "<|image_pad|>\\n" where it stands, expanded by the processor to one token per merged patch
  (Qwen-style dynamic resolution). Videos render as "<|video_pad|>\\n" and expand to "Time {t}s:" + tokens per
  frame; this checkpoint is the image-only "-Image" model, so the family takes no video.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    VideoLlama3Config,
    VideoLlama3ForConditionalGeneration,
    VideoLlama3ImageProcessor,
    VideoLlama3Processor,
    VideoLlama3VideoProcessor,
)

from vlmtune.loaders.base import (
    TINY_VISION_SIZES,
    save_tiny,
    tiny_chatml_tokenizer,
    tiny_text_config,
)

# Our own Jinja for the released format above (the released one also knows a "stream" role and the
# add_system_prompt switch, which chat rendering never uses).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'text' %}{{ content['text'] }}"
    "{% elif content['type'] == 'image' %}<|image_pad|>\n"
    "{% elif content['type'] == 'video' %}<|video_pad|>\n"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

MEDIA_TOKENS = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>"}
# Patches of 14 pixels: a small image is resized to 28x28 = 4 tokens, a large one to at most 16.
TINY_SIZE = {"shortest_edge": 28 * 28, "longest_edge": 28 * 28 * 4}


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_chatml_tokenizer(MEDIA_TOKENS, ["<|im_start|>"])
    ids = tokenizer.convert_tokens_to_ids
    config = VideoLlama3Config(
        text_config=tiny_text_config(tokenizer),
        vision_config={**TINY_VISION_SIZES, "patch_size": 14},
        image_token_id=ids(MEDIA_TOKENS["image_token"]),
        video_token_id=ids(MEDIA_TOKENS["video_token"]),
    )
    processor = VideoLlama3Processor(
        image_processor=VideoLlama3ImageProcessor(size=TINY_SIZE),
        video_processor=VideoLlama3VideoProcessor(size=TINY_SIZE),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
    )
    torch.manual_seed(0)
    save_tiny(folder, VideoLlama3ForConditionalGeneration(config), processor)
