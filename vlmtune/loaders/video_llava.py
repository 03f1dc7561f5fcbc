"""Video-LLaVA (`VideoLlavaForConditionalGeneration` + `VideoLlavaProcessor`): https://huggingface.co/LanguageBind/
Video-LLaVA-7B-hf, a Vicuna language model with two LanguageBind CLIP towers, one for images (`model.image_tower`)
and one for videos (`model.video_tower`, 8 frames), and one projector (`model.multi_modal_projector`).

Its prompt format as transformers documents it: "USER: <video>\\n{question} ASSISTANT:" (the example of
`VideoLlavaForConditionalGeneration.forward` and docs/source/en/model_doc/video_llava.md), the Vicuna LLaVA format.
No copy of the checkpoint's own chat template was found (searched 2026-12-07), so the tiny model carries a stand-in:
the LLaVA-NeXT-Video (Vicuna) template of vlmtune/loaders/llava_next_video.py (sources cited there), the nearest
sibling with the same "USER: ... ASSISTANT:" turns and `<image>` / `<video>` placeholders. A real checkpoint trains on
its own template, derived and checked at load (`vlmtune check`).

Two towers break the convention of one vision part: the record names both (vlmtune/supported_models.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    VideoLlavaConfig,
    VideoLlavaForConditionalGeneration,
    VideoLlavaImageProcessor,
    VideoLlavaProcessor,
    VideoLlavaVideoProcessor,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.llava import TINY_IMAGE_SIZE, TINY_PATCH_SIZE, tiny_llama_tokenizer
from vlmtune.loaders.llava_next_video import CHAT_TEMPLATE as STAND_IN_TEMPLATE

TINY_TOKENS = (TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_llama_tokenizer(video=True)
    config = VideoLlavaConfig(
        text_config=LlamaConfig(**tiny_text_config(tokenizer)),
        vision_config=CLIPVisionConfig(
            **TINY_VISION_SIZES, image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE, projection_dim=64
        ),
        image_token_index=tokenizer.image_token_id,
        video_token_index=tokenizer.video_token_id,
        image_seq_length=TINY_TOKENS,
        video_seq_length=TINY_TOKENS + 1,  # per frame, the class token kept (as the released model)
    )
    torch.manual_seed(0)
    size = {"shortest_edge": TINY_IMAGE_SIZE}
    crop = {"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    processor = VideoLlavaProcessor(
        image_processor=VideoLlavaImageProcessor(size=size, crop_size=crop),
        video_processor=VideoLlavaVideoProcessor(size=size, crop_size=crop),
        tokenizer=tokenizer,
        patch_size=TINY_PATCH_SIZE,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=STAND_IN_TEMPLATE,
    )
    save_tiny(folder, VideoLlavaForConditionalGeneration(config), processor)
