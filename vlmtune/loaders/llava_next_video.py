"""LLaVA-NeXT-Video (`LlavaNextVideoForConditionalGeneration`), e.g. https://huggingface.co/llava-hf/LLaVA-NeXT-Video-7B-hf
and llava-hf/LLaVA-NeXT-Video-7B-DPO-hf (Vicuna-7B language model, CLIP ViT-L/14-336 vision tower).

Images are LLaVA-NeXT's anyres tiles (`pixel_values` [images, tiles, 3, H, W] and `image_sizes`); a video is a
stack of frames (`pixel_values_videos` [videos, frames, 3, H, W]) whose patch features are average-pooled 2x2, so
one frame costs (H / patch)^2 / 4 `<video>` tokens. A sample may hold images and videos.

The prompt format of the Vicuna checkpoints, the LLaVA-1.5 format with videos after the images of a turn:
    "{system} USER: <video>\\n{question} ASSISTANT: {answer} USER: <image>\\n{question2} ASSISTANT:"
- a system message is its text followed by a space, before the first "USER: ";
- a turn is "{ROLE}: ", then "<image>\\n" per image, then "<video>\\n" per video, then each text part + " ";
- the generation prompt is "ASSISTANT:"; the template renders no end-of-turn: the model stops on eos "</s>", which
  is appended to every reply and trained (`reply_end=None`, as for llava-1.5).
Sources: the released processor's output quoted in zjysteven/lmms-finetune pull request #38: for a system message
"Be Helpful." and a user turn [text "Help.", video] `apply_chat_template(..., add_generation_prompt=True)` of
LLaVA-NeXT-Video renders "Be Helpful. USER: <video>\\nHelp. ASSISTANT:"; transformers' own example prompt
("USER: <video>\\nWhy is this video funny? ASSISTANT:", `LlavaNextVideoForConditionalGeneration.forward`); and the
llava-hf LLaVA-1.5 template for images and assistant turns, which the Vicuna checkpoints share (the conversion script
models/llava_next_video/convert_llava_next_video_weights_to_hf.py: "{SYSTEM_PROMPT} USER: <image>\\n{PROMPT}
ASSISTANT:", assistant ending with "</s> "). The checkpoint's own chat_template.json could not be read offline.
The 34B (Yi, ChatML) and 7B-32K (Mistral, [INST]) video checkpoints use other prompt formats and are not part of
this family.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    LlamaConfig,
    LlavaNextVideoConfig,
    LlavaNextVideoForConditionalGeneration,
    LlavaNextVideoProcessor,
    LlavaNextVideoVideoProcessor,
)

from vlmtune.loaders.base import save_tiny, tiny_text_config
from vlmtune.loaders.llava import tiny_llama_tokenizer
from vlmtune.loaders.llava_next import (
    TINY_IMAGE_SIZE,
    TINY_PINPOINTS,
    TINY_PROCESSOR_KWARGS,
    tiny_image_processor,
    tiny_vision_config,
)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'video' %}{{ '<video>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] + ' ' }}{% endfor %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# vLLM's video pooler divides by `image_size // patch_size**2` (336 // 14**2 = 1 for the released tower; 16 // 8**2
# = 0 for the other tiny LLaVA-NeXT towers): the tiny video tower takes patches of 4 (16 // 4**2 = 1), 4x4 tokens
# per tile, 2x2 per frame after the pooling.
VIDEO_PATCH_SIZE = 4


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_llama_tokenizer(video=True)
    tokens_per_tile = (TINY_IMAGE_SIZE // VIDEO_PATCH_SIZE) ** 2
    config = LlavaNextVideoConfig(
        text_config=LlamaConfig(**tiny_text_config(tokenizer)),
        vision_config=tiny_vision_config(VIDEO_PATCH_SIZE),
        image_token_index=tokenizer.image_token_id,
        video_token_index=tokenizer.video_token_id,
        image_grid_pinpoints=TINY_PINPOINTS,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        spatial_pool_mode="average",
        spatial_pool_stride=2,
        image_seq_length=tokens_per_tile,
        video_seq_length=tokens_per_tile // 4,  # per frame, after the 2x2 pooling
    )
    torch.manual_seed(0)
    model = LlavaNextVideoForConditionalGeneration(config)
    processor = LlavaNextVideoProcessor(
        image_processor=tiny_image_processor(),
        video_processor=LlavaNextVideoVideoProcessor(
            size={"shortest_edge": TINY_IMAGE_SIZE}, crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
        ),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        **{**TINY_PROCESSOR_KWARGS, "patch_size": VIDEO_PATCH_SIZE},
    )
    save_tiny(folder, model, processor)
