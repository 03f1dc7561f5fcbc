"""LLaVA-Interleave (`LlavaForConditionalGeneration` with a Qwen1.5 language model and a SigLIP vision tower), e.g.
https://huggingface.co/llava-hf/llava-interleave-qwen-0.5b-hf and llava-hf/llava-interleave-qwen-7b-hf.

The model is plain LLaVA (one fixed-size tile per image, `pixel_values` [images, 3, H, W]); what it adds is training
on many images per sample (multi-image, multi-frame and multi-view data), so several images per sample are its
normal input. Every image costs the same number of tokens: (image size / patch size)^2, SigLIP has no class token.

The prompt format of the released checkpoints (their chat_template.json), ChatML with a newline before each text:
    "<|im_start|>system\\n\\n{system}<|im_end|>\\n"
    "<|im_start|>user\\n<image><image>\\n{question}<|im_end|>\\n"
    "<|im_start|>assistant\\n\\n{answer}<|im_end|>\\n"
- a turn is "<|im_start|>{role}\\n", then all its images as bare "<image>" (no separator), then each text part as
  "\\n" + text, then "<|im_end|>\\n"; there is no default system message;
- so the reply of an assistant turn starts with "\\n" after the generation prompt "<|im_start|>assistant\\n": the
  trained span is "\\n{answer}<|im_end|>". (The released Qwen tokenizer merges "\\n\\n" into one token, which then
  starts inside the prompt and stays untrained; the reply text and "<|im_end|>" are always trained.)
Source: the lmms-finetune collator for llava-interleave quotes this template as "slightly different from
https://huggingface.co/llava-hf/llava-interleave-qwen-0.5b-hf/blob/main/chat_template.json" (only "<|im_end|>" moved
into its generation block), and a second public wrapper of the llava-hf interleave checkpoints renders the same
text; the checkpoint's own file could not be read offline.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    LlavaConfig,
    LlavaForConditionalGeneration,
    LlavaProcessor,
    Qwen2Config,
    SiglipImageProcessor,
)

from vlmtune.loaders.base import (
    save_tiny,
    tiny_chatml_tokenizer,
    tiny_siglip_config,
    tiny_text_config,
)

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ '\n' + part['text'] }}{% endfor %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# The released checkpoints: SigLIP so400m at 384 px with patches of 14 (729 tokens per image), all patch features
# of the last layer ("full"). The tiny model: 16 px, patches of 8 -> 4 tokens per image.
TINY_IMAGE_SIZE = 16
TINY_PATCH_SIZE = 8


def build_tiny(folder: Path) -> None:
    # Qwen1.5 chat tokenizer: no bos, eos "<|im_end|>", pad "<|endoftext|>".
    tokenizer = tiny_chatml_tokenizer({"image_token": "<image>"})
    config = LlavaConfig(
        text_config=Qwen2Config(**tiny_text_config(tokenizer)),
        vision_config=tiny_siglip_config(TINY_IMAGE_SIZE, TINY_PATCH_SIZE),
        image_token_id=tokenizer.image_token_id,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
        image_seq_length=(TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2,
    )
    torch.manual_seed(0)
    model = LlavaForConditionalGeneration(config)
    processor = LlavaProcessor(
        image_processor=SiglipImageProcessor(size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}),
        tokenizer=tokenizer,
        patch_size=TINY_PATCH_SIZE,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=0,  # SigLIP has no class token
        chat_template=CHAT_TEMPLATE,
    )
    save_tiny(folder, model, processor)
