"""Gemma 4 (`Gemma4ForConditionalGeneration`, model type gemma4), e.g. https://huggingface.co/google/gemma-4-E2B-it.

The released prompt format (chat_template.jinja of google/gemma-4-E2B-it and -E4B-it; Google's "Gemma 4 prompt
formatting" page, and public copies of the template found with the search tool), with thinking off (the default):

    <bos><|turn>system
    {system}<turn|>
    <|turn>user
    {user text, each image as <|image|>}<turn|>
    <|turn>model
    {reply}<turn|>
    <|turn>user
    ...

- A system turn is rendered only when there is a system message (or thinking/tools are on). Its text is trimmed;
  given as a list of text parts, each part is written trimmed and followed by one space (so "Be brief. <turn|>").
- The assistant role is written "model". User text parts are trimmed and written without separators; an image
  part is the placeholder "<|image|>", which the processor expands to "<|image>" + soft tokens + "<image|>".
- Assistant text goes through the template's `strip_thinking`: any "<|channel>...<channel|>" block is removed and
  the rest trimmed. Earlier replies are therefore rendered without their thoughts, and the history turn is
  exactly "<|turn>model\\n{reply}<turn|>\\n"; the generation prompt is "<|turn>model\\n". So the conversation
  renders prefix by prefix and the trained span is the reply plus "<turn|>" (the "\\n" after it is not trained).
- The 26B-A4B and 31B templates differ: with thinking off their generation prompt is
  "<|turn>model\\n<|channel>thought\\n<channel|>" while history turns stay "<|turn>model\\n{reply}<turn|>", so no
  prefix rendering of a conversation ends where a reply starts; they are not registered here.
- Thinking (`enable_thinking=True`) writes "<|think|>" into the system turn; vlmtune trains non-thinking replies.

Batching is the shared collator's as it is: the template renders `<bos>` itself (the core adds no second one); the
processor expands each `<|image|>` and returns `mm_token_type_ids` (padded with 0), which the model uses for
bidirectional attention within an image; `pixel_values` are patch rows always padded to the processor's patch
budget, so several samples' images concatenate on dim 0.

Per-layer attributes: the full-attention layers of Gemma 4 use their own head size (`global_head_dim`, 512 in
the released configs) and key/value head count, kept by the text config in `per_layer_config`; the tiny model
sets them explicitly (and the per-layer input embedding width), or its full-attention layers would be 512 wide.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Gemma4AudioFeatureExtractor,
    Gemma4Config,
    Gemma4ForConditionalGeneration,
    Gemma4ImageProcessor,
    Gemma4Processor,
    Gemma4TextConfig,
    Gemma4VideoProcessor,
    Gemma4VisionConfig,
)

from vlmtune.loaders.base import TINY_VISION_SIZES, save_tiny, tiny_text_config
from vlmtune.loaders.tiny import train_tokenizer

# Our own Jinja for the released format above (no tools, no thinking).
CHAT_TEMPLATE = (
    "{{ bos_token }}{% set turns = messages %}"
    "{% if messages and messages[0]['role'] == 'system' %}"
    "<|turn>system\n"
    "{% if messages[0]['content'] is string %}{{ messages[0]['content'] | trim }}"
    "{% else %}{% for part in messages[0]['content'] %}{{ part['text'] | trim + ' ' }}{% endfor %}{% endif %}"
    "<turn|>\n{% set turns = messages[1:] %}"
    "{% endif %}"
    "{% for message in turns %}"
    "{% set model = message['role'] == 'assistant' %}"
    "<|turn>{{ 'model' if model else message['role'] }}\n"
    "{% set parts = [{'type': 'text', 'text': message['content']}] if message['content'] is string "
    "else message['content'] %}"
    "{% for part in parts %}"
    "{% if part['type'] == 'text' and model %}"
    "{% set ns = namespace(text='') %}"
    "{% for piece in part['text'].split('<channel|>') %}"
    "{% set ns.text = ns.text + piece.split('<|channel>')[0] %}"
    "{% endfor %}{{ ns.text | trim }}"
    "{% elif part['type'] == 'text' %}{{ part['text'] | trim }}"
    "{% elif part['type'] == 'image' %}<|image|>"
    "{% elif part['type'] == 'video' %}<|video|>{% endif %}"
    "{% endfor %}"
    "<turn|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|turn>model\n{% endif %}"
)

SPECIAL_TOKENS = {"bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>", "pad_token": "<pad>"}
MEDIA_TOKENS = {
    "image_token": "<|image|>",
    "boi_token": "<|image>",
    "eoi_token": "<image|>",
    "audio_token": "<|audio|>",
    "boa_token": "<|audio>",
    "eoa_token": "<audio|>",
}
MARKERS = ["<|turn>", "<turn|>", "<|channel>", "<channel|>", "<|think|>", "<|video|>"]

# Images are resized to fit a soft-token budget (70, the smallest the processor allows), in patches of 8 pooled
# 3x3 as released: a 32x32 digit becomes 192x192 pixels, 24x24 patches, 8x8 = 64 soft tokens.
TINY_PATCH_SIZE = 8
TINY_POOLING = 3
TINY_SOFT_TOKENS = 70


def tiny_tokenizer():
    """The tiny Gemma 4 tokenizer (also Gemma 4 unified's): its special, media and turn tokens, with bos."""
    return train_tokenizer(
        SPECIAL_TOKENS, extra_special_tokens=MEDIA_TOKENS, additional_special_tokens=MARKERS, add_bos=True
    )


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_tokenizer()
    ids = tokenizer.convert_tokens_to_ids
    sizes = tiny_text_config(tokenizer, head_dim=32, sliding_window=64)
    text_config = Gemma4TextConfig(
        **sizes,
        layer_types=["sliding_attention", "full_attention"],
        # Per-layer attributes: the full-attention layer's own head size and kv heads (released: 512 and more).
        global_head_dim=32,
        num_global_key_value_heads=sizes["num_key_value_heads"],
        # Per-layer input embeddings (PLE): one small table for all layers, over the tiny vocabulary.
        vocab_size_per_layer_input=sizes["vocab_size"],
        hidden_size_per_layer_input=16,
    )
    vision_config = Gemma4VisionConfig(
        **TINY_VISION_SIZES,
        num_key_value_heads=TINY_VISION_SIZES["num_attention_heads"],
        head_dim=32,
        patch_size=TINY_PATCH_SIZE,
        pooling_kernel_size=TINY_POOLING,
        position_embedding_size=64,
    )
    config = Gemma4Config(
        text_config=text_config,
        vision_config=vision_config,
        audio_config=None,  # image-text only: no audio tower
        boi_token_id=ids(MEDIA_TOKENS["boi_token"]),
        eoi_token_id=ids(MEDIA_TOKENS["eoi_token"]),
        image_token_id=ids(MEDIA_TOKENS["image_token"]),
        video_token_id=ids("<|video|>"),
        boa_token_id=ids(MEDIA_TOKENS["boa_token"]),
        eoa_token_index=ids(MEDIA_TOKENS["eoa_token"]),
        audio_token_id=ids(MEDIA_TOKENS["audio_token"]),
    )
    torch.manual_seed(0)
    model = Gemma4ForConditionalGeneration(config)
    vision = {"patch_size": TINY_PATCH_SIZE, "pooling_kernel_size": TINY_POOLING, "max_soft_tokens": TINY_SOFT_TOKENS}
    processor = Gemma4Processor(
        feature_extractor=Gemma4AudioFeatureExtractor(),  # the processor requires one; audio is not used
        image_processor=Gemma4ImageProcessor(**vision),
        video_processor=Gemma4VideoProcessor(**vision),
        tokenizer=tokenizer,
        image_seq_length=TINY_SOFT_TOKENS,
        chat_template=CHAT_TEMPLATE,
    )
    # The released generation config stops on <eos> and on <turn|>.
    save_tiny(folder, model, processor, stop_tokens=[tokenizer.eos_token, "<turn|>"])
