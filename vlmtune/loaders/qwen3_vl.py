"""Qwen3-VL, dense and MoE: https://huggingface.co/Qwen/Qwen3-VL-2B-Instruct and Qwen/Qwen3-VL-30B-A3B-Instruct.

The released prompt format (`chat_template.json` of Qwen/Qwen3-VL-{2B,4B,8B,32B}-Instruct and
-{30B-A3B,235B-A22B}-Instruct; the same text is embedded in their GGUF exports, e.g. the
"Qwen3-VL-30B-A3B-Instruct-Q8_0" template found with the search tool):

    <|im_start|>system
    {system}<|im_end|>
    <|im_start|>user
    {user text, each image as <|vision_start|><|image_pad|><|vision_end|>, each video with <|video_pad|>}<|im_end|>
    <|im_start|>assistant
    {reply}<|im_end|>
    ...

- ChatML like Qwen2-VL, but without a default system message: the system turn is only written when given.
- Text parts are written as they are (no trimming); the generation prompt is "<|im_start|>assistant\\n".
- The processor expands an image's <|image_pad|> into one token per merged 32x32 patch. A video's <|video_pad|>
  becomes, per pair of frames, "<{t:.1f} seconds><|vision_start|>" + <|video_pad|> * n + "<|vision_end|>", inside
  the template's own <|vision_start|>...<|vision_end|> (transformers 5 keeps that outer pair). The timestamps come
  from the video's frame rate and sampled frame numbers (`vlmtune.collators.qwen3_vl`).
- The -Thinking checkpoints are not registered: their template always opens the generation prompt with
  "<think>\\n" and writes a "<think>...</think>" block only into the last assistant turn, so reply-only samples
  would teach a format the model never generates in (it has no non-thinking mode).

The MoE checkpoints store each layer's experts fused in 3-D parameters (`mlp.experts.gate_up_proj`,
`mlp.experts.down_proj`) with a `mlp.gate` router; see `vlmtune.core.modeling` for how LoRA treats them.
"""

from __future__ import annotations

from pathlib import Path

from transformers import (
    Qwen2VLImageProcessor,
    Qwen3VLConfig,
    Qwen3VLForConditionalGeneration,
    Qwen3VLMoeConfig,
    Qwen3VLMoeForConditionalGeneration,
    Qwen3VLProcessor,
    Qwen3VLVideoProcessor,
)

from vlmtune.loaders.qwen2_vl import MARKERS, build_qwen_vl, tiny_qwen_tokenizer

# Our own Jinja for the released format above (system text parts are concatenated, as the released one does).
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Patches of 16 pixels merged 2x2: a 64x64 image is 4 tokens; larger images are capped at 16 tokens.
TINY_MIN_PIXELS = 64 * 64
TINY_MAX_PIXELS = 32 * 32 * 16
# head_dim 32 -> 16 rotary frequencies over (time, height, width), interleaved as released ([24, 20, 20]).
TINY_ROPE = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [4, 6, 6], "mrope_interleaved": True}
TINY_VISION = {
    "depth": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_heads": 2,
    "out_hidden_size": 128,
    "num_position_embeddings": 64,
}
# Small MoE text sizes: 4 experts, 2 per token, as Qwen3-VL-30B-A3B routes 8 of 128.
TINY_MOE = {"num_experts": 4, "num_experts_per_tok": 2, "moe_intermediate_size": 64}


def tiny_processor(chat_template: str, markers: list[str] = MARKERS) -> Qwen3VLProcessor:
    """The Qwen3-VL processor (also Qwen3.5's) with tiny image sizes and the released image normalisation."""
    pixels = {"min_pixels": TINY_MIN_PIXELS, "max_pixels": TINY_MAX_PIXELS}
    image_processor = Qwen2VLImageProcessor(patch_size=16, image_mean=[0.5] * 3, image_std=[0.5] * 3, **pixels)
    video_processor = Qwen3VLVideoProcessor(
        size={"shortest_edge": TINY_MIN_PIXELS, "longest_edge": TINY_MAX_PIXELS * 8}, cap_pixels_per_frame=True
    )
    return Qwen3VLProcessor(
        image_processor=image_processor,
        video_processor=video_processor,
        tokenizer=tiny_qwen_tokenizer(markers),
        chat_template=chat_template,
    )


def build_tiny(folder: Path) -> None:
    text = {"head_dim": 32, "rope_parameters": TINY_ROPE}
    vision = {**TINY_VISION, "deepstack_visual_indexes": [0]}
    build_qwen_vl(folder, Qwen3VLConfig, Qwen3VLForConditionalGeneration, tiny_processor(CHAT_TEMPLATE), text, vision)


def build_tiny_moe(folder: Path) -> None:
    text = {"head_dim": 32, "rope_parameters": TINY_ROPE, **TINY_MOE}
    vision = {**TINY_VISION, "deepstack_visual_indexes": [0]}
    build_qwen_vl(
        folder, Qwen3VLMoeConfig, Qwen3VLMoeForConditionalGeneration, tiny_processor(CHAT_TEMPLATE), text, vision
    )
