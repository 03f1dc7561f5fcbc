"""PaliGemma (`PaliGemmaForConditionalGeneration`), e.g. https://huggingface.co/google/paligemma2-3b-mix-224.

PaliGemma has no chat format. Its released checkpoints ship no chat template; the format they were trained in
(big_vision's PaliGemma README, and what `PaliGemmaProcessor(images, text=prefix, suffix=answer)` builds) is

    <image> * image_seq_length + <bos> + prefix + "\\n"        (the prompt: token_type_ids 0, attends bidirectionally)
    answer + <eos>                                            (the suffix: token_type_ids 1, causal, trained)

The mix checkpoints expect task prefixes such as "caption en", "answer en {question}" or "detect {object}".

vlmtune maps one user turn to the prefix and one assistant reply to the suffix. Our chat template renders exactly
that layout (the images first, whatever their place in the user text, as the processor does) and refuses what the
format cannot express: a system prompt, several turns, several images. The data check rejects such samples
earlier, naming the sample and field (`Family.system_prompt` / `multi_turn` / `multi_image` are False). A sample
without an image renders as "<bos>{prefix}\\n{answer}<eos>", the same layout without image tokens.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Gemma2Config,
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    PaliGemmaProcessor,
    SiglipImageProcessor,
)

from vlmtune.loaders.base import (
    save_tiny,
    tiny_siglip_config,
    tiny_text_config,
)
from vlmtune.loaders.tiny import GEMMA_NEWLINE_RUNS, train_tokenizer

# Our own Jinja for the released training format above: one prefix, one answer.
CHAT_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('PaliGemma has no system prompt: put the instruction into the prefix (the user text)') }}"
    "{% endif %}"
    "{% if messages | length > 2 %}"
    "{{ raise_exception('PaliGemma takes one prefix (user) and one answer (assistant), not a conversation') }}"
    "{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}"
    "{% if message['content'] is string %}{{ bos_token + message['content'] }}"
    "{% else %}"
    "{% for part in message['content'] if part['type'] == 'image' %}<image>{% endfor %}"
    "{{ bos_token }}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] }}{% endfor %}"
    "{% endif %}{{ '\\n' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ (message['content'] if message['content'] is string else message['content'][0]['text']) + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}"
    "{% endfor %}"
)

SPECIAL_TOKENS = {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"}
IMAGE_TOKENS = {"image_token": "<image>"}

# 32x32 pixels in patches of 8: 16 image tokens (the released ones: 224 px / 14 = 256 tokens, 448 px: 1024).
TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(SPECIAL_TOKENS, extra_special_tokens=IMAGE_TOKENS, newline_runs=GEMMA_NEWLINE_RUNS)
    image_processor = SiglipImageProcessor(
        size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        image_seq_length=(TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2,
    )
    # The processor adds PaliGemma's <loc....>/<seg...> tokens to the tokenizer: build it before the model.
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer, chat_template=CHAT_TEMPLATE)
    text_config = Gemma2Config(  # PaliGemma 2's language model (PaliGemma 1 uses Gemma)
        **tiny_text_config(tokenizer, vocab_size=len(tokenizer), head_dim=32, query_pre_attn_scalar=32)
    )
    vision_config = tiny_siglip_config(TINY_IMAGE_SIZE, TINY_PATCH_SIZE)
    config = PaliGemmaConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_index=tokenizer.image_token_id,
        vocab_size=len(tokenizer),
        projection_dim=text_config.hidden_size,
        hidden_size=text_config.hidden_size,
    )
    torch.manual_seed(0)
    model = PaliGemmaForConditionalGeneration(config)
    save_tiny(folder, model, processor)
