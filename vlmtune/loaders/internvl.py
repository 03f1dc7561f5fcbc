"""InternVL 3 in transformers' native classes (`InternVLForConditionalGeneration`), e.g.
https://huggingface.co/OpenGVLab/InternVL3-1B-hf (also -2B-hf, -8B-hf).

The released prompt format (chat_template.json of the -hf checkpoints, ChatML on a Qwen2.5 tokenizer):

    <|im_start|>system\\n{system}<|im_end|>\\n            (only when the conversation has a system message)
    <|im_start|>user\\n<IMG_CONTEXT>\\n{text}<|im_end|>\\n
    <|im_start|>assistant\\n{reply}<|im_end|>\\n

- No default system message is inserted and text parts are written as they are (no trimming).
- An image part is "<IMG_CONTEXT>\\n", a video part "<video>\\n", at their place among the turn's parts.
- The processor expands each image to "<img>" + "<IMG_CONTEXT>" * (image_seq_length * tiles) + "</img>" and each
  video to one "Frame{i}: <img>...</img>" line per frame; image tiles and video frames both go to `pixel_values`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    GotOcr2ImageProcessor,
    InternVLConfig,
    InternVLForConditionalGeneration,
    InternVLProcessor,
    InternVLVideoProcessor,
    InternVLVisionConfig,
    Qwen2Config,
)

from vlmtune.loaders.base import (
    TINY_VISION_SIZES,
    save_tiny,
    tiny_chatml_tokenizer,
    tiny_text_config,
)

# Our own Jinja for the released format above.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif part['type'] == 'video' %}<video>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}"
    "{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

MEDIA_TOKENS = {
    "start_image_token": "<img>",
    "end_image_token": "</img>",
    "context_image_token": "<IMG_CONTEXT>",
    "image_token": "<IMG_CONTEXT>",  # alias, so that tokenizer.image_token(_id) exist like in other families
    "video_token": "<video>",
}
MARKERS = ["<|im_start|>", "<|im_end|>"]

# 32x32 tiles in patches of 8 = 4x4 patches, pixel-shuffled by 0.5 to 2x2: 4 tokens per tile or video frame.
# Tiling stays on as in the released processor, but capped at 2 tiles (+1 thumbnail) per image.
TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_TOKENS_PER_TILE = 4
TINY_MAX_TILES = 2


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_chatml_tokenizer(MEDIA_TOKENS, MARKERS)
    size = {"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    config = InternVLConfig(
        text_config=Qwen2Config(**tiny_text_config(tokenizer)),
        vision_config=InternVLVisionConfig(
            **TINY_VISION_SIZES,
            image_size=[TINY_IMAGE_SIZE, TINY_IMAGE_SIZE],
            patch_size=[TINY_PATCH_SIZE, TINY_PATCH_SIZE],
        ),
        image_token_id=tokenizer.convert_tokens_to_ids(MEDIA_TOKENS["context_image_token"]),
        image_seq_length=TINY_TOKENS_PER_TILE,
        downsample_ratio=0.5,
        vision_feature_layer=-1,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    model = InternVLForConditionalGeneration(config)
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=True, max_patches=TINY_MAX_TILES),
        video_processor=InternVLVideoProcessor(size=size),
        tokenizer=tokenizer,
        image_seq_length=TINY_TOKENS_PER_TILE,
        chat_template=CHAT_TEMPLATE,
    )
    save_tiny(folder, model, processor)
