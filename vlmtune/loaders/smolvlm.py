"""SmolVLM2 (`SmolVLMForConditionalGeneration`), e.g. https://huggingface.co/HuggingFaceTB/SmolVLM2-2.2B-Instruct.

Images and videos. SmolVLM v1 checkpoints (HuggingFaceTB/SmolVLM-256M-Instruct, -500M-Instruct) are saved as
`model_type: idefics3` (`Idefics3ForConditionalGeneration` + `Idefics3Processor`, no video): load them with the
idefics3 family (vlmtune/loaders/idefics3.py); their prompt format is the one below without video.

Template revisions tested (tests/template_revisions.py, tests/test_templates.py; every masking shape each):
- the tiny template (images and videos; renders what the hub template and the one below render);
- `processor-default`: transformers 5.23.0 models/smolvlm/processing_smolvlm.py DEFAULT_CHAT_TEMPLATE, which
  SmolVLMProcessor swaps in for conversations with a video.
"""

from __future__ import annotations

from pathlib import Path

from transformers import (
    SmolVLMConfig,
    SmolVLMForConditionalGeneration,
    SmolVLMImageProcessor,
    SmolVLMProcessor,
    SmolVLMVideoProcessor,
    SmolVLMVisionConfig,
)

from vlmtune.loaders.idefics3 import (
    IMAGE_MARKERS,
    ROW_COL_TOKENS,
    TINY_IMAGE_SEQ_LEN,
    save_tiny_model,
    tiny_image_kwargs,
)
from vlmtune.loaders.tiny import train_tokenizer

# The prompt format of HuggingFaceTB/SmolVLM2-2.2B-Instruct (and SmolVLM-256M/500M-Instruct):
#   "<|im_start|>User:<image>What is this?<end_of_utterance>\nAssistant: A cat.<end_of_utterance>\n"
# Idefics3's layout with "<|im_start|>" (SmolLM2's BOS, rendered by the template; the tokenizer adds none) in
# place of "<|begin_of_text|>": each turn "{Role}: {content}<end_of_utterance>\n", role capitalized, no space
# after the colon when the turn starts with an image; generation prompt "Assistant:". The released hub template
# renders images only; for conversations with a video, SmolVLMProcessor.apply_chat_template swaps in its
# built-in template, which is the same plus "<video>" where the video stands (and, being only an image check,
# keeps the space: "User: <video>..."). This template renders both, so it agrees with either. The processor
# expands "<video>" into "You are provided the following series of {n} frames from a {H:MM:SS} [H:MM:SS]
# video.\n" + per frame "\nFrame from {MM:SS}:<fake_token_around_image><global-img><image>*N<fake...>" + "\n\n".
CHAT_TEMPLATE = (
    "<|im_start|>"
    "{% for message in messages %}"
    "{% if message['content'] is string %}{% set parts = [{'type': 'text', 'text': message['content']}] %}"
    "{% else %}{% set parts = message['content'] %}{% endif %}"
    "{{ message['role'] | capitalize }}{{ ':' if parts[0]['type'] == 'image' else ': ' }}"
    "{% for part in parts %}"
    "{% if part['type'] == 'image' %}<image>{% elif part['type'] == 'video' %}<video>"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}"
    "<end_of_utterance>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
TINY_NUM_FRAMES = 4


def build_tiny(folder: Path) -> None:
    tokenizer = train_tokenizer(
        {
            "bos_token": "<|im_start|>",
            "eos_token": "<end_of_utterance>",
            "pad_token": "<|im_end|>",
            "unk_token": "<|endoftext|>",
        },
        extra_special_tokens={**IMAGE_MARKERS, "video_token": "<video>"},
        additional_special_tokens=ROW_COL_TOKENS,
    )
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(**tiny_image_kwargs()),
        video_processor=SmolVLMVideoProcessor(
            **{k: v for k, v in tiny_image_kwargs().items() if k != "do_image_splitting"},
            num_frames=TINY_NUM_FRAMES,
            fps=1,
        ),
        tokenizer=tokenizer,
        image_seq_len=TINY_IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )
    save_tiny_model(folder, processor, SmolVLMConfig, SmolVLMVisionConfig, SmolVLMForConditionalGeneration)
