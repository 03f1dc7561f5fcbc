"""LLaVA-OneVision (`LlavaOnevisionForConditionalGeneration`), e.g.
https://huggingface.co/llava-hf/llava-onevision-qwen2-0.5b-ov-hf: SigLIP vision tower, Qwen2 language model.

A sample with one image is processed "anyres" (a downscaled base tile plus tiles on the best of
`image_grid_pinpoints`, `pixel_values` [images, tiles, 3, H, W]); a sample with several images gives each only its
base tile (`batch_num_images` says how many images each sample has); a video is a stack of frames
(`pixel_values_videos` [videos, frames, 3, H, W]) whose features are pooled 2x2.

Template revisions tested (tests/template_revisions.py, tests/test_templates.py; every masking shape each):
- `conversion`: ChatML with `{% generation %}` around each reply, as written by huggingface/transformers
  src/transformers/models/llava_onevision/convert_llava_onevision_weights_to_hf.py @01080c6 (the tiny template
  below renders the same text, without the generation blocks);
- `hub-2024-10`: each turn opens "<|im_start|>{role} ", media without newlines, each text part after "\\n", no
  newline between turns, generation prompt "<|im_start|>assistant\\n" (not how a rendered assistant turn opens):
  the hub's chat_template.json as quoted by zjysteven/lmms-finetune collators/llava_onevision.py @706e8c9
  (2024-10-16), and the template of huggingface/transformers
  tests/models/llava_onevision/test_processing_llava_onevision.py @1a6e6ad. Trained: each reply + <|im_end|>.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    LlavaOnevisionConfig,
    LlavaOnevisionForConditionalGeneration,
    LlavaOnevisionImageProcessor,
    LlavaOnevisionProcessor,
    LlavaOnevisionVideoProcessor,
    Qwen2Config,
)

from vlmtune.loaders.base import (
    save_tiny,
    tiny_chatml_tokenizer,
    tiny_siglip_config,
    tiny_text_config,
)

# The prompt format of https://huggingface.co/llava-hf/llava-onevision-qwen2-0.5b-ov-hf (also -7b-ov-hf, -72b-ov-hf;
# their chat_template.json), ChatML without a default system message:
#   "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<image>\n{question}<|im_end|>\n"
#   "<|im_start|>assistant\n{answer}<|im_end|>\n"
# - each turn renders all its images first ("<image>\n" each), then all its videos ("<video>\n" each), then its
#   text parts joined without a separator;
# - the generation prompt is "<|im_start|>assistant\n"; the reply is closed by "<|im_end|>" (trained) + "\n".
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'video' %}{{ '<video>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] }}{% endfor %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# The released checkpoints: SigLIP so400m at 384 px, patches of 14 (729 tokens per tile), pinpoints of 1x1 to
# 6x6 tiles, "anyres_max_9". The tiny model: 16 px, patches of 8 -> 2x2 tokens per tile, up to 3x3 tiles
# (a single image is 4 to a few dozen tokens; one video frame is 1 token after the 2x2 pooling, plus 1 newline).
TINY_IMAGE_SIZE = 16
TINY_PATCH_SIZE = 8
TINY_PINPOINTS = [[16 * h, 16 * w] for h in (1, 2, 3) for w in (1, 2, 3)]


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_chatml_tokenizer({"image_token": "<image>", "video_token": "<video>"})
    config = LlavaOnevisionConfig(
        text_config=Qwen2Config(**tiny_text_config(tokenizer)),
        vision_config=tiny_siglip_config(TINY_IMAGE_SIZE, TINY_PATCH_SIZE),
        image_token_index=tokenizer.image_token_id,
        video_token_index=tokenizer.video_token_id,
        image_grid_pinpoints=TINY_PINPOINTS,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
    )
    torch.manual_seed(0)
    model = LlavaOnevisionForConditionalGeneration(config)
    size = {"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    processor = LlavaOnevisionProcessor(
        image_processor=LlavaOnevisionImageProcessor(size=size, image_grid_pinpoints=TINY_PINPOINTS),
        video_processor=LlavaOnevisionVideoProcessor(size=size),
        tokenizer=tokenizer,
        num_image_tokens=(TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2,
        vision_feature_select_strategy="full",
        vision_aspect_ratio="anyres_max_9",
        chat_template=CHAT_TEMPLATE,
    )
    save_tiny(folder, model, processor)
