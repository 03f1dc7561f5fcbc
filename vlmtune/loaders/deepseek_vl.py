"""DeepSeek-VL (`DeepseekVLForConditionalGeneration`, https://huggingface.co/deepseek-community/deepseek-vl-1.3b-chat:
a SigLIP tower `model.vision_model`, an MLP `model.aligner`, a LLaMA language model) and DeepSeek-VL hybrid
(`DeepseekVLHybridForConditionalGeneration`, https://huggingface.co/deepseek-community/deepseek-vl-7b-chat: the same
plus a high-resolution SAM tower `model.high_res_vision_model` with its neck and projection, whose features the
aligner joins to SigLIP's).

The released prompt format (CHAT_TEMPLATE of transformers' src/transformers/models/deepseek_vl_hybrid/
convert_deepseek_vl_hybrid_weights_to_hf.py, "adopted from" DeepSeek-VL's conversation.py; the same template is
the processor's in tests/models/deepseek_vl/test_processing_deepseek_vl.py and test_processing_deepseek_vl_hybrid.py,
and the 7B integration test there decodes exactly this prefix; read with the search tool):

    You are a helpful language and vision assistant. ... natural language.\\n\\n      (the template writes it always)
    User: <image_placeholder>{text}\\n\\nAssistant: {reply}<｜end▁of▁sentence｜>User: ...

- A system message is rendered "System: {text}" and closed with the end-of-sentence token, after the default one.
- The template closes no last message; `DeepseekCollator` closes the last reply as the others (see its docstring).
- The generation prompt is "Assistant:", so a reply is trained as " {reply}<｜end▁of▁sentence｜>".
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    DeepseekVLConfig,
    DeepseekVLForConditionalGeneration,
    DeepseekVLHybridConfig,
    DeepseekVLHybridForConditionalGeneration,
    DeepseekVLHybridImageProcessor,
    DeepseekVLHybridProcessor,
    DeepseekVLImageProcessor,
    DeepseekVLProcessor,
    LlamaConfig,
    SamVisionConfig,
)

from vlmtune.loaders.base import save_tiny, tiny_siglip_config, tiny_text_config
from vlmtune.loaders.janus import TINY_IMAGE_SIZE, TINY_IMAGE_TOKENS, TINY_PATCH_SIZE, tiny_deepseek_tokenizer

# The converted checkpoints' template, word for word.
CHAT_TEMPLATE = (
    "{% set seps = ['\n\n', '<\uff5cend\u2581of\u2581sentence\uff5c>'] %}"
    "{% set i = 0 %}"
    "You are a helpful language and vision assistant. "
    "You are able to understand the visual content that the user provides, "
    "and assist the user with a variety of tasks using natural language.\n\n"
    "{% for message in messages %}"
    "{% if message['role']|lower == 'user' %}"
    "User: "
    "{% elif message['role']|lower == 'assistant' %}"
    "Assistant:{% if not (loop.last and not add_generation_prompt and message['content'][0]['type']=='text' and "
    "message['content'][0]['text']=='') %} {% endif %}"
    "{% else %}"
    "{{ message['role'].capitalize() }}: "
    "{% endif %}"
    "{% for content in message['content'] %}"
    "{% if content['type'] == 'image' %}"
    "<image_placeholder>"
    "{% elif content['type'] == 'text' %}"
    "{% set text = content['text'] %}"
    "{% if loop.first %}{% set text = text.lstrip() %}{% endif %}"
    "{% if loop.last %}{% set text = text.rstrip() %}{% endif %}"
    "{% if not loop.first and message['content'][loop.index0-1]['type'] == 'text' %}"
    "{{ ' ' + text }}"
    "{% else %}"
    "{{ text }}"
    "{% endif %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if not loop.last or add_generation_prompt %}"
    "{% if message['role']|lower == 'user' %}"
    "{{ seps[0] }}"
    "{% else %}"
    "{{ seps[1] }}"
    "{% endif %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
# The SAM tower's image: 64 pixels in 16-pixel patches, its neck downsampling 4x4 features to SigLIP's 4x4 grid.
TINY_HIGH_RES_SIZE = 64
TINY_SAM = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "mlp_dim": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "global_attn_indexes": [1],
    "output_channels": 8,
    "image_size": TINY_HIGH_RES_SIZE,
    "patch_size": 16,
}


def tiny_config_and_tokenizer(config_class):
    tokenizer = tiny_deepseek_tokenizer({"image_token": "<image_placeholder>"})
    config = {
        "text_config": LlamaConfig(**tiny_text_config(tokenizer)),
        "vision_config": tiny_siglip_config(TINY_IMAGE_SIZE, TINY_PATCH_SIZE),
        "image_token_id": tokenizer.image_token_id,
    }
    if config_class is DeepseekVLHybridConfig:
        config["high_res_vision_config"] = SamVisionConfig(**TINY_SAM)
    return config_class(**config), tokenizer


def build_tiny(folder: Path) -> None:
    config, tokenizer = tiny_config_and_tokenizer(DeepseekVLConfig)
    torch.manual_seed(0)
    processor = DeepseekVLProcessor(
        image_processor=DeepseekVLImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        num_image_tokens=TINY_IMAGE_TOKENS,
    )
    save_tiny(folder, DeepseekVLForConditionalGeneration(config), processor)


def build_tiny_hybrid(folder: Path) -> None:
    config, tokenizer = tiny_config_and_tokenizer(DeepseekVLHybridConfig)
    torch.manual_seed(0)
    processor = DeepseekVLHybridProcessor(
        image_processor=DeepseekVLHybridImageProcessor(
            size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
            high_res_size={"height": TINY_HIGH_RES_SIZE, "width": TINY_HIGH_RES_SIZE},
        ),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        num_image_tokens=TINY_IMAGE_TOKENS,
    )
    save_tiny(folder, DeepseekVLHybridForConditionalGeneration(config), processor)
