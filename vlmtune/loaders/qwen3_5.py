"""Qwen3.5, dense and MoE: https://huggingface.co/Qwen/Qwen3.5-27B and Qwen/Qwen3.5-35B-A3B.

Natively multimodal hybrid-thinking models: Gated DeltaNet (linear attention) layers interleaved with full
attention layers, the Qwen3-VL vision tower (without DeepStack) and the Qwen3-VL processor. Checkpoints (the
installed transformers' docstrings name Qwen3.5-27B and Qwen3.5-35B-A3B; the Qwen3.5 release lists the rest):
dense 0.8B, 2B, 4B, 9B, 27B; MoE 35B-A3B, 122B-A10B, 397B-A17B.

The released prompt format (chat template of Qwen/Qwen3.5-35B-A3B, found verbatim with the search tool in
GGUF-extracted templates):

    <|im_start|>system
    {system, trimmed}<|im_end|>
    <|im_start|>user
    {user content, trimmed; images <|vision_start|><|image_pad|><|vision_end|>, videos with <|video_pad|>}<|im_end|>
    <|im_start|>assistant
    {reply of an earlier round}<|im_end|>
    <|im_start|>user
    {last user message}<|im_end|>
    <|im_start|>assistant
    <think>
    {reasoning, empty for a plain reply}
    </think>

    {reply}<|im_end|>

- Assistant turns before the last user message are written without any think block (their reasoning is dropped);
  turns after it are written with "<think>\\n{reasoning}\\n</think>\\n\\n", an empty block for a plain reply. A reply
  of the form "<think>...</think>answer" is split into reasoning and answer by the template.
- The generation prompt is "<|im_start|>assistant\\n<think>\\n", or with `enable_thinking=False` (the
  non-thinking mode that reply-only training data teaches) "<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n";
  `vlmtune.collators.qwen3_vl.Qwen3_5Collator` renders with it and finds each reply where it was written.
- Content is trimmed; a system message cannot hold images or videos.
"""

from __future__ import annotations

from pathlib import Path

from transformers import (
    Qwen3_5Config,
    Qwen3_5ForConditionalGeneration,
    Qwen3_5MoeConfig,
    Qwen3_5MoeForConditionalGeneration,
)

from vlmtune.loaders.qwen2_vl import MARKERS, build_qwen_vl
from vlmtune.loaders.qwen3_vl import TINY_MOE, TINY_VISION, tiny_processor

# Our own Jinja for the released format above (tools and add_vision_id left out; the rest as released).
CHAT_TEMPLATE = (
    "{% macro render(content) %}"
    "{% if content is string %}{{ content }}"
    "{% else %}{% for item in content %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in item %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "{% endmacro %}"
    "{% set ns = namespace(last_query=0) %}"
    "{% for message in messages %}{% if message['role'] == 'user' %}{% set ns.last_query = loop.index0 %}{% endif %}"
    "{% endfor %}"
    "{% for message in messages %}"
    "{% set content = render(message['content']) | trim %}"
    "{% if message['role'] == 'assistant' %}"
    "{% set reasoning = '' %}"
    "{% if '</think>' in content %}"
    "{% set reasoning = content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') | trim %}"
    "{% set content = content.split('</think>')[-1].lstrip('\n') %}"
    "{% endif %}"
    "<|im_start|>assistant\n"
    "{% if loop.index0 > ns.last_query %}<think>\n{{ reasoning }}\n</think>\n\n{% endif %}"
    "{{ content }}<|im_end|>\n"
    "{% else %}<|im_start|>{{ message['role'] }}\n{{ content }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}"
)
# <think> and </think> are single tokens of the released vocabulary.
TINY_MARKERS = [*MARKERS, "<think>", "</think>"]
# Two layers: one Gated DeltaNet (linear attention) layer and one full-attention layer, as released 3:1.
# head_dim 64 with the released partial rotary factor 0.25 -> 8 rotary frequencies over (time, height, width).
TINY_TEXT = {
    "head_dim": 64,
    "layer_types": ["linear_attention", "full_attention"],
    "linear_key_head_dim": 16,
    "linear_value_head_dim": 16,
    "linear_num_key_heads": 2,
    "linear_num_value_heads": 4,
    "rope_parameters": {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "partial_rotary_factor": 0.25,
        "mrope_section": [4, 2, 2],
        "mrope_interleaved": True,
    },
}


def build_tiny(folder: Path) -> None:
    processor = tiny_processor(CHAT_TEMPLATE, TINY_MARKERS)
    build_qwen_vl(folder, Qwen3_5Config, Qwen3_5ForConditionalGeneration, processor, TINY_TEXT, TINY_VISION)


def build_tiny_moe(folder: Path) -> None:
    processor = tiny_processor(CHAT_TEMPLATE, TINY_MARKERS)
    text = {**TINY_TEXT, **TINY_MOE, "shared_expert_intermediate_size": 64}
    build_qwen_vl(folder, Qwen3_5MoeConfig, Qwen3_5MoeForConditionalGeneration, processor, text, TINY_VISION)
