"""Exact supervised token ids per family: every assistant reply plus its end-of-turn text, nothing else.

Parametrised over the registry, so a newly registered family fails here until its expected formats are added.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import resolved_family
from vlmtune.collators.base import IGNORE_INDEX
from vlmtune.data.video import decode_video
from vlmtune.datasets import Sample, Turn, open_image
from vlmtune.errors import BadSample
from vlmtune.supported_models import FAMILIES

# What each family trains per assistant reply, as text: the reply and the end-of-turn that the released
# checkpoint's template writes after it (or the eos appended where the template writes none).
REPLY_FORMAT = {
    "llava-1.5": " {reply}</s>",
    "qwen2-vl": "{reply}<|im_end|>",
    "qwen2.5-vl": "{reply}<|im_end|>",
    "llava-next": " {reply}</s>",
    "llava-onevision": "{reply}<|im_end|>",
    "aria": "{reply}<|im_end|>",
    "idefics2": " {reply}<end_of_utterance>",
    "idefics3": " {reply}<end_of_utterance>",
    "smolvlm": " {reply}<end_of_utterance>",
    "gemma3": "{reply}<end_of_turn>",
    "internvl": "{reply}<|im_end|>",
    "llava-next-vicuna": " {reply}</s>",
    "llava-next-34b": "{reply}<|im_end|>",
    "llava-interleave": "\n{reply}<|im_end|>",
    "llava-next-video": " {reply}</s>",
    "lfm2-vl": "{reply}<|im_end|>",
    "ovis2": "{reply}<|im_end|>",
    "video-llama3": "{reply}<|im_end|>",
    "mistral3": "{reply}</s>",
    "pixtral": "{reply}</s>",
    "paligemma": "{reply}<eos>",
    "gemma4": "{reply}<turn|>",
    "glm4v": "{reply}<|user|>",
    "gemma3n": "{reply}<end_of_turn>",
    "qwen3-vl": "{reply}<|im_end|>",
    "qwen3-vl-moe": "{reply}<|im_end|>",
    "qwen3.5": "{reply}<|im_end|>",
    "qwen3.5-moe": "{reply}<|im_end|>",
    "qwen4-exp": "{reply}<|im_end|>",
    "llama-3.2-vision": "{reply}<|eot_id|>",
    "llama4": "{reply}<|eot|>",
    "perception-lm": "{reply}<|eot_id|>",
    "llava-composed": "{reply}<|im_end|>",
    "idefics3-composed": " {reply}<end_of_utterance>",
}

# The released prompt format of each family, for one system prompt, an image and two turns.
RENDERED = {
    "llava-1.5": "Be brief. USER: <image>\nWhich digit? ASSISTANT: 7</s> USER: Sure? ASSISTANT: Yes.</s> ",
    "qwen2-vl": (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>"
        "Which digit?<|im_end|>\n<|im_start|>assistant\n7<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n"
        "<|im_start|>assistant\nYes.<|im_end|>\n"
    ),
}
RENDERED["qwen2.5-vl"] = RENDERED["qwen2-vl"]
RENDERED["llava-next"] = (
    "<<SYS>>\nBe brief.\n<</SYS>>\n\n[INST] <image>\nWhich digit? [/INST] 7</s> [INST] Sure? [/INST] Yes.</s> "
)
RENDERED["llava-onevision"] = (
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<image>\nWhich digit?<|im_end|>\n"
    "<|im_start|>assistant\n7<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\nYes.<|im_end|>\n"
)
RENDERED["idefics3"] = (
    "<|begin_of_text|>System: Be brief.<end_of_utterance>\nUser:<image>Which digit?<end_of_utterance>\n"
    "Assistant: 7<end_of_utterance>\nUser: Sure?<end_of_utterance>\nAssistant: Yes.<end_of_utterance>\n"
)
RENDERED["smolvlm"] = RENDERED["idefics3"].replace("<|begin_of_text|>", "<|im_start|>")
RENDERED["gemma3"] = (
    "<bos><start_of_turn>user\nBe brief.\n\n<start_of_image>Which digit?<end_of_turn>\n<start_of_turn>model\n"
    "7<end_of_turn>\n<start_of_turn>user\nSure?<end_of_turn>\n<start_of_turn>model\nYes.<end_of_turn>\n"
)
RENDERED["internvl"] = (
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<IMG_CONTEXT>\nWhich digit?<|im_end|>\n"
    "<|im_start|>assistant\n7<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\nYes.<|im_end|>\n"
)
RENDERED["llava-next-vicuna"] = RENDERED["llava-1.5"]  # llava-v1.6-vicuna-*-hf ship the LLaVA-1.5 template
RENDERED["llava-next-34b"] = (
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<image>\nWhich digit?<|im_end|>\n"
    "<|im_start|>assistant\n7<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\nYes.<|im_end|>\n"
)
RENDERED["llava-interleave"] = (
    "<|im_start|>system\n\nBe brief.<|im_end|>\n<|im_start|>user\n<image>\nWhich digit?<|im_end|>\n"
    "<|im_start|>assistant\n\n7<|im_end|>\n<|im_start|>user\n\nSure?<|im_end|>\n"
    "<|im_start|>assistant\n\nYes.<|im_end|>\n"
)
RENDERED["llava-next-video"] = RENDERED["llava-1.5"]
RENDERED["lfm2-vl"] = (
    "<|startoftext|><|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<image>Which digit?<|im_end|>\n"
    "<|im_start|>assistant\n7<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\nYes.<|im_end|>\n"
)
RENDERED["ovis2"] = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>system\nBe brief.<|im_end|>\n"
    "<|im_start|>user\n<image>\nWhich digit?<|im_end|>\n<|im_start|>assistant\n7<|im_end|>\n"
    "<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\nYes.<|im_end|>\n"
)
RENDERED["video-llama3"] = (
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n<|image_pad|>\nWhich digit?<|im_end|>\n"
    "<|im_start|>assistant\n7<|im_end|>\n<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\nYes.<|im_end|>\n"
)
RENDERED["mistral3"] = (
    "<s>[SYSTEM_PROMPT]Be brief.[/SYSTEM_PROMPT][INST][IMG]Which digit?[/INST]7</s>[INST]Sure?[/INST]Yes.</s>"
)
# PaliGemma takes one prefix and one answer: its entry is for the single-turn sample without a system prompt.
RENDERED["paligemma"] = "<image><bos>Which digit?\n7<eos>"
RENDERED["pixtral"] = "<s>[INST]Be brief.\n\n[IMG]Which digit?[/INST]7</s>[INST]Sure?[/INST]Yes.</s>"
# A system prompt given as text parts renders each part trimmed plus one space (released template).
RENDERED["gemma4"] = (
    "<bos><|turn>system\nBe brief. <turn|>\n<|turn>user\n<|image|>Which digit?<turn|>\n<|turn>model\n7<turn|>\n"
    "<|turn>user\nSure?<turn|>\n<|turn>model\nYes.<turn|>\n"
)
# GLM-4.1V: the released text, plus the "<|user|>" that the collator appends to close the last reply.
RENDERED["glm4v"] = (
    "[gMASK]<sop><|system|>\nBe brief.<|user|>\n<|begin_of_image|><|image|><|end_of_image|>Which digit?<|assistant|>\n"
    "7<|user|>\nSure?<|assistant|>\nYes.<|user|>"
)
RENDERED["gemma3n"] = RENDERED["gemma3"].replace("<start_of_image>", "<image_soft_token>")
# Qwen3-VL writes no default system message (Qwen2-VL does); with the sample's system prompt both render alike.
RENDERED["qwen3-vl"] = RENDERED["qwen3-vl-moe"] = RENDERED["qwen2-vl"]
# Qwen3.5: the assistant turn after the last user message opens with an (empty) think block; earlier ones do not.
RENDERED["qwen3.5"] = RENDERED["qwen3.5-moe"] = RENDERED["qwen2-vl"].replace(
    "<|im_start|>assistant\nYes.", "<|im_start|>assistant\n<think>\n\n</think>\n\nYes."
)
# Qwen4-Exp (the Qwen3.8 template, thinking off): every assistant turn keeps its (empty) think block.
RENDERED["qwen4-exp"] = RENDERED["qwen2-vl"].replace(
    "<|im_start|>assistant\n", "<|im_start|>assistant\n<think>\n\n</think>\n\n"
)

# Llama 3.2 Vision's released template refuses a system prompt next to an image (the error below); its entry in
# RENDERED is the same conversation without the system prompt (and so without the dated system block).
RENDERED["llama-3.2-vision"] = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n<|image|>Which digit?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n7<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    "Sure?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nYes.<|eot_id|>"
)
RENDERED["llama4"] = (
    "<|begin_of_text|><|header_start|>system<|header_end|>\n\nBe brief.<|eot|><|header_start|>user<|header_end|>"
    "\n\n<|image|>Which digit?<|eot|><|header_start|>assistant<|header_end|>\n\n7<|eot|>"
    "<|header_start|>user<|header_end|>\n\nSure?<|eot|><|header_start|>assistant<|header_end|>\n\nYes.<|eot|>"
)
RENDERED["perception-lm"] = (
    "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
    "<|start_header_id|>user<|end_header_id|>\n\n<|image|>Which digit?<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n7<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    "Sure?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nYes.<|eot_id|>"
)
# tiny-llava-composed: vlmtune compose gives tiny-qwen3 (whose own template cannot render image parts) ChatML.
RENDERED["llava-composed"] = RENDERED["llava-onevision"]
# tiny-idefics3-composed: Idefics3's format; tiny-qwen3 has no bos, so none is written.
RENDERED["idefics3-composed"] = RENDERED["idefics3"].removeprefix("<|begin_of_text|>")
RENDERED["aria"] = RENDERED["qwen2-vl"].replace(
    "<|vision_start|><|image_pad|><|vision_end|>", "<fim_prefix><|img|><fim_suffix>"
)
RENDERED["idefics2"] = RENDERED["idefics3"].removeprefix("<|begin_of_text|>")  # idefics2-8b: no BOS text
# --- issue 19, batch C ---
# DeepSeek's format closes a reply with the end-of-sentence token (the collator adds it after the last one, which the
# converted templates leave open); a system message is "System: ..." closed the same way.
DEEPSEEK_EOS = "<\uff5cend\u2581of\u2581sentence\uff5c>"
REPLY_FORMAT.update(
    {
        "deepseek-vl": " {reply}" + DEEPSEEK_EOS,
        "deepseek-vl-hybrid": " {reply}" + DEEPSEEK_EOS,
        "janus": " {reply}" + DEEPSEEK_EOS,
        "vipllava": " {reply}</s>",
        "video-llava": " {reply}</s>",
        "muse-glimmer": "{reply}<|eot|>",
    }
)
RENDERED["deepseek-vl"] = RENDERED["deepseek-vl-hybrid"] = (
    "You are a helpful language and vision assistant. You are able to understand the visual content that the user "
    "provides, and assist the user with a variety of tasks using natural language.\n\n"
    f"System: Be brief.{DEEPSEEK_EOS}User: <image_placeholder>Which digit?\n\nAssistant: 7{DEEPSEEK_EOS}"
    f"User: Sure?\n\nAssistant: Yes.{DEEPSEEK_EOS}"
)
# Janus: the processor, not the template, writes the default system prompt; JanusCollator renders it too.
RENDERED["janus"] = (
    "You are a helpful language and vision assistant. You are able to understand the visual content that the user "
    "provides, and assist the user with a variety of tasks using natural language.\n\n"
    f"System: Be brief.{DEEPSEEK_EOS}<|User|>: <image_placeholder>\nWhich digit?\n\n<|Assistant|>: 7{DEEPSEEK_EOS}"
    f"<|User|>: Sure?\n\n<|Assistant|>: Yes.{DEEPSEEK_EOS}"
)
# Stand-ins (no copy of their own templates found): LLaVA-1.5's and LLaVA-NeXT-Video's Vicuna format.
RENDERED["vipllava"] = RENDERED["video-llava"] = RENDERED["llava-1.5"]
# Muse Glimmer's stand-in: Llama 4's template, an image written as <|patch|>.
RENDERED["muse-glimmer"] = RENDERED["llama4"].replace("<|image|>", "<|patch|>")

# Issue 19, batch B: the tiny models' stand-in templates (a real checkpoint's own is checked at load). GLM-4.6V,
# GLM-4.5V and GLM-5.3-Flash carry GLM-4.1V's; Aya Vision and Command A Vision carry Command-R's turns, each image
# written as the processor's placeholder, the reply closed by the eos "<|END_OF_TURN_TOKEN|>".
REPLY_FORMAT |= {
    "glm4.6v": "{reply}<|user|>",
    "glm4v-moe": "{reply}<|user|>",
    "glm5-next": "{reply}<|user|>",
    "aya-vision": "{reply}<|END_OF_TURN_TOKEN|>",
    "cohere2-vision": "{reply}<|END_OF_TURN_TOKEN|>",
}
RENDERED["glm4.6v"] = RENDERED["glm4v-moe"] = RENDERED["glm5-next"] = RENDERED["glm4v"]
RENDERED["aya-vision"] = (
    "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Be brief.<|END_OF_TURN_TOKEN|>"
    "<|START_OF_TURN_TOKEN|><|USER_TOKEN|><image>Which digit?<|END_OF_TURN_TOKEN|>"
    "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>7<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|USER_TOKEN|>Sure?"
    "<|END_OF_TURN_TOKEN|><|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Yes.<|END_OF_TURN_TOKEN|>"
)
RENDERED["cohere2-vision"] = RENDERED["aya-vision"].replace("<image>", "<|IMG_PATCH|>")
# --- issue 19, batch A: conventional families; their tiny models carry stand-in templates (see each loader) ---
REPLY_FORMAT["mistral-large4"] = REPLY_FORMAT["mistral3"]  # stand-in: Mistral Small 3.1's template
RENDERED["mistral-large4"] = RENDERED["mistral3"]
REPLY_FORMAT["lfm3-vl"] = REPLY_FORMAT["qwen3-vl"]  # stand-in: Qwen3-VL's template
RENDERED["lfm3-vl"] = RENDERED["qwen3-vl"]
REPLY_FORMAT["exaone4.5"] = REPLY_FORMAT["qwen2-vl"]  # stand-in: Qwen2-VL's template
RENDERED["exaone4.5"] = RENDERED["qwen2-vl"]
REPLY_FORMAT["step3.7"] = REPLY_FORMAT["qwen3-vl"]  # stand-in: Qwen3-VL's layout, images as <im_patch>
RENDERED["step3.7"] = RENDERED["qwen3-vl"].replace("<|vision_start|><|image_pad|><|vision_end|>", "<im_patch>")
REPLY_FORMAT["cosmos3-edge"] = REPLY_FORMAT["qwen3-vl"]  # stand-in: Qwen3-VL's template
RENDERED["cosmos3-edge"] = RENDERED["qwen3-vl"]
# MiniCPM-V 4.6 / 4.7 stand-in: Qwen3-VL's layout, each image as the tokenizer's placeholder alone.
REPLY_FORMAT["minicpm-v4.6"] = REPLY_FORMAT["minicpm-v4.7"] = REPLY_FORMAT["qwen3-vl"]
RENDERED["minicpm-v4.6"] = RENDERED["minicpm-v4.7"] = RENDERED["qwen3-vl"].replace(
    "<|vision_start|><|image_pad|><|vision_end|>", "<|image_pad|>"
)
# --- issue 19, batch E: omni models (images and video; audio towers frozen), their tiny models' stand-ins ---
REPLY_FORMAT["muse-spark"] = REPLY_FORMAT["muse-glimmer"]  # stand-in: muse-glimmer's (Llama 4's, images as <|patch|>)
RENDERED["muse-spark"] = RENDERED["muse-glimmer"]
REPLY_FORMAT["gemma4-unified"] = REPLY_FORMAT["gemma4"]  # stand-in: gemma4's template, the same processor tokens
RENDERED["gemma4-unified"] = RENDERED["gemma4"]
# Qwen Omni stand-in: Qwen2-VL's template, images as the Omni processor's markers.
REPLY_FORMAT["qwen2.5-omni"] = REPLY_FORMAT["qwen2-vl"]
RENDERED["qwen2.5-omni"] = RENDERED["qwen2-vl"].replace(
    "<|vision_start|><|image_pad|><|vision_end|>", "<|vision_bos|><|IMAGE|><|vision_eos|>"
)
REPLY_FORMAT["qwen3-omni"] = REPLY_FORMAT["qwen3-vl"]  # stand-in: Qwen3-VL's template, the Omni markers
RENDERED["qwen3-omni"] = RENDERED["qwen2.5-omni"]
REPLY_FORMAT["dots3-note"] = "{reply}<|endofassistant|>"  # stand-in: dots.ocr's layout (ms-swift)
RENDERED["dots3-note"] = (
    "<|system|>Be brief.<|endofsystem|>\n<|user|><|img|><|imgpad|><|endofimg|>Which digit?<|endofuser|><|assistant|>7"
    "<|endofassistant|><|user|>Sure?<|endofuser|><|assistant|>Yes.<|endofassistant|>"
)  # the conversation has a system turn: no default one differs
# --- end of issue 19, batch E ---

# --- issue 19, batch D: stand-in templates of the tiny models (see each loader) ---
REPLY_FORMAT["hyperclovax-vision-v2"] = REPLY_FORMAT["qwen2-vl"]  # stand-in: Qwen2-VL's template
RENDERED["hyperclovax-vision-v2"] = RENDERED["qwen2-vl"]
REPLY_FORMAT["inkling2"] = REPLY_FORMAT["qwen3-vl"]  # stand-in: Qwen3-VL's layout, images as the image token
RENDERED["inkling2"] = RENDERED["qwen3-vl"].replace("<|vision_start|><|image_pad|><|vision_end|>", "<|unused_200054|>")
REPLY_FORMAT["minimax-m3"] = REPLY_FORMAT["qwen3-vl"]  # stand-in: Qwen3-VL's layout, images as the image token
RENDERED["minimax-m3"] = RENDERED["qwen3-vl"].replace("<|vision_start|><|image_pad|><|vision_end|>", "]<]image[>[")
REPLY_FORMAT["ernie4.5-vl"] = REPLY_FORMAT["qwen2-vl"]  # stand-in: Qwen2-VL's layout in ERNIE's image brackets
RENDERED["ernie4.5-vl"] = RENDERED["qwen2-vl"].replace(
    "<|vision_start|><|image_pad|><|vision_end|>", "<|IMAGE_START|><|IMAGE_PLACEHOLDER|><|IMAGE_END|>"
)
REPLY_FORMAT["granite4-vision"] = REPLY_FORMAT["qwen3-vl"]  # stand-in: Qwen3-VL's layout, images as <image>
RENDERED["granite4-vision"] = RENDERED["qwen3-vl"].replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>")
# --- end of issue 19, batch D ---

# Families whose model reads images through cross-attention: one unexpanded token per image.
CROSS_ATTENTION_IMAGES = {"llama-3.2-vision"}
# Families whose released template refuses a system prompt together with images: the error it raises.
SYSTEM_PROMPT_WITH_IMAGES_ERROR = {"llama-3.2-vision": "Prompting with images is incompatible with system messages"}

FAMILY_IDS = sorted(FAMILIES)


def conversation(*texts: str) -> list[Turn]:
    return [Turn("user" if i % 2 == 0 else "assistant", text) for i, text in enumerate(texts)]


def shapes(images, video) -> dict[str, Sample]:
    seven, three = images
    return {
        "single_turn": Sample(conversation("<image>\nWhich digit is shown?", "7"), images=[seven]),
        "multi_turn": Sample(
            conversation("<image>\nWhich digit is shown?", "7", "Are you sure?", "Yes, it is a seven."), images=[seven]
        ),
        "system_prompt": Sample(
            conversation("<image>\nWhich digit?", "7"), images=[seven], system_prompt="Answer with the digit only."
        ),
        "multi_image": Sample(
            conversation("<image>\nWhich digit?", "7", "And this one? <image>", "That one is a three."),
            images=[seven, three],
        ),
        "two_images_one_turn": Sample(conversation("<image><image>\nWhich digits?", "7 and 3"), images=[seven, three]),
        "text_only": Sample(conversation("What comes after six?", "Seven.", "And after that?", "Eight.")),
        "video": Sample(conversation("<video>\nWhat happens?", "It gets brighter."), videos=[video]),
    }


def encode(collator, sample: Sample, num_frames: int = 4) -> dict[str, torch.Tensor]:
    images = [open_image(path) for path in sample.images]
    videos = [decode_video(path, num_frames) for path in sample.videos]
    return collator.encode(sample, images, videos)


def expected_ids(tokenizer, family_id: str, sample: Sample) -> list[int]:
    ids = []
    for turn in sample.turns:
        if turn.role == "assistant":
            ids += tokenizer.encode(REPLY_FORMAT[family_id].format(reply=turn.text), add_special_tokens=False)
    return ids


def test_every_family_has_expected_formats():
    assert set(REPLY_FORMAT) == set(FAMILIES) == set(RENDERED)


@pytest.mark.parametrize("family_id", FAMILY_IDS)
@pytest.mark.parametrize(
    "shape", ["single_turn", "multi_turn", "system_prompt", "multi_image", "two_images_one_turn", "text_only", "video"]
)
def test_supervised_ids_are_exactly_the_replies(family_id, shape, load_tiny, images, video):
    family = resolved_family(family_id)
    if shape == "video" and not family.video:
        pytest.skip(f"{family_id} takes no video")
    if shape in ("multi_image", "two_images_one_turn") and not family.multi_image:
        pytest.skip(f"{family_id} takes one image per sample")
    if shape in ("multi_turn", "multi_image") and not family.multi_turn:
        pytest.skip(f"{family_id} takes one user turn and one reply per sample")
    if shape == "system_prompt" and not family.system_prompt:
        pytest.skip(f"{family_id} takes no system prompt")
    _, processor = load_tiny(f"tiny-{family_id}")
    collator = family.collator(processor, family.reply_end, model_max_length=1024)
    sample = shapes(images, video)[shape]
    if not family.multi_turn:
        sample.turns = sample.turns[:2]  # the text-only sample as one prompt and one answer
    sample.source = shape
    if shape == "system_prompt" and family_id in SYSTEM_PROMPT_WITH_IMAGES_ERROR:
        with pytest.raises(BadSample, match="system_prompt: the chat template of .* refuses this sample: Prompting"):
            encode(collator, sample)
        return

    features = encode(collator, sample)
    input_ids, labels = features["input_ids"], features["labels"]

    supervised = input_ids[labels != IGNORE_INDEX].tolist()
    assert supervised == expected_ids(processor.tokenizer, family_id, sample)
    assert torch.equal(labels[labels != IGNORE_INDEX], input_ids[labels != IGNORE_INDEX])
    media_ids = list(collator.media_token_ids)
    is_media = torch.isin(input_ids, torch.tensor(media_ids))
    assert not (labels[is_media] != IGNORE_INDEX).any(), "an image/video token is trained"
    if family_id in CROSS_ATTENTION_IMAGES and sample.images:
        assert is_media.sum() == len(sample.images)
        assert features["cross_attention_mask"].shape[2] == len(sample.images), "an image has no cross-attention slot"
    elif sample.images or sample.videos:
        assert is_media.sum() > len(sample.images) + len(sample.videos), "placeholders were not expanded"


@pytest.mark.parametrize("family_id", FAMILY_IDS)
def test_template_renders_the_released_prompt_format(family_id, load_tiny, images):
    family = resolved_family(family_id)
    _, processor = load_tiny(f"tiny-{family_id}")
    collator = family.collator(processor, family.reply_end)
    turns = ("<image>\nWhich digit?", "7", "Sure?", "Yes.") if family.multi_turn else ("<image>\nWhich digit?", "7")
    system_prompt = "Be brief." if family.system_prompt else None
    sample = Sample(conversation(*turns), images=[images[0]], system_prompt=system_prompt)
    if family_id in SYSTEM_PROMPT_WITH_IMAGES_ERROR:
        with pytest.raises(Exception, match=SYSTEM_PROMPT_WITH_IMAGES_ERROR[family_id]):
            collator.render(collator.to_messages(sample))
        sample.system_prompt = None
    assert collator.render(collator.to_messages(sample)) == RENDERED[family_id]


@pytest.mark.parametrize("family_id", FAMILY_IDS)
def test_per_sample_system_prompt_is_used(family_id, load_tiny):
    family = resolved_family(family_id)
    if not family.system_prompt:
        pytest.skip(f"{family_id} takes no system prompt (the data check rejects one)")
    _, processor = load_tiny(f"tiny-{family_id}")
    collator = family.collator(processor, family.reply_end)
    texts = []
    for prompt in ("Answer in French.", "Answer in Greek."):
        features = encode(collator, Sample(conversation("Hello?", "Hi."), system_prompt=prompt, source="s"))
        texts.append(processor.tokenizer.decode(features["input_ids"]))
    assert "Answer in French." in texts[0] and "Answer in Greek." in texts[1]
