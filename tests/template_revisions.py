"""Published revisions of released chat templates, to test the masking core against each (tests/test_templates.py).

Each entry renders exactly what the cited revision renders for vlmtune's conversations (text, image and video
parts; no tools), written as our own Jinja: the layout is a fact of the checkpoint, the template text is ours.
Where a revision marks replies with `{% generation %}` blocks, so does its entry (the core cross-checks them).
The family's tiny template (in its loader) is one more revision of each family and is tested by test_masking.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Revision:
    family_id: str
    name: str
    citation: str  # where the revision was found: repository, path, commit or date
    template: str
    # What each reply trains, as text (`{reply}` is the reply); None: the family's REPLY_FORMAT in test_masking.py.
    reply_format: str | None = None
    # The revision accepts a system prompt next to images (None: as the family record says).
    system_prompt_with_images: bool | None = None
    # The revision cannot be trained with as it stands: the one-line TemplateError that every sample gets.
    refused: str | None = None


# --- LLaVA-1.5 (and LLaVA-NeXT-Vicuna, which ships the same file) ------------------------------------------

LLAVA_1_5_GENERATION = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% if message['role'] == 'assistant' %}"
    "{% for part in message['content'] if part['type'] == 'text' %}"
    "{% generation %}{{ part['text'] + ' ' }}{% endgeneration %}{% endfor %}"
    "{% else %}{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] + ' ' }}{% endfor %}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# --- LLaVA-NeXT (Mistral) ------------------------------------------------------------------------------------

# An early revision closed each reply with the text "<\\s>" (a typo for "</s>"): the eos token is never written,
# so a model trained on it never learns to stop. The core refuses it (the family's reply_end "</s>" is missing).
LLAVA_NEXT_EARLY = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ '<<SYS>>\n' + message['content'][0]['text'] + '\n<</SYS>>\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}{{ part['text'] }}{% endfor %}"
    "{{ ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'][0]['text'] + '<' + '\\\\' + 's> ' }}"
    "{% endif %}"
    "{% endfor %}"
)

# --- Qwen2-VL / Qwen2.5-VL ------------------------------------------------------------------------------------

# The hub revision with `add_vision_id` ("Picture 1: " before each image when the caller asks; vlmtune does not), and
# media recognised by type or by an "image"/"image_url"/"video" key; otherwise the layout of the tiny template.
QWEN2_VL_VISION_ID = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part or 'image_url' in part %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif part['type'] == 'video' or 'video' in part %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
QWEN2_VL_CITATION = (
    "Qwen/Qwen2-VL-2B-Instruct tokenizer_config.json (the same in Qwen2.5-VL's chat_template.json), as listed in "
    "openvinotoolkit/openvino.genai src/cpp/src/tokenizer/chat_template_fallback_map.hpp ('Qwen2-VL-2B-Instruct')"
)

# --- Idefics3 / SmolVLM ---------------------------------------------------------------------------------------


def smolvlm_layout(video: bool) -> str:
    """ "<|im_start|>", then per turn "{Role}: " (":" alone when the turn starts with an image), its parts,
    "<end_of_utterance>\\n"; generation prompt "Assistant:". `video`: "<video>" where a video stands."""
    video_part = "{% elif part['type'] == 'video' %}{{ '<video>' }}" if video else ""
    return (
        "<|im_start|>{% for message in messages %}"
        "{{ message['role'] | capitalize }}{{ ':' if message['content'][0]['type'] == 'image' else ': ' }}"
        "{% for part in message['content'] %}"
        "{% if part['type'] == 'text' %}{{ part['text'] }}{% elif part['type'] == 'image' %}{{ '<image>' }}"
        + video_part
        + "{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
        "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
    )


# --- LLaVA-OneVision -----------------------------------------------------------------------------------------

ONEVISION_CONVERSION = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'video' %}{{ '<video>\n' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ part['text'] }}{% endgeneration %}"
    "{% else %}{{ part['text'] }}{% endif %}"
    "{% endfor %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Each turn opens "<|im_start|>{role} ", media without newlines, each text part after a "\n", no newline between
# turns; the generation prompt "<|im_start|>assistant\n" is not how a rendered assistant turn opens.
ONEVISION_SPACE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + ' ' }}"
    "{% for part in message['content'] if part['type'] == 'image' %}{{ '<image>' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'video' %}{{ '<video>' }}{% endfor %}"
    "{% for part in message['content'] if part['type'] == 'text' %}"
    "{% if message['role'] == 'assistant' %}{% generation %}{{ '\n' + part['text'] }}{% endgeneration %}"
    "{% else %}{{ '\n' + part['text'] }}{% endif %}"
    "{% endfor %}"
    "{{ '<|im_end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

# --- Llama 3.2 Vision ----------------------------------------------------------------------------------------

# The revision published on the hub after the release: a system prompt given with images is written (with the
# dated system block) instead of refused; without one, conversations with images still get no system block.
MLLAMA_USER_SYSTEM = (
    "{{- bos_token }}"
    "{%- if not date_string is defined %}"
    "{%- if strftime_now is defined %}{%- set date_string = strftime_now('%d %b %Y') %}"
    "{%- else %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- endif %}"
    "{%- set user_system = messages[0]['role'] == 'system' %}"
    "{%- if user_system %}{%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{%- set media = namespace(images=false) %}"
    "{%- for message in messages %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'image' %}{%- set media.images = true %}{%- endif %}"
    "{%- endfor %}{%- endfor %}"
    "{%- if user_system or not media.images %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n' }}"
    "{{- 'Today Date: ' + date_string + '\n\n' + system_message + '<|eot_id|>' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'image' %}{{- '<|image|>' }}{%- elif part['type'] == 'text' %}{{- part['text'] }}"
    "{%- endif %}{%- endfor %}{%- endif %}"
    "{{- '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{%- endif %}"
)

REVISIONS = [
    Revision(
        "llava-1.5",
        "hub-generation",
        "llava-hf/llava-1.5-7b-hf chat_template.json, as quoted in huggingface/transformers "
        "tests/models/llava/test_processing_llava.py @043bb8d ('must match ... the Hub repo')",
        LLAVA_1_5_GENERATION,
    ),
    Revision(
        "llava-next-vicuna",
        "hub-generation",
        "llava-hf/llava-v1.6-vicuna-7b-hf ships the llava-1.5 file (see vlmtune/loaders/llava_next.py); "
        "huggingface/transformers tests/models/llava/test_processing_llava.py @043bb8d",
        LLAVA_1_5_GENERATION,
    ),
    Revision(
        "llava-next",
        "hub-early",
        "llava-hf/llava-v1.6-mistral-7b-hf chat_template.json, early revision, as listed in openvinotoolkit/"
        "openvino.genai src/cpp/src/tokenizer/chat_template_fallback_map.hpp "
        "('llava-v1.6-mistral (chat_template.json)')",
        LLAVA_NEXT_EARLY,
        refused="does not close a reply with '</s>'",
    ),
    Revision("qwen2-vl", "hub-vision-id", QWEN2_VL_CITATION, QWEN2_VL_VISION_ID),
    Revision("qwen2.5-vl", "hub-vision-id", QWEN2_VL_CITATION, QWEN2_VL_VISION_ID),
    Revision(
        "idefics3",
        "smolvlm-v1",
        "the SmolVLM (v1) checkpoints registered under idefics3 (HuggingFaceTB/SmolVLM-256M/-500M-Instruct): their "
        "chat template, as in huggingface/transformers tests/models/smolvlm/test_processing_smolvlm.py @007bc1e",
        smolvlm_layout(video=False),
    ),
    Revision(
        "smolvlm",
        "processor-default",
        "transformers 5.23.0 src/transformers/models/smolvlm/processing_smolvlm.py DEFAULT_CHAT_TEMPLATE (the one "
        "SmolVLMProcessor uses for conversations with a video; images and videos)",
        smolvlm_layout(video=True),
    ),
    Revision(
        "llava-onevision",
        "conversion",
        "huggingface/transformers src/transformers/models/llava_onevision/convert_llava_onevision_weights_to_hf.py "
        "@01080c6 (the chat_template the conversion saves with each -ov-hf checkpoint)",
        ONEVISION_CONVERSION,
    ),
    Revision(
        "llava-onevision",
        "hub-2024-10",
        "llava-hf/llava-onevision-qwen2-0.5b-ov-hf chat_template.json as quoted by zjysteven/lmms-finetune "
        "collators/llava_onevision.py @706e8c9 (2024-10-16); the same layout in huggingface/transformers "
        "tests/models/llava_onevision/test_processing_llava_onevision.py @1a6e6ad",
        ONEVISION_SPACE,
    ),
    Revision(
        "llama-3.2-vision",
        "hub-2024-12",
        "meta-llama/Llama-3.2-11B-Vision-Instruct chat_template.json as quoted by zjysteven/lmms-finetune "
        "collators/llama_3_2_vision.py @1157f46 (2024-12-07; 'user_supplied_system_message')",
        MLLAMA_USER_SYSTEM,
        system_prompt_with_images=True,
    ),
]
