"""Every image-text-to-text model type of the installed transformers, and what vlmtune does with it.

    python -m vlmtune.supported_models --coverage        # each type: trains (family, template source) or why not
    OMP_NUM_THREADS=1 python scripts/coverage_probe.py   # the findings the reasons below come from

A type of `transformers.models.auto.modeling_auto.MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES` is either in `TRAINS`
(the families that train its checkpoints; each family record says where its template comes from) or in
`NOT_SUPPORTED` (a category and what was found by trying it: its config and model class built on the meta device,
its processor class, a search for its released chat template). tests/test_coverage.py fails when the installed
transformers maps a type that neither lists, or when a listed type is no longer mapped, so a new transformers pin
shows its new types at once. Types that the registry refuses by name (`register_unsupported`) take their reason
from that record, so the reason is written once.
"""

from __future__ import annotations

from collections import Counter

from vlmtune.supported_models import FAMILIES, UNSUPPORTED

# model type -> the families whose checkpoints are of that type
TRAINS: dict[str, tuple[str, ...]] = {
    "aria": ("aria",),
    "gemma3": ("gemma3",),
    "gemma3n": ("gemma3n",),
    "gemma4": ("gemma4",),
    "glm4v": ("glm4v",),
    "idefics2": ("idefics2",),
    "idefics3": ("idefics3", "idefics3-composed"),
    "internvl": ("internvl",),
    "lfm2_vl": ("lfm2-vl",),
    "llama4": ("llama4",),
    "llava": ("llava-1.5", "llava-interleave", "pixtral", "llava-composed"),
    "llava_next": ("llava-next", "llava-next-vicuna", "llava-next-34b"),
    "llava_next_video": ("llava-next-video",),
    "llava_onevision": ("llava-onevision",),
    "mistral3": ("mistral3",),
    "mllama": ("llama-3.2-vision",),
    "ovis2": ("ovis2",),
    "paligemma": ("paligemma",),
    "perception_lm": ("perception-lm",),
    "qwen2_5_vl": ("qwen2.5-vl",),
    "qwen2_vl": ("qwen2-vl",),
    "qwen3_5": ("qwen3.5",),
    "qwen3_5_moe": ("qwen3.5-moe",),
    "qwen3_vl": ("qwen3-vl",),
    "qwen3_vl_moe": ("qwen3-vl-moe",),
    "qwen4_exp": ("qwen4-exp",),
    "smolvlm": ("smolvlm",),
    "video_llama_3": ("video-llama3",),
    # issue 19, batch A
    "cosmos3_edge": ("cosmos3-edge",),
    "exaone4_5": ("exaone4.5",),
    "lfm3_vl": ("lfm3-vl",),
    "minicpmv4_6": ("minicpm-v4.6",),
    "minicpmv4_7": ("minicpm-v4.7",),
    "mistral_large4": ("mistral-large4",),
    "step3p7": ("step3.7",),
}
# Issue 19, batch B: conventional families whose released templates are read and checked at load.
TRAINS |= {
    "aya_vision": ("aya-vision",),
    "cohere2_vision": ("cohere2-vision",),
    "glm46v": ("glm4.6v",),
    "glm4v_moe": ("glm4v-moe",),
    "glm5_next": ("glm5-next",),
}

# Categories of "not supported"; `--coverage` counts the types per category.
TEMPLATE_UNCONFIRMED = "released template not confirmed"
REMOTE_CODE = "remote code only"
NO_CHAT_FORMAT = "no chat format"
NOT_CHAT_VLM = "not a chat VLM"
ENCODER_DECODER = "encoder-decoder"
NO_PROCESSOR = "no processor in transformers"
NO_TEMPLATE = "no released chat template found"
NO_FAMILY_YET = "no family yet"

# Where the released templates of the 2026 types were looked for: the search tool's code, issues and pages corpora
# (copies of the hub repository's chat_template.jinja / tokenizer_config.json, vLLM example prompts), by name.
SEARCHED = "searched 2026-12-07: public code, issues and pages for copies of its hub chat template and vLLM prompts"

REGISTERED = "register_unsupported:"


def registered(name: str) -> str:
    """Point at the registry's `register_unsupported(name, ...)` record: its reason is the one printed."""
    return REGISTERED + name


# model type -> (category, what was found by trying it)
NOT_SUPPORTED: dict[str, tuple[str, str]] = {
    "blip": (NO_CHAT_FORMAT, "VQA/captioning (Salesforce/blip-vqa-base): vision_model + text_decoder, no turns"),
    "blip-2": (NO_CHAT_FORMAT, registered("blip-2")),
    "chameleon": (
        NO_FAMILY_YET,
        "early-fusion VQ image tokens; the default config does not build (AttributeError on None)",
    ),
    "cohere_compass": (NO_FAMILY_YET, "the default config does not build (KeyError 'full_attention')"),
    "cosmos3_omni": (NO_PROCESSOR, "no processor class is mapped to the type (nvidia/Cosmos3-Nano)"),
    "deepseek_ocr2": (NO_CHAT_FORMAT, "document OCR with task prompts (deepseek-community/DeepSeek-OCR-2)"),
    "deepseek_vl": (
        NO_FAMILY_YET,
        "vision_model + aligner + language_model (deepseek-vl-1.3b-chat); template not looked up",
    ),
    "deepseek_vl_hybrid": (
        NO_FAMILY_YET,
        "two vision towers (high-res SAM + SigLIP) + aligner; template not looked up",
    ),
    "diffusion_gemma": (
        NOT_CHAT_VLM,
        "a block-diffusion model (DiffusionGemmaForBlockDiffusion): denoises blocks; next-token labels do not apply",
    ),
    "dots3_note": (
        NO_FAMILY_YET,
        "language_model + vision_tower + audio_tower (dots3-note-prev); template not looked up",
    ),
    "emu3": (
        NO_FAMILY_YET,
        "VQ image tokenizer (Emu3-Chat-hf); the default config does not build (AttributeError on None)",
    ),
    "ernie4_5_vl_moe": (
        NO_TEMPLATE,
        "baidu/ERNIE-4.5-VL-28B-A3B-PT (vision_tower + resampler_model + MoE language_model); a tiny config of its "
        "classes builds and trains a step, but its processor also returns moe_mm_token_type_ids, a per-token row "
        "the shared collator does not batch, and the processor ships no template; the one outside copy found "
        "(DEFAULT_CHAT_TEMPLATE, transformers' convert_ernie4_5_vl_moe_to_hf.py) holds a newline plus 12 spaces "
        "inside its string literals and closes a reply with the text '<|end_of_sentence |>' (with a space, no token), "
        "so neither a stand-in nor the end-of-turn can be taken from it; " + SEARCHED,
    ),
    "evolla": (NOT_CHAT_VLM, "a protein-text model: protein encoder + protein tokenizer, no image input"),
    "fast_vlm": (NO_PROCESSOR, "no processor class is mapped to the type (KamilaMila/FastVLM-7B)"),
    "florence2": (NO_CHAT_FORMAT, "task prompts (<OCR>, <CAPTION>, <OD>), not conversations (Florence-2-base)"),
    "fuyu": (NO_CHAT_FORMAT, "adept/fuyu-8b is a base model prompted with plain text; patches go straight to the LM"),
    "gemma4_unified": (NO_FAMILY_YET, "Gemma 4 with audio and image towers inside the language model; not tried yet"),
    "git": (NO_CHAT_FORMAT, registered("git")),
    "glm_ocr": (NO_CHAT_FORMAT, "document OCR (zai-org/GLM-OCR); no processor class is mapped to the type either"),
    "glmga": (NO_PROCESSOR, "maps to Glm46VForConditionalGeneration; no processor class is mapped to the type"),
    "got_ocr2": (NO_CHAT_FORMAT, "OCR with format/box arguments to GotOcr2Processor, not conversations"),
    "granite4_vision": (
        NO_TEMPLATE,
        "no released checkpoint is named (the docstring's is a placeholder); the default config does not build "
        "(TypeError: len() of None: deepstack_layer_map is required); a tiny config (deepstack_layer_map, "
        "spatial_target_layers, downsample_rate) builds and trains a step; its projectors (layerwise_projectors, "
        "spatial_projectors) are not the convention's names; Granite4VisionProcessor ships no template; " + SEARCHED,
    ),
    "granite_docling": (NO_CHAT_FORMAT, "document conversion to DocTags (ibm-granite/granite-for-docling-500m)"),
    "hunyuan_vl": (
        NO_TEMPLATE,
        "the only checkpoint transformers names is tencent/HunyuanOCR (its config docstring: 'the dense-only, "
        "image-text-only variant used for OCR and document-understanding'); the default config does not build "
        "(TypeError: None ** float), a tiny config with rope_parameters "
        "builds and trains a step; HunYuanVLProcessor ships no template (it checks that a chat template wrapped each "
        "image in its start/end tokens) and no copy of HunyuanOCR's was found; " + SEARCHED,
    ),
    "hyperclovax_vision_v2": (NO_FAMILY_YET, "vision_model + projector + language_model; template not looked up"),
    "idefics": (NO_FAMILY_YET, "Flamingo-style gated cross-attention layers inside the LM (idefics-9b)"),
    "inkling2": (NO_FAMILY_YET, "language_model + vision_tower (Inkling-2-Small-MXFP8); template not looked up"),
    "inkling_mm_model": (NO_FAMILY_YET, "language_model + audio_tower + vision_tower; template not looked up"),
    "instructblip": (NO_CHAT_FORMAT, registered("instructblip")),
    "instructblipvideo": (NO_CHAT_FORMAT, "InstructBLIP on video frames: a Q-Former prompt, not conversations"),
    "janus": (
        NO_FAMILY_YET,
        "vision_model + aligner + language_model plus image-generation modules (Janus-Pro-1B); the template is "
        "CHAT_TEMPLATE of transformers' convert_janus_weights_to_hf.py, and JanusProcessor writes a default system "
        "prompt itself (use_default_system_prompt), which a family must reproduce",
    ),
    "kimi_k25": (REMOTE_CODE, registered("kimi-k2.5")),
    "kosmos-2": (NO_CHAT_FORMAT, registered("kosmos-2")),
    "kosmos-2.5": (NO_CHAT_FORMAT, "document OCR/markdown with task prompts; no processor class is mapped either"),
    "lighton_ocr": (NO_CHAT_FORMAT, "document OCR (lightonai/LightOnOCR-1B-1025)"),
    "minicpm_ocr": (NO_CHAT_FORMAT, "document OCR (openbmb/MiniCPM-OCR-1.0)"),
    "minimax_m3_vl": (NO_FAMILY_YET, "LLaVA layout (MiniMaxAI/MiniMax-M3); template not looked up"),
    "mistral4": (NOT_CHAT_VLM, "maps to Mistral4ForCausalLM: a text-only causal LM, no vision part, no processor"),
    "molmo2": (TEMPLATE_UNCONFIRMED, registered("molmo2")),
    "muse_glimmer": (NO_FAMILY_YET, "vision_tower + vision_adapter + vision_projection + LM; template not looked up"),
    "muse_spark": (NO_FAMILY_YET, "as muse_glimmer plus an audio tower (816B-A42B); template not looked up"),
    "nemotron_h_omni": (NO_FAMILY_YET, "vision_model + projector + hybrid Mamba LM + audio; template not looked up"),
    "paddleocr_vl": (NO_CHAT_FORMAT, "document OCR/parsing with task prompts (PaddlePaddle/PaddleOCR-VL)"),
    "pi0": (
        NOT_CHAT_VLM,
        "a robot policy (lerobot/pi0_base): a VLM plus an action expert; predicts actions, no generate",
    ),
    "pix2struct": (NO_CHAT_FORMAT, registered("pix2struct")),
    "pp_chart2table": (NO_CHAT_FORMAT, "chart-to-table conversion (PaddlePaddle/PP-Chart2Table)"),
    "pp_formulanet": (ENCODER_DECODER, "formula recognition (PP-FormulaNet): encoder + decoder, no turns"),
    "qianfan_ocr": (NO_CHAT_FORMAT, "document OCR (baidu/Qianfan-OCR)"),
    "qwen2_5_omni_thinker": (
        NO_PROCESSOR,
        "the thinker of Qwen2.5-Omni: no processor class is mapped to the thinker type (the checkpoint's is the "
        "Omni processor, with audio); image/video training through it is not written yet",
    ),
    "qwen3_omni_moe_thinker": (
        NO_PROCESSOR,
        "the thinker of Qwen3-Omni: no processor class is mapped to the thinker type (the checkpoint's is the "
        "Omni processor, with audio); image/video training through it is not written yet",
    ),
    "shieldgemma2": (
        NOT_CHAT_VLM,
        "an image safety classifier (google/shieldgemma-2-4b-it): fixed policy prompts, scored by yes/no logits",
    ),
    "t5gemma2": (ENCODER_DECODER, "encoder + decoder (google/t5gemma-2-270m-270m): the core builds decoder-only rows"),
    "udop": (ENCODER_DECODER, "document understanding encoder-decoder (microsoft/udop-large), no turns"),
    "unlimited_ocr": (NO_CHAT_FORMAT, "document OCR (baidu/Unlimited-OCR)"),
    "video_llava": (NO_FAMILY_YET, "separate image and video towers (Video-LLaVA-7B-hf); template not looked up"),
    "vipllava": (
        NO_FAMILY_YET,
        "LLaVA layout with visual prompts (vip-llava-7b-hf); only the one-turn generation prompt is quoted "
        "('###Human: <image>\\n...###Assistant:', transformers tests/models/vipllava), not how a reply ends",
    ),
    "vision-encoder-decoder": (ENCODER_DECODER, "a generic encoder + decoder pairing; no processor class is mapped"),
}
# --- issue 19, batch C: what trying DeepSeek-VL, Janus, ViP-LLaVA, Video-LLaVA and four 2026 types found -----------
# (one block for the three-branch merge; fold it into the tables above when the batches are in)
TRAINS.update(
    {
        "deepseek_vl": ("deepseek-vl",),
        "deepseek_vl_hybrid": ("deepseek-vl-hybrid",),
        "janus": ("janus",),
        "muse_glimmer": ("muse-glimmer",),
        "video_llava": ("video-llava",),
        "vipllava": ("vipllava",),
    }
)
for _trained in ("deepseek_vl", "deepseek_vl_hybrid", "janus", "muse_glimmer", "video_llava", "vipllava"):
    del NOT_SUPPORTED[_trained]
NOT_SUPPORTED.update(
    {
        "hyperclovax_vision_v2": (
            NO_TEMPLATE,
            "naver-hyperclovax/HyperCLOVAX-SEED-Think-32B (vision_model + projector + language_model: the "
            "convention's parts, derived on the meta device); HyperCLOVAXVisionV2Processor ships no template and its "
            "code says the hub template writes a <|video_duration|> text placeholder; only the text siblings' "
            "ChatML + <|endofturn|> turns are described in public copies, not how images are written; " + SEARCHED,
        ),
        "inkling2": (
            NO_TEMPLATE,
            "thinkingmachines/Inkling-2-Small-MXFP8 (language_model + vision_tower with its merger: the convention's "
            "parts); Inkling2Processor ships no template and names <|unused_200054|> as image token; no sibling's "
            "template to stand in; " + SEARCHED,
        ),
        "minimax_m3_vl": (
            NO_TEMPLATE,
            "MiniMaxAI/MiniMax-M3 (LLaVA layout: the convention's parts); MiniMaxM3VLProcessor ships no template and "
            "writes images as ]<]image[>[ tokens, which no found MiniMax template (ms-swift's MiniMax-Text-01/VL-01 "
            "<beginning_of_sentence> format) uses; " + SEARCHED,
        ),
    }
)
# The rest of the 2026 generation (issue 19) waits on templates: a tiny model against an invented format proves
# nothing (docs/architecture.md), so these stay NO_TEMPLATE until an outside copy of the released template exists.

# --- issue 19, batch D: types once refused for their template alone now train by convention (a labelled stand-in in
# the tiny model, the checkpoint's own template derived and checked at load) -----------------------------------------
BATCH_D = {
    "hyperclovax_vision_v2": ("hyperclovax-vision-v2",),
    "inkling2": ("inkling2",),
    "minimax_m3_vl": ("minimax-m3",),
    "ernie4_5_vl_moe": ("ernie4.5-vl",),
    "granite4_vision": ("granite4-vision",),
}
TRAINS.update(BATCH_D)
for _trained in BATCH_D:
    del NOT_SUPPORTED[_trained]
# HunyuanOCR, the one checkpoint named for the type, is a document-OCR model prompted with fixed task instructions
# (text spotting, document parsing, field extraction, translation: the HunyuanOCR README and candle's hunyuan-ocr
# example), as paddleocr_vl and the other OCR types above: no conversations to train.
NOT_SUPPORTED["hunyuan_vl"] = (
    NO_CHAT_FORMAT,
    "document OCR with task prompts (tencent/HunyuanOCR, the only checkpoint transformers names; its config "
    "docstring: 'the dense-only, image-text-only variant used for OCR and document-understanding'); tried: the "
    "default config does not build (TypeError: None ** float), a tiny config with rope_parameters builds and trains "
    "a step, and HunYuanVLProcessor ships no template",
)
# --- end of issue 19, batch D ---
# --- issue 19, batch E: omni models trained on images and video (their audio towers stay frozen) ---
TRAINS.update(
    {
        "dots3_note": ("dots3-note",),
        "gemma4_unified": ("gemma4-unified",),
        "muse_spark": ("muse-spark",),
        "qwen2_5_omni_thinker": ("qwen2.5-omni",),
        "qwen3_omni_moe_thinker": ("qwen3-omni",),
    }
)
for _trained in ("dots3_note", "gemma4_unified", "muse_spark", "qwen2_5_omni_thinker", "qwen3_omni_moe_thinker"):
    del NOT_SUPPORTED[_trained]
NOT_SUPPORTED["nemotron_h_omni"] = (
    NO_TEMPLATE,
    "nvidia/Nemotron-3-Nano-Omni-30B-A3B-Reasoning-BF16 (vision_model (RADIO) + multi_modal_projector + a hybrid "
    "Mamba language_model, an optional Parakeet audio_tower: the convention's parts, derived on the meta device); "
    "its processor ships no template (images as <img><image>...</img>) and no copy of this checkpoint's was found; "
    "the nearest sibling's that was (NVIDIA-Nemotron-Nano-v2's, llama.cpp models/templates) is a reasoning template "
    "whose non-thinking generation prompt adds '<think></think>' that history turns lack and which strips every "
    "reply, so no prefix of a conversation ends where a reply starts: no stand-in can be checked; " + SEARCHED,
)
NOT_SUPPORTED["inkling_mm_model"] = (
    NO_FAMILY_YET,
    "thinkingmachines/Inkling (InklingForConditionalGeneration: language_model + vision_tower + audio_tower; the "
    "default config builds on the meta device); the vision tower is a stack of space-to-depth projections whose last "
    "one (encoder_layers[num_hidden_layers - 1]) maps into the language model's width: the projector, at an index "
    "the config decides, which neither the convention's names nor a fixed record's prefixes can name (records have "
    "no config-derived parts yet); InklingProcessor ships no template (images as <|content_image|> + "
    "<|unused_200054|> tokens), so its tiny model would carry inkling2's stand-in (Qwen3-VL's layout); " + SEARCHED,
)
# --- end of issue 19, batch E ---


def reason(model_type: str) -> str:
    """Why `model_type` is not supported, in one line."""
    category, detail = NOT_SUPPORTED[model_type]
    if detail.startswith(REGISTERED):
        detail = UNSUPPORTED[detail.removeprefix(REGISTERED)].reason
    return f"{category}: {detail}"


def coverage_rows() -> list[tuple[str, str, str]]:
    """(model type, status, detail) for every listed type, trained ones first."""
    rows = []
    for model_type in sorted(TRAINS):
        for family_id in TRAINS[model_type]:
            rows.append((model_type, f"trains: {family_id}", FAMILIES[family_id].template_source))
    rows += [(model_type, "not supported", reason(model_type)) for model_type in sorted(NOT_SUPPORTED)]
    return rows


def format_coverage() -> str:
    """The table of every type with its status, then the counts (trains / not supported, by category)."""
    lines = [f"{t:<24} {status:<28} {detail}" for t, status, detail in coverage_rows()]
    categories = Counter(category for category, _ in NOT_SUPPORTED.values())
    lines.append("")
    lines.append(f"{len(TRAINS) + len(NOT_SUPPORTED)} types: {len(TRAINS)} train, {len(NOT_SUPPORTED)} not supported")
    lines += [f"  {count:>3}  {category}" for category, count in categories.most_common()]
    return "\n".join(lines)
