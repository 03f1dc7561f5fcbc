"""Janus / Janus-Pro (`JanusForConditionalGeneration` + `JanusProcessor`): https://huggingface.co/deepseek-community/
Janus-Pro-1B, DeepSeek's unified understanding-and-generation model: a SigLIP-style tower (`model.vision_model`), an
MLP aligner (`model.aligner`), a LLaMA language model, and image-generation modules (a VQ model, its aligner, head and
embeddings) that text replies do not use; they stay frozen (`others`).

The released prompt format (CHAT_TEMPLATE of transformers' src/transformers/models/janus/
convert_janus_weights_to_hf.py, which writes it into the converted checkpoints, read with the search tool; the
processor is saved with `use_default_system_prompt=True`):

    {DEFAULT_SYSTEM_PROMPT}<|User|>: <image_placeholder>\\n{text}\\n\\n<|Assistant|>: {reply}<｜end▁of▁sentence｜>

- The processor, not the template, writes the default system prompt in front of every text prompt it is called on
  (`JanusProcessor.__call__`); the collator calls the processor, so training sees it as the released model does.
- A system message is rendered "System: {text}" and closed with the end-of-sentence token, as the template has it.
- The template closes no last message; `DeepseekCollator` closes the last reply as the others (see its docstring).
- The generation prompt is "<|Assistant|>:", so a reply is trained as " {reply}<｜end▁of▁sentence｜>".
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    JanusConfig,
    JanusForConditionalGeneration,
    JanusImageProcessor,
    JanusProcessor,
    JanusVisionConfig,
    JanusVQVAEConfig,
    LlamaConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# The converted checkpoints' template, word for word (convert_janus_weights_to_hf.py).
CHAT_TEMPLATE = (
    "{%set seps=['\n\n','<\uff5cend\u2581of\u2581sentence\uff5c>']%}"
    "{%set i=0%}"
    "{%for message in messages%}"
    "{%if message['role']|lower=='user'%}"
    "<|User|>: "
    "{%elif message['role']|lower=='assistant'%}"
    "<|Assistant|>:{%if not (loop.last and not add_generation_prompt and message['content'][0]['type']=='text' "
    "and message['content'][0]['text']=='')%} {%endif%}"
    "{%else%}"
    "{{message['role'].capitalize()}}: "
    "{%endif%}"
    "{%for content in message['content']%}"
    "{%if content['type']=='image'%}"
    "{%if not loop.first%}{{'\n'}}{%endif%}"
    "<image_placeholder>"
    "{%if not loop.last%}{{'\n'}}{%endif%}"
    "{%elif content['type']=='text'%}"
    "{%set text=content['text']%}"
    "{%if loop.first%}{%set text=text.lstrip()%}{%endif%}"
    "{%if loop.last%}{%set text=text.rstrip()%}{%endif%}"
    "{%if not loop.first and message['content'][loop.index0-1]['type']=='text'%}"
    "{{' '+text}}"
    "{%else%}"
    "{{text}}"
    "{%endif%}"
    "{%endif%}"
    "{%endfor%}"
    "{%if not loop.last or add_generation_prompt%}"
    "{%if message['role']|lower=='user'%}"
    "{{seps[0]}}"
    "{%else%}"
    "{{seps[1]}}"
    "{%endif%}"
    "{%endif%}"
    "{%endfor%}"
    "{%if add_generation_prompt%}<|Assistant|>:{%endif%}"
)
# DeepSeek's tokenizers (DeepSeek-LLM, the base of Janus and DeepSeek-VL); the bos is added in front.
DEEPSEEK_SPECIAL_TOKENS = {
    "bos_token": "<\uff5cbegin\u2581of\u2581sentence\uff5c>",
    "eos_token": "<\uff5cend\u2581of\u2581sentence\uff5c>",
    "pad_token": "<\uff5c\u2581pad\u2581\uff5c>",
}
DEEPSEEK_MARKERS = ["<|User|>", "<|Assistant|>"]
TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_IMAGE_TOKENS = (TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2
# The image-generation VQ model, as small as its convolutions allow (text replies never run it).
TINY_VQ = {
    "embed_dim": 8,
    "num_embeddings": 32,
    "latent_channels": 32,
    "base_channels": 32,
    "channel_multiplier": [1, 1],
    "num_res_blocks": 1,
    "projection_dim": 32,
}


def tiny_deepseek_tokenizer(media_tokens: dict[str, str]):
    return train_tokenizer(
        DEEPSEEK_SPECIAL_TOKENS,
        extra_special_tokens=media_tokens,
        additional_special_tokens=DEEPSEEK_MARKERS,
        add_bos=True,
    )


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_deepseek_tokenizer(
        {"image_token": "<image_placeholder>", "boi_token": "<begin_of_image>", "eoi_token": "<end_of_image>"}
    )
    text = tiny_text_config(tokenizer)
    config = JanusConfig(
        text_config=LlamaConfig(**text),
        vision_config=JanusVisionConfig(
            hidden_size=TINY_VISION_SIZES["hidden_size"],
            num_hidden_layers=TINY_VISION_SIZES["num_hidden_layers"],
            num_attention_heads=TINY_VISION_SIZES["num_attention_heads"],
            mlp_ratio=2.0,
            image_size=TINY_IMAGE_SIZE,
            patch_size=TINY_PATCH_SIZE,
            projection_dim=text["hidden_size"],
            num_image_tokens=TINY_IMAGE_TOKENS,
        ),
        vq_config=JanusVQVAEConfig(**TINY_VQ, image_token_embed_dim=text["hidden_size"]),
        image_token_id=tokenizer.image_token_id,
    )
    torch.manual_seed(0)
    processor = JanusProcessor(
        image_processor=JanusImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}),
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        use_default_system_prompt=True,  # as the converted checkpoints are saved
        num_image_tokens=TINY_IMAGE_TOKENS,
    )
    save_tiny(folder, JanusForConditionalGeneration(config), processor)
