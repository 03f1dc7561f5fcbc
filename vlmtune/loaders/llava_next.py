"""LLaVA-NeXT / LLaVA-1.6 (`LlavaNextForConditionalGeneration`): three released prompt formats, three families.

- `llava-next`: https://huggingface.co/llava-hf/llava-v1.6-mistral-7b-hf (Mistral, "[INST] ... [/INST]").
- `llava-next-vicuna`: https://huggingface.co/llava-hf/llava-v1.6-vicuna-7b-hf and -13b-hf (Vicuna, "USER: ...
  ASSISTANT:", no end-of-turn: the LLaVA-1.5 format).
- `llava-next-34b`: https://huggingface.co/llava-hf/llava-v1.6-34b-hf (Nous-Hermes-2-Yi-34B, ChatML with "<|im_end|>").

All three share the model class, the processor and the collator; they differ in the language model and the chat
template, so each has its own tiny builder (`build_tiny`, `build_tiny_vicuna`, `build_tiny_34b`) over one
parametrised `_build`.

Images are processed "anyres": the image processor picks the best of `image_grid_pinpoints` for each image's
size, cuts the resized image into tiles of the vision tower's size plus one downscaled base tile, and returns
`pixel_values` of shape [images, tiles, 3, H, W] (tiles padded to the most in the call) and `image_sizes`
[images, 2]; the number of `<image>` tokens depends on each image's size.

Template revisions tested (tests/template_revisions.py, tests/test_templates.py; every masking shape each):
- `llava-next`: the tiny template (the current hub file's layout); `hub-early`: the first revision of
  llava-v1.6-mistral-7b-hf's chat_template.json, which closes replies with the text "<\\s>" instead of "</s>"
  (listed in openvinotoolkit/openvino.genai src/cpp/src/tokenizer/chat_template_fallback_map.hpp): the model
  would never learn to stop, so every sample is refused with a one-line TemplateError naming the checkpoint.
- `llava-next-vicuna`: the llava-1.5 revisions (see vlmtune/loaders/llava.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    CLIPVisionConfig,
    LlamaConfig,
    LlavaNextConfig,
    LlavaNextForConditionalGeneration,
    LlavaNextImageProcessor,
    LlavaNextProcessor,
    MistralConfig,
    PreTrainedConfig,
    PreTrainedTokenizerFast,
)

from vlmtune.loaders import llava
from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.llava import tiny_llama_tokenizer
from vlmtune.loaders.tiny import train_tokenizer

# The prompt format of https://huggingface.co/llava-hf/llava-v1.6-mistral-7b-hf (its chat_template.json):
#   "<<SYS>>\n{system}\n<</SYS>>\n\n[INST] <image>\n{question} [/INST] {answer}</s> [INST] {question2} [/INST]"
# - the tokenizer adds "<s>" in front (the template renders no bos);
# - a user turn renders all its images first ("<image>\n" each), then all its text parts joined without a
#   separator, between "[INST] " and " [/INST]";
# - an assistant turn renders " {answer}</s> " ("</s>" is the end-of-turn trained with the reply, the trailing
#   space is not part of it);
# - there is no generation prompt: the prompt simply ends with " [/INST]".
# (Early revisions of that file rendered "<\s> " instead of "</s> "; the current one renders "</s> ".)
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}"
    "{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}"
    "{{ '[INST] ' }}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] }}{% endfor %}"
    "{{ ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}"
    "{{ ' ' + message['content'][0]['text'] + '</s> ' }}"
    "{% else %}"
    "{{ raise_exception('Only user and assistant roles are supported!') }}"
    "{% endif %}"
    "{% endfor %}"
)

# The prompt format of https://huggingface.co/llava-hf/llava-v1.6-vicuna-7b-hf (and -13b-hf): their
# chat_template.json is the one of llava-hf/llava-1.5-7b-hf (OpenVINO GenAI's template fallback map lists the same
# template text for "llava-1.5, llava-v1.6-vicuna (chat_template.json)"), so the LLaVA-1.5 template is reused:
#   "{system} USER: <image>\n{question} ASSISTANT: {answer} USER: ..."
# It renders no end-of-turn; the model stops on the tokenizer's eos "</s>", appended to every reply and trained.
# (The original LLaVA repo puts a default Vicuna system prompt, "A chat between a curious human ...", in front;
# the released template does not: pass it as the sample's system prompt to train with it.)
VICUNA_CHAT_TEMPLATE = llava.CHAT_TEMPLATE

# The prompt format of https://huggingface.co/llava-hf/llava-v1.6-34b-hf, ChatML without a default system message:
#   "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n<image>\n{question}<|im_end|>\n"
#   "<|im_start|>assistant\n{answer}<|im_end|>\n"
# - a turn renders all its images first ("<image>\n" each), then its text parts joined without a separator;
# - the generation prompt is "<|im_start|>assistant\n"; the reply is closed by "<|im_end|>" (trained) + "\n".
# Found as `chat_yi`, the template that llava-hf wrote for the Yi-34B LLaVA-NeXT checkpoints, in transformers'
# models/llava_next_video/convert_llava_next_video_weights_to_hf.py. The checkpoint's own chat_template.json could
# not be read offline. (The conversion test in models/llava_next/convert_llava_next_weights_to_hf.py prompts
# llava-v1.6-34b in the original repo's ChatML, with no "\n" after "<|im_end|>"; the llava-hf template writes one.)
CHATML_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] }}{% endfor %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# The released checkpoints: CLIP ViT-L/14 at 336 px, pinpoints [[336, 672], [672, 336], [672, 672], [1008, 336],
# [336, 1008]]. The tiny model keeps the same shape at 16 px with patches of 8: 2x2 tokens per tile, 4 to 24
# image tokens per image (base tile + up to 2x2 tiles + one newline token per row).
TINY_IMAGE_SIZE = 16
TINY_PATCH_SIZE = 8
TINY_PINPOINTS = [[16, 32], [32, 16], [32, 32], [48, 16], [16, 48]]


def tiny_vision_config(patch_size: int = TINY_PATCH_SIZE) -> CLIPVisionConfig:
    """The CLIP vision tower of every tiny LLaVA-NeXT(-Video) model."""
    return CLIPVisionConfig(**TINY_VISION_SIZES, image_size=TINY_IMAGE_SIZE, patch_size=patch_size, projection_dim=64)


def tiny_image_processor() -> LlavaNextImageProcessor:
    return LlavaNextImageProcessor(
        size={"shortest_edge": TINY_IMAGE_SIZE},
        crop_size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE},
        image_grid_pinpoints=TINY_PINPOINTS,
    )


# Processor settings of the released checkpoints, in the tiny model's patch size.
TINY_PROCESSOR_KWARGS = {
    "patch_size": TINY_PATCH_SIZE,
    "vision_feature_select_strategy": "default",
    "num_additional_image_tokens": 1,  # CLIP's class token, as in the released checkpoints
}


def _build(
    folder: Path, tokenizer: PreTrainedTokenizerFast, text_config: PreTrainedConfig, chat_template: str
) -> None:
    """A tiny LLaVA-NeXT with the given language model config and chat template (the rest is shared)."""
    config = LlavaNextConfig(
        text_config=text_config,
        vision_config=tiny_vision_config(),
        image_token_index=tokenizer.image_token_id,
        image_grid_pinpoints=TINY_PINPOINTS,
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
        image_seq_length=(TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2,
    )
    torch.manual_seed(0)
    model = LlavaNextForConditionalGeneration(config)
    processor = LlavaNextProcessor(
        image_processor=tiny_image_processor(),
        tokenizer=tokenizer,
        chat_template=chat_template,
        **TINY_PROCESSOR_KWARGS,
    )
    save_tiny(folder, model, processor)


def build_tiny(folder: Path) -> None:
    """llava-v1.6-mistral-7b-hf: a Mistral language model and the [INST] template."""
    tokenizer = tiny_llama_tokenizer()
    _build(folder, tokenizer, MistralConfig(**tiny_text_config(tokenizer, sliding_window=None)), CHAT_TEMPLATE)


def build_tiny_vicuna(folder: Path) -> None:
    """llava-v1.6-vicuna-*-hf: a LLaMA (Vicuna) language model and the LLaVA-1.5 template."""
    tokenizer = tiny_llama_tokenizer()
    _build(folder, tokenizer, LlamaConfig(**tiny_text_config(tokenizer)), VICUNA_CHAT_TEMPLATE)


def tiny_yi_tokenizer() -> PreTrainedTokenizerFast:
    """Nous-Hermes-2-Yi-34B's special tokens: bos "<|startoftext|>" (not added), eos "<|im_end|>", pad "<unk>"."""
    return train_tokenizer(
        {"bos_token": "<|startoftext|>", "eos_token": "<|im_end|>", "unk_token": "<unk>", "pad_token": "<unk>"},
        extra_special_tokens={"image_token": "<image>"},
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )


def build_tiny_34b(folder: Path) -> None:
    """llava-v1.6-34b-hf: a LLaMA-architecture (Yi) language model and the ChatML template."""
    tokenizer = tiny_yi_tokenizer()
    _build(folder, tokenizer, LlamaConfig(**tiny_text_config(tokenizer)), CHATML_CHAT_TEMPLATE)
