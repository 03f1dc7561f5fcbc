"""Qwen4-Exp (`Qwen4ExpForConditionalGeneration` + `Qwen3VLProcessor`): https://huggingface.co/Qwen/Qwen4-Exp, the
transformers type of Qwen3.8-Flash-Next (public vLLM and QEfficient ports name it so).

Gated DeltaNet layers interleaved with QSA layers (full attention with a sparse token indexer), every block on four
hyper-connection residual streams, MoE feed-forward layers, per-layer n-gram embeddings (PLE) on some linear
layers; the Qwen3.5 vision tower (`model.visual`, merger inside) and the Qwen3-VL processor.

The released prompt format (the Qwen3.8 chat template: its thinking controls as quoted from Qwen3.8-27B's
tokenizer_config.json in a public Qwen3.8 guide that gives Flash-Next the same `enable_thinking` branch, and a
whole copy of a Qwen3.8 template recorded from a llama-server /props in a public benchmark log, Unsloth's
edit with tool fixes; found with the search tool), in the non-thinking mode (`enable_thinking=False`):

    <|im_start|>system
    {system, trimmed}<|im_end|>                                    (only when given)
    <|im_start|>user
    {user content, trimmed; images <|vision_start|><|image_pad|><|vision_end|>, videos with <|video_pad|>}<|im_end|>
    <|im_start|>assistant
    <think>

    </think>

    {reply, trimmed}<|im_end|>
    ...

- Unlike Qwen3.5, every assistant turn keeps its think block (`preserve_thinking` is treated as true when not
  given), an empty one for a plain reply; reasoning comes only from a message's `reasoning_content` field.
- With thinking on (the template's default) a system turn starts with the reasoning-effort instruction (default
  "xhigh"); with `enable_thinking=False`, as vlmtune renders (`Qwen3_5Collator`), no instruction is written.
- The generation prompt is "<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n" with thinking off.
"""

from __future__ import annotations

from pathlib import Path

from transformers import Qwen4ExpConfig, Qwen4ExpForConditionalGeneration

from vlmtune.loaders.qwen2_vl import build_qwen_vl
from vlmtune.loaders.qwen3_5 import TINY_MARKERS, TINY_TEXT
from vlmtune.loaders.qwen3_vl import TINY_MOE, TINY_VISION, tiny_processor

XHIGH = (
    "Reasoning effort is set to xhigh. Please think carefully through the task, validate key assumptions, consider "
    "plausible alternatives, and prioritize correctness, consistency, and clarity in the final answer."
)
LOW = (
    "Reasoning effort is set to low. Keep your thinking brief and focused, moving directly to the conclusion without "
    "unnecessary elaboration."
)

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
    "{% set instructions = '' %}"
    "{% if enable_thinking is undefined or enable_thinking is true %}"
    "{% set effort = reasoning_effort | default('xhigh') %}"
    "{% if effort not in ('xhigh', 'medium', 'low') %}"
    "{{ raise_exception('Unexpected reasoning effort ' ~ reasoning_effort ~ "
    "'. Supported types are xhigh (default), medium, and low.') }}{% endif %}"
    "{% if effort == 'xhigh' %}{% set instructions = '" + XHIGH + "' %}"
    "{% elif effort == 'low' %}{% set instructions = '" + LOW + "' %}{% endif %}"
    "{% endif %}"
    "{% if messages[0]['role'] == 'system' %}"
    "<|im_start|>system\n{{ instructions + '\n\n' if instructions else '' }}"
    "{{ render(messages[0]['content']) | trim }}<|im_end|>\n"
    "{% elif instructions %}<|im_start|>system\n{{ instructions }}<|im_end|>\n{% endif %}"
    "{% set ns = namespace(last_query=0) %}"
    "{% for message in messages %}{% if message['role'] == 'user' %}{% set ns.last_query = loop.index0 %}{% endif %}"
    "{% endfor %}"
    "{% for message in messages %}"
    "{% set content = render(message['content']) | trim %}"
    "{% if message['role'] == 'assistant' %}"
    "{% set reasoning = message['reasoning_content'] if message['reasoning_content'] is string else '' %}"
    "<|im_start|>assistant\n"
    "{% if preserve_thinking is undefined or preserve_thinking is true or loop.index0 > ns.last_query %}"
    "<think>\n{{ reasoning | trim }}\n</think>\n\n{% endif %}"
    "{{ content }}<|im_end|>\n"
    "{% elif message['role'] != 'system' %}<|im_start|>{{ message['role'] }}\n{{ content }}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% else %}<think>\n{% endif %}{% endif %}"
)

# Qwen3.5's tiny text sizes with the released layer pattern's two kinds (one Gated DeltaNet layer carrying PLE, one
# QSA layer), small MoE sizes, 4 hyper-connection streams as released with a small mixer rank, and a small QSA
# indexer (budget 8 tokens in blocks of 4) and n-gram table; head_dim 64 with rotary factor 0.25 -> 16 rotary dims.
TINY_TEXT_QWEN4 = {
    **TINY_TEXT,
    **TINY_MOE,
    "layer_types": ["linear_attention", "indexed_attention"],
    "shared_expert_intermediate_size": 64,
    "hc_count": 4,
    "hc_lowrank": 16,
    "indexer_n_heads": 2,
    "indexer_kv_heads": 1,
    "indexer_head_dim": 32,
    "indexer_budget": 8,
    "indexer_compress_ratio": 4,
    "ple_layer_ids": [1],
    "ple_embed_dim": 64,
    "heads_per_ngram": 2,
    "ngram_vocab_size_base": 1000,
    "split_ngram_parts": 2,
}


def build_tiny(folder: Path) -> None:
    processor = tiny_processor(CHAT_TEMPLATE, TINY_MARKERS)
    build_qwen_vl(folder, Qwen4ExpConfig, Qwen4ExpForConditionalGeneration, processor, TINY_TEXT_QWEN4, TINY_VISION)
