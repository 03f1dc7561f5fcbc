"""The registry: which models vlmtune finetunes, and everything it knows about each family.

    python -m vlmtune.supported_models                  # table of model ids, families and checkpoints
    python -m vlmtune.supported_models --families       # what each family accepts (the table in README.md)
    python -m vlmtune.supported_models --unsupported    # model families vlmtune cannot support, and why
    python -m vlmtune.supported_models --coverage       # every image-text-to-text type of transformers: status

A family is one record (`Family`); a model is one line (`register_model(model_id, family_id, hf_path)`).
Adding a checkpoint of a known family takes one `register_model` line; see docs/add_new_model.md.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from vlmtune.collators.base import VLMCollator
from vlmtune.collators.cosmos3_edge import Cosmos3EdgeCollator
from vlmtune.collators.deepseek import DeepseekCollator, JanusCollator
from vlmtune.collators.glm4v import Glm4vCollator
from vlmtune.collators.idefics3 import Idefics3Collator
from vlmtune.collators.llama4 import Llama4Collator
from vlmtune.collators.llava_composed import ComposedCollator
from vlmtune.collators.llava_next import LlavaNextCollator
from vlmtune.collators.llava_onevision import LlavaOnevisionCollator
from vlmtune.collators.minicpmv import MiniCPMVCollator
from vlmtune.collators.mistral3 import Mistral3Collator
from vlmtune.collators.mllama import MllamaCollator
from vlmtune.collators.ovis2 import Ovis2Collator
from vlmtune.collators.paligemma import PaliGemmaCollator
from vlmtune.collators.perception_lm import PerceptionLMCollator
from vlmtune.collators.pixtral import PixtralCollator
from vlmtune.collators.qwen2_vl import Qwen2VLCollator
from vlmtune.collators.qwen3_vl import Qwen3_5Collator, Qwen3VLCollator
from vlmtune.collators.smolvlm import SmolVLMCollator
from vlmtune.datasets import TO_LOAD_IMAGE
from vlmtune.errors import UnknownNameError
from vlmtune.loaders import (
    aria,
    cohere_vision,
    cosmos3_edge,
    deepseek_vl,
    dots3_note,
    ernie4_5_vl_moe,
    exaone4_5,
    gemma3,
    gemma3n,
    gemma4,
    gemma4_unified,
    glm4v,
    glm46v,
    granite4_vision,
    hyperclovax_vision_v2,
    idefics2,
    idefics3,
    inkling2,
    internvl,
    janus,
    lfm2_vl,
    lfm3_vl,
    llama4,
    llava,
    llava_composed,
    llava_interleave,
    llava_next,
    llava_next_video,
    llava_onevision,
    minicpmv4_6,
    minimax_m3_vl,
    mistral3,
    mistral_large4,
    mllama,
    muse_glimmer,
    muse_spark,
    ovis2,
    paligemma,
    perception_lm,
    pixtral,
    qwen2_vl,
    qwen3_5,
    qwen3_vl,
    qwen4_exp,
    qwen_omni,
    smolvlm,
    step3p7,
    video_llama3,
    video_llava,
    vipllava,
)
from vlmtune.loaders.base import load_auto
from vlmtune.loaders.tiny import TINY_PREFIX


@dataclass(frozen=True)
class ModulePrefixes:
    """Module-path prefixes (as in `model.named_modules()`) of the parts that training modes freeze or adapt.

    The longest matching prefix decides, so a projector nested inside the vision tower (Qwen's `merger`) is
    still the projector. Every parameter must fall under one of the prefixes; `others` catches the rest.
    """

    vision_encoder: tuple[str, ...]
    vision_projector: tuple[str, ...]
    llm: tuple[str, ...]
    others: tuple[str, ...] = ()


@dataclass(frozen=True)
class Family:
    family_id: str
    load: Callable[..., Any]  # load(path, **from_pretrained_kwargs) -> (model, processor)
    # Writes a tiny random checkpoint of the family's real classes (None only for the anonymous record that
    # `vlmtune check FOLDER` derives for a folder of no registered family).
    build_tiny: Callable[[Path], None] | None
    collator: type  # a subclass of vlmtune.collators.base.VLMCollator
    modules: ModulePrefixes | None  # None only while derived (see `derived`)
    # TO_LOAD_IMAGE entry: open images with PIL in the dataset (True) or hand the path to the processor (False).
    to_load_image: bool
    # Text that closes an assistant reply in the rendered template and is trained with it. None: the template
    # renders no end-of-turn, so the tokenizer's eos is appended to every reply (the model must learn to stop).
    reply_end: str | None
    multi_image: bool = True
    video: bool = False
    system_prompt: bool = True
    multi_turn: bool = True  # False: one user turn and one reply per sample (a prompt/answer format)
    # False where the template refuses a system prompt in a sample with images (Llama 3.2 Vision).
    system_prompt_with_images: bool = True
    # --packing is allowed (vlmtune/core/packing.py): verified to keep packed samples apart, tests/test_packing.py.
    # Not for models whose layers carry state along the row past a sample's end (Qwen3.5's linear attention,
    # LFM2's short convolutions) or whose image tokens attend both ways (Gemma, PaliGemma), nor cross-attention.
    packing: bool = False
    # Where the released prompt format that the tiny template reproduces was read ("outside copy: ..."), or
    # "processor default: ..." where transformers' processor ships the template. README's families table shows it.
    template_source: str = ""
    notes: str = ""
    # Fields filled in from each checkpoint's own files before it is used (`conventional_family`; the checks in
    # vlmtune/core/checkpoint.py): a hand-written record derives nothing, its values are checked against the files.
    derived: tuple[str, ...] = ()


# What a sample may hold, per family; a checkpoint whose own template accepts more or less overrides it.
CAPABILITIES = ("multi_image", "video", "system_prompt", "multi_turn", "system_prompt_with_images")


@dataclass(frozen=True)
class ModelEntry:
    model_id: str
    family_id: str
    hf_path: str
    # (capability, value) pairs where this checkpoint's chat template differs from its family's (e.g. a later
    # template revision that accepts a system prompt next to images).
    capabilities: tuple[tuple[str, bool], ...] = ()
    # The family record once its checkpoint's files were checked and its derived fields filled in
    # (`vlmtune.core.checkpoint.checked_entry`); None until then.
    resolved: Family | None = None

    @property
    def is_tiny(self) -> bool:
        return self.model_id.startswith(TINY_PREFIX)

    @property
    def family(self) -> Family:
        """The family record, with this checkpoint's capability overrides applied."""
        if self.resolved is not None:
            return self.resolved
        family = get_family(self.family_id)
        if not self.capabilities:
            return family
        # A registered override is this checkpoint's fact: no longer left to derivation.
        derived = tuple(name for name in family.derived if name not in dict(self.capabilities))
        return replace(family, **dict(self.capabilities), derived=derived)


FAMILIES: dict[str, Family] = {}
MODELS: dict[str, ModelEntry] = {}


def register_family(family: Family) -> Family:
    """Add a family record and its built-in `tiny-<family>` model id."""
    if family.family_id in FAMILIES:
        raise ValueError(f"family {family.family_id!r} is already registered")
    FAMILIES[family.family_id] = family
    TO_LOAD_IMAGE[family.family_id] = family.to_load_image
    register_model(
        TINY_PREFIX + family.family_id, family.family_id, f"(built locally: {TINY_PREFIX}{family.family_id})"
    )
    return family


# What a conventional family leaves to its checkpoint's files (vlmtune/loaders/convention.py).
DERIVED_FIELDS = ("modules", "reply_end", *CAPABILITIES)


def conventional_family(family_id: str, build_tiny: Callable[[Path], None] | None, **fixed: Any) -> Family:
    """The record of a family that follows transformers 5's VLM conventions: loaded with AutoModelForImageTextToText
    and AutoProcessor, batched by the shared collator, its parts, end-of-turn and capabilities derived from each
    checkpoint's files and checked before its weights load. `fixed`: Family fields set by hand where a model breaks
    a convention (say why in a comment on the record), e.g. `video=False`, or `collator=` for a real quirk."""
    values: dict[str, Any] = {
        "load": load_auto,
        "collator": VLMCollator,
        "modules": None,  # derived
        "reply_end": None,  # derived
        "to_load_image": True,
        **fixed,
    }
    derived = tuple(name for name in DERIVED_FIELDS if name not in fixed)
    return Family(family_id=family_id, build_tiny=build_tiny, derived=derived, **values)


def register_model(model_id: str, model_family_id: str, model_hf_path: str, **capabilities: bool) -> ModelEntry:
    """Map a model id to its family and checkpoint (a hub id or a local folder).

    `capabilities` (names in CAPABILITIES) override the family's where this checkpoint's chat template accepts
    more or less, e.g. `system_prompt_with_images=True`.
    """
    unknown = sorted(set(capabilities) - set(CAPABILITIES))
    if unknown:
        raise ValueError(f"cannot register {model_id!r}: unknown capabilities {unknown} (known: {CAPABILITIES})")
    if model_family_id in UNSUPPORTED:
        raise ValueError(f"cannot register {model_id!r}: {UNSUPPORTED[model_family_id].message()}")
    if model_id in MODELS:
        raise ValueError(f"model id {model_id!r} is already registered (as {MODELS[model_id].hf_path})")
    if model_family_id not in FAMILIES:
        raise ValueError(f"cannot register {model_id!r}: {_unknown('family', model_family_id, FAMILIES)}")
    entry = ModelEntry(model_id, model_family_id, model_hf_path, tuple(sorted(capabilities.items())))
    MODELS[model_id] = entry
    return entry


def get_model(model_id: str) -> ModelEntry:
    unsupported = find_unsupported(model_id)
    if model_id not in MODELS and unsupported:
        raise UnknownNameError(f"{model_id!r}: {unsupported.message()}")
    if model_id not in MODELS:
        raise UnknownNameError(
            _unknown("model id", model_id, MODELS) + " (list them: python -m vlmtune.supported_models)"
        )
    return MODELS[model_id]


def get_family(family_id: str) -> Family:
    if family_id not in FAMILIES:
        raise UnknownNameError(_unknown("family", family_id, FAMILIES))
    return FAMILIES[family_id]


@dataclass(frozen=True)
class Unsupported:
    """A model family vlmtune does not support, with the reason, so that users know instead of guessing."""

    name: str  # the family's name (usually the transformers model type)
    reason: str
    hf_paths: tuple[str, ...] = ()

    def message(self) -> str:
        return f"the {self.name} family is not supported: {self.reason}"


UNSUPPORTED: dict[str, Unsupported] = {}


def register_unsupported(name: str, reason: str, *hf_paths: str) -> Unsupported:
    entry = Unsupported(name, reason, hf_paths)
    UNSUPPORTED[name] = entry
    return entry


def find_unsupported(name: str) -> Unsupported | None:
    """The unsupported entry that a family name, model id or hub path names (case-insensitive), if any."""
    lowered = name.lower()
    for entry in UNSUPPORTED.values():
        if lowered == entry.name.lower() or lowered in (p.lower() for p in entry.hf_paths):
            return entry
        if any(lowered == p.lower().rpartition("/")[2] for p in entry.hf_paths):
            return entry
    return None


def _unknown(kind: str, name: str, known: dict[str, Any]) -> str:
    close = difflib.get_close_matches(name, list(known), n=5, cutoff=0.4)
    hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
    return f"unknown {kind} {name!r}{hint}"


# --- families ---------------------------------------------------------------------------------------------

LLAVA_MODULES = ModulePrefixes(
    vision_encoder=("model.vision_tower",),
    vision_projector=("model.multi_modal_projector",),
    llm=("model.language_model", "lm_head"),
)
# LLaVA-NeXT / OneVision: the LLaVA layout plus the learned row separator of anyres tiles.
LLAVA_TILED_MODULES = ModulePrefixes(
    vision_encoder=LLAVA_MODULES.vision_encoder,
    vision_projector=LLAVA_MODULES.vision_projector,
    llm=LLAVA_MODULES.llm,
    others=("model.image_newline",),
)
QWEN_VL_MODULES = ModulePrefixes(
    vision_encoder=("model.visual",),
    vision_projector=("model.visual.merger",),
    llm=("model.language_model", "lm_head"),
)

# https://huggingface.co/llava-hf/llava-1.5-7b-hf
register_family(
    conventional_family(
        "llava-1.5",
        build_tiny=llava.build_tiny,
        packing=True,
        template_source="outside copy: the template quoted in transformers tests/models/llava/test_processing_llava",
        notes="trained on one image per sample; several images work but were never seen in pretraining",
    )
)
# https://huggingface.co/Qwen/Qwen2-VL-2B-Instruct
register_family(
    Family(
        family_id="qwen2-vl",
        load=load_auto,
        build_tiny=qwen2_vl.build_tiny,
        collator=Qwen2VLCollator,
        modules=QWEN_VL_MODULES,
        to_load_image=True,
        reply_end="<|im_end|>",
        packing=True,
        video=True,
        template_source="outside copy: Qwen2-VL-2B-Instruct template in openvino.genai chat_template_fallback_map",
    )
)
# https://huggingface.co/Qwen/Qwen2.5-VL-3B-Instruct (own model classes: window attention in the vision tower)
register_family(
    Family(
        family_id="qwen2.5-vl",
        load=load_auto,
        build_tiny=qwen2_vl.build_tiny_2_5,
        collator=Qwen2VLCollator,
        modules=QWEN_VL_MODULES,
        to_load_image=True,
        reply_end="<|im_end|>",
        packing=True,
        video=True,
        template_source="outside copy: Qwen2-VL-2B-Instruct template in openvino.genai chat_template_fallback_map",
    )
)
# https://huggingface.co/llava-hf/llava-v1.6-mistral-7b-hf
register_family(
    Family(
        family_id="llava-next",
        load=load_auto,
        build_tiny=llava_next.build_tiny,
        collator=LlavaNextCollator,
        modules=LLAVA_TILED_MODULES,
        to_load_image=True,
        reply_end="</s>",
        packing=True,
        template_source="outside copy: chat_template.json of llava-hf/llava-v1.6-mistral-7b-hf",
        notes="the Mistral [INST] checkpoint; images render before the text of their turn; image_newline stays frozen",
    )
)
# https://huggingface.co/llava-hf/llava-onevision-qwen2-0.5b-ov-hf
register_family(
    Family(
        family_id="llava-onevision",
        load=load_auto,
        build_tiny=llava_onevision.build_tiny,
        collator=LlavaOnevisionCollator,
        modules=LLAVA_TILED_MODULES,
        to_load_image=True,
        reply_end="<|im_end|>",
        packing=True,
        video=True,
        template_source="outside copy: transformers convert_llava_onevision_weights_to_hf.py; hub revision 2024-10",
        notes="ChatML without a default system message; several images per sample use base tiles only, as released",
    )
)
IDEFICS3_MODULES = ModulePrefixes(
    vision_encoder=("model.vision_model",),
    vision_projector=("model.connector",),
    llm=("model.text_model", "lm_head"),
)
# https://huggingface.co/HuggingFaceM4/Idefics3-8B-Llama3 (SmolVLM v1 checkpoints are saved as idefics3 too)
register_family(
    Family(
        family_id="idefics3",
        load=idefics3.load,
        build_tiny=idefics3.build_tiny,
        collator=Idefics3Collator,
        modules=IDEFICS3_MODULES,
        to_load_image=True,
        reply_end="<end_of_utterance>",
        packing=True,
        template_source="outside copy: Idefics3-8B-Llama3's; SmolVLM v1's in transformers test_processing_smolvlm.py",
        notes="a system message renders as 'System: ...'; real checkpoints split images into crops (long sequences)",
    )
)
# https://huggingface.co/rhymes-ai/Aria
register_family(
    conventional_family(
        "aria",
        build_tiny=aria.build_tiny,
        packing=True,
        template_source="outside copy: the template transformers' convert_aria_weights_to_hf.py writes",
        notes="MoE language model; an image is <fim_prefix><|img|><fim_suffix>, 128 or 256 tokens per crop",
    )
)
# https://huggingface.co/HuggingFaceM4/idefics2-8b
register_family(
    Family(
        family_id="idefics2",
        load=load_auto,
        build_tiny=idefics2.build_tiny,
        collator=Idefics3Collator,  # the same per-sample image stacks (pixel_values, pixel_attention_mask)
        modules=IDEFICS3_MODULES,
        to_load_image=True,
        reply_end="<end_of_utterance>",
        packing=True,
        template_source="outside copy: idefics2-8b processor_config.json, quoted in public code (h2oGPT, a Rust port)",
        notes="Idefics3's turns without <|begin_of_text|>; a system message renders as 'System: ...'",
    )
)
# https://huggingface.co/HuggingFaceTB/SmolVLM2-2.2B-Instruct
register_family(
    Family(
        family_id="smolvlm",
        load=load_auto,
        build_tiny=smolvlm.build_tiny,
        collator=SmolVLMCollator,
        modules=IDEFICS3_MODULES,
        to_load_image=True,
        reply_end="<end_of_utterance>",
        packing=True,
        video=True,
        template_source="processor default: SmolVLMProcessor's DEFAULT_CHAT_TEMPLATE (transformers 5.23)",
        notes="one sample holds images or a video, not both; a system message renders as 'System: ...'",
    )
)
# https://huggingface.co/google/gemma-3-4b-it
register_family(
    conventional_family(
        "gemma3",
        build_tiny=gemma3.build_tiny,
        template_source="outside copy: chat template of google/gemma-3-4b-it / -12b-it / -27b-it",
        notes="no system role: the template folds the system prompt into the first user turn",
    )
)
# https://huggingface.co/OpenGVLab/InternVL3-1B-hf (the transformers-native -hf checkpoints)
register_family(
    conventional_family(
        "internvl",
        build_tiny=internvl.build_tiny,
        packing=True,
        template_source="outside copy: chat_template.json of OpenGVLab/InternVL3-*-hf",
        notes="image tiling (crop_to_patches) multiplies image tokens",
    )
)
# https://huggingface.co/llava-hf/llava-v1.6-vicuna-7b-hf (the LLaVA-1.5 prompt format on LLaVA-NeXT)
register_family(
    Family(
        family_id="llava-next-vicuna",
        load=load_auto,
        build_tiny=llava_next.build_tiny_vicuna,
        collator=LlavaNextCollator,
        modules=LLAVA_TILED_MODULES,
        to_load_image=True,
        reply_end=None,
        packing=True,
        template_source="outside copy: chat_template.json of llava-hf/llava-v1.6-vicuna-7b-hf (the LLaVA-1.5 format)",
        notes="'USER: ... ASSISTANT:' with no end-of-turn: eos is appended to every reply; no default system prompt",
    )
)
# https://huggingface.co/llava-hf/llava-v1.6-34b-hf (Nous-Hermes-2-Yi-34B, ChatML)
register_family(
    Family(
        family_id="llava-next-34b",
        load=load_auto,
        build_tiny=llava_next.build_tiny_34b,
        collator=LlavaNextCollator,
        modules=LLAVA_TILED_MODULES,
        to_load_image=True,
        reply_end="<|im_end|>",
        packing=True,
        template_source="outside copy: chat_template.json of llava-hf/llava-v1.6-34b-hf",
        notes="ChatML without a default system message; images render before the text of their turn",
    )
)
# https://huggingface.co/llava-hf/llava-interleave-qwen-0.5b-hf
register_family(
    conventional_family(
        "llava-interleave",
        build_tiny=llava_interleave.build_tiny,
        packing=True,
        template_source="outside copy: chat_template.json of llava-hf/llava-interleave-qwen-*-hf",
        notes="trained on many images per sample; every text part renders after a newline, so is each reply",
    )
)
# https://huggingface.co/llava-hf/LLaVA-NeXT-Video-7B-hf
register_family(
    Family(
        family_id="llava-next-video",
        load=load_auto,
        build_tiny=llava_next_video.build_tiny,
        collator=LlavaNextCollator,
        modules=LLAVA_TILED_MODULES,
        to_load_image=True,
        reply_end=None,
        packing=True,
        video=True,
        template_source="outside copy: processor output quoted in zjysteven/lmms-finetune pull request #38",
        notes="the Vicuna checkpoints ('USER: ... ASSISTANT:', eos appended); the 34B and 32K ones use other formats",
    )
)
# https://huggingface.co/LiquidAI/LFM2-VL-1.6B
register_family(
    conventional_family(
        "lfm2-vl",
        build_tiny=lfm2_vl.build_tiny,
        template_source="outside copy: LFM2-VL-450M chat_template.jinja (GitHub varun00391/local-finetuned-model)",
        notes="ChatML without a default system message; large images are split into 512px tiles plus a thumbnail",
    )
)
# https://huggingface.co/thisisiron/Ovis2-1B-hf (transformers-native conversions of AIDC-AI/Ovis2-*)
register_family(
    Family(
        family_id="ovis2",
        load=ovis2.load,
        build_tiny=ovis2.build_tiny,
        collator=Ovis2Collator,
        modules=ModulePrefixes(
            vision_encoder=("model.vision_tower",),
            # the visual tokenizer's head (a softmax over visual words) and the visual embedding table
            vision_projector=(
                "model.vision_tower.head_linear",
                "model.vision_tower.head_norm",
                "model.visual_embeddings_table",
            ),
            llm=("model.language_model", "lm_head"),
        ),
        to_load_image=True,
        reply_end="<|im_end|>",
        packing=True,
        template_source="outside copy: thisisiron/Ovis2-1B-hf template, rendered in transformers tests/models/ovis2",
        notes="the template always writes its default system message; a given one follows as a second system turn",
    )
)
# https://huggingface.co/lkhl/VideoLLaMA3-2B-Image-HF (transformers-native conversion of DAMO-NLP-SG/VideoLLaMA3)
register_family(
    conventional_family(
        "video-llama3",
        build_tiny=video_llama3.build_tiny,
        packing=True,
        # The registered checkpoint is the image-only -Image model; its template also renders videos.
        video=False,
        template_source="outside copy: chat_template.jinja of lkhl/VideoLLaMA3-2B-Image-HF (public mirror)",
        notes="the registered checkpoint is the image-only -Image model; ChatML without a default system message",
    )
)
# https://huggingface.co/mistralai/Mistral-Small-3.1-24B-Instruct-2503
register_family(
    Family(
        family_id="mistral3",
        load=load_auto,
        build_tiny=mistral3.build_tiny,
        collator=Mistral3Collator,
        modules=LLAVA_MODULES,
        to_load_image=True,
        reply_end="</s>",
        packing=True,
        template_source="outside copy: Mistral-Small-3.1's template in transformers test_processing_mistral3.py",
        notes="without a system_prompt the template writes Mistral's default system prompt (with today's date)",
    )
)
# https://huggingface.co/mistral-community/pixtral-12b
register_family(
    Family(
        family_id="pixtral",
        load=load_auto,
        build_tiny=pixtral.build_tiny,
        collator=PixtralCollator,
        modules=LLAVA_MODULES,
        to_load_image=True,
        reply_end="</s>",
        packing=True,
        template_source="outside copy: chat_template of mistral-community/pixtral-12b, copied verbatim in public code",
        notes="the system prompt is written into the first user turn; images keep their aspect ratio",
    )
)
# https://huggingface.co/google/paligemma2-3b-mix-224 (PaliGemma 1 and 2: the same processor and format)
register_family(
    Family(
        family_id="paligemma",
        load=load_auto,
        build_tiny=paligemma.build_tiny,
        collator=PaliGemmaCollator,
        modules=LLAVA_MODULES,
        to_load_image=True,
        reply_end="<eos>",
        multi_image=False,
        system_prompt=False,
        multi_turn=False,
        template_source="no chat template: big_vision's prefix/suffix format, as PaliGemmaProcessor builds it",
        notes="no chat format: one prefix (user turn) and one answer per sample; mix checkpoints expect task prefixes",
    )
)
# https://huggingface.co/google/gemma-4-E2B-it (the E2B/E4B template; see vlmtune/loaders/gemma4.py)
register_family(
    conventional_family(
        "gemma4",
        build_tiny=gemma4.build_tiny,
        # Video off: its prompt needs frame timestamps that vlmtune's frames do not carry (see notes).
        video=False,
        template_source="outside copy: chat_template.jinja of google/gemma-4-E2B-it / -E4B-it (public copies)",
        notes=(
            "thinking off; earlier replies render without thoughts; the audio tower stays frozen and audio input is "
            "not supported; video is off (vlmtune's frames carry no timestamps, which the video prompt needs); "
            "26B-A4B/31B are not registered: with thinking off their generation prompt adds an empty thought "
            "channel that history turns lack"
        ),
    )
)
# https://huggingface.co/zai-org/GLM-4.1V-9B-Thinking
register_family(
    Family(
        family_id="glm4v",
        load=glm4v.load,
        build_tiny=glm4v.build_tiny,
        collator=Glm4vCollator,
        modules=QWEN_VL_MODULES,
        to_load_image=True,
        reply_end="<|user|>",
        packing=True,
        template_source="outside copy: GLM-4.1V-9B-Thinking template quoted in public evaluation records",
        notes=(
            "no end-of-turn text: the next '<|user|>' (a released stop token) is trained as each reply's end; "
            "replies are trained as written (the Thinking checkpoint answers <think>...</think><answer>...</answer>); "
            "video is off (its prompt needs frame timestamps that vlmtune's frames do not carry)"
        ),
    )
)
# https://huggingface.co/google/gemma-3n-E4B-it (needs timm: its vision tower is timm's MobileNetV5)
register_family(
    conventional_family(
        "gemma3n",
        load=gemma3n.load,  # the generic loader, after a one-line error if timm (its vision tower) is missing
        build_tiny=gemma3n.build_tiny,
        template_source="outside copy: the template in transformers convert_gemma3n_weights.py",
        notes=(
            "image-text only: audio input is out of scope (the audio tower stays frozen); no system role: the "
            "template folds the system prompt into the first user turn; needs the timm package"
        ),
    )
)
# Qwen3-VL's DeepStack mergers feed vision features of early layers into the language model: projector too.
QWEN3_VL_MODULES = ModulePrefixes(
    vision_encoder=("model.visual",),
    vision_projector=("model.visual.merger", "model.visual.deepstack_merger_list"),
    llm=("model.language_model", "lm_head"),
)
# https://huggingface.co/Qwen/Qwen3-VL-2B-Instruct
register_family(
    Family(
        family_id="qwen3-vl",
        load=load_auto,
        build_tiny=qwen3_vl.build_tiny,
        collator=Qwen3VLCollator,
        modules=QWEN3_VL_MODULES,
        to_load_image=True,
        reply_end="<|im_end|>",
        packing=True,
        video=True,
        template_source="outside copy: chat_template.json of Qwen/Qwen3-VL-*-Instruct (GGUF exports)",
        notes="ChatML without a default system message; video frames carry timestamps; Thinking checkpoints left out",
    )
)
# https://huggingface.co/Qwen/Qwen3-VL-30B-A3B-Instruct
register_family(
    Family(
        family_id="qwen3-vl-moe",
        load=load_auto,
        build_tiny=qwen3_vl.build_tiny_moe,
        collator=Qwen3VLCollator,
        modules=QWEN3_VL_MODULES,
        to_load_image=True,
        reply_end="<|im_end|>",
        packing=True,
        video=True,
        template_source="outside copy: chat_template.json of Qwen/Qwen3-VL-*-Instruct (GGUF exports)",
        notes="fused experts get LoRA only with --lora_dropout 0 (PEFT target_parameters); the router stays frozen",
    )
)
# https://huggingface.co/Qwen/Qwen3.5-27B
register_family(
    Family(
        family_id="qwen3.5",
        load=load_auto,
        build_tiny=qwen3_5.build_tiny,
        collator=Qwen3_5Collator,
        modules=QWEN_VL_MODULES,
        to_load_image=True,
        reply_end="<|im_end|>",
        video=True,
        template_source="outside copy: chat template of Qwen/Qwen3.5-35B-A3B (GGUF-extracted templates)",
        notes="trains the non-thinking mode: the last reply follows an empty <think></think> block, as rendered",
    )
)
# https://huggingface.co/Qwen/Qwen3.5-35B-A3B
register_family(
    Family(
        family_id="qwen3.5-moe",
        load=load_auto,
        build_tiny=qwen3_5.build_tiny_moe,
        collator=Qwen3_5Collator,
        modules=QWEN_VL_MODULES,
        to_load_image=True,
        reply_end="<|im_end|>",
        video=True,
        template_source="outside copy: chat template of Qwen/Qwen3.5-35B-A3B (GGUF-extracted templates)",
        notes="non-thinking mode as qwen3.5; fused experts get LoRA only with --lora_dropout 0; routers stay frozen",
    )
)
# https://huggingface.co/meta-llama/Llama-3.2-11B-Vision-Instruct
register_family(
    Family(
        family_id="llama-3.2-vision",
        load=load_auto,
        build_tiny=mllama.build_tiny,
        collator=MllamaCollator,
        modules=ModulePrefixes(
            vision_encoder=("model.vision_model",),
            vision_projector=("model.multi_modal_projector",),
            llm=("model.language_model", "lm_head"),
        ),
        to_load_image=True,
        reply_end="<|eot_id|>",
        system_prompt_with_images=False,
        template_source="outside copy: the -Instruct chat_template.json (NeMo's MLlamaTemplateConfig)",
        notes=(
            "images are read by cross-attention layers (one <|image|> token each); the template refuses a system "
            "prompt next to an image and writes a dated system block into every text-only conversation"
        ),
    )
)
# https://huggingface.co/meta-llama/Llama-4-Scout-17B-16E-Instruct (mixture of experts)
register_family(
    Family(
        family_id="llama4",
        load=llama4.load,
        build_tiny=llama4.build_tiny,
        collator=Llama4Collator,
        modules=ModulePrefixes(
            vision_encoder=("vision_model",),
            # The pixel-shuffle MLP at the end of the vision model, then the linear projection into the text model.
            vision_projector=("vision_model.vision_adapter", "multi_modal_projector"),
            llm=("language_model",),
        ),
        to_load_image=True,
        reply_end="<|eot|>",
        packing=True,
        template_source="processor default: Llama4Processor's chat template (transformers 5.23)",
        notes=(
            "MoE: LoRA on attention, shared expert and (with --lora_dropout 0, a PEFT limit) the fused routed "
            "experts; the router stays frozen; transformers computes no load-balancing loss for Llama 4"
        ),
    )
)

# https://huggingface.co/facebook/Perception-LM-1B (needs timm: its vision tower is timm's Perception Encoder)
register_family(
    Family(
        family_id="perception-lm",
        load=perception_lm.load,
        build_tiny=perception_lm.build_tiny,
        collator=PerceptionLMCollator,
        modules=LLAVA_MODULES,
        to_load_image=True,
        reply_end="<|eot_id|>",
        packing=True,
        video=True,
        template_source="outside copy: CHAT_TEMPLATE in transformers convert_perception_lm_weights_to_hf.py",
        notes=(
            "a turn's images and videos render before its text, whatever their place in it; a default system "
            "prompt is written when none is given; needs the timm package"
        ),
    )
)

# A checkpoint written by `vlmtune compose` (vlmtune/compose.py): any vision tower + causal LM + a fresh projector
# as LlavaForConditionalGeneration. Its tiny model is composed from tiny-siglip + tiny-qwen3 by compose itself.
register_family(
    Family(
        family_id="llava-composed",
        load=load_auto,
        build_tiny=llava_composed.build_tiny,
        collator=ComposedCollator,
        modules=LLAVA_MODULES,
        to_load_image=True,
        reply_end="<|im_end|>",  # the tiny model's (ChatML); ComposedCollator reads each checkpoint's own
        packing=True,
        template_source="the composed language model's own template (vlmtune compose)",
        notes=(
            "a `vlmtune compose` output: pass its folder with --model_local_path; the end-of-turn is read from its "
            "chat template (the LLM's own, ChatML or LLaVA-1.5)"
        ),
    )
)

# `vlmtune compose --projector pixel_shuffle`: a SigLIP tower + causal LM with Idefics3's pixel-shuffle connector as
# Idefics3ForConditionalGeneration, in Idefics3's prompt format. Tiny model: compose of tiny-siglip + tiny-qwen3.
register_family(
    Family(
        family_id="idefics3-composed",
        load=idefics3.load,
        build_tiny=llava_composed.build_tiny_pixel_shuffle,
        collator=Idefics3Collator,
        modules=IDEFICS3_MODULES,
        to_load_image=True,
        reply_end="<end_of_utterance>",
        packing=True,
        template_source="the composed language model's own template (vlmtune compose)",
        notes=(
            "a `vlmtune compose --projector pixel_shuffle` output: pass its folder with --model_local_path; "
            "a system message renders as 'System: ...'"
        ),
    )
)

# --- models -----------------------------------------------------------------------------------------------

register_model("llava-1.5-7b", "llava-1.5", "llava-hf/llava-1.5-7b-hf")
register_model("llava-1.5-13b", "llava-1.5", "llava-hf/llava-1.5-13b-hf")
register_model("qwen2-vl-2b-instruct", "qwen2-vl", "Qwen/Qwen2-VL-2B-Instruct")
register_model("qwen2-vl-7b-instruct", "qwen2-vl", "Qwen/Qwen2-VL-7B-Instruct")
register_model("qwen2-vl-72b-instruct", "qwen2-vl", "Qwen/Qwen2-VL-72B-Instruct")
register_model("qwen2.5-vl-3b-instruct", "qwen2.5-vl", "Qwen/Qwen2.5-VL-3B-Instruct")
register_model("qwen2.5-vl-7b-instruct", "qwen2.5-vl", "Qwen/Qwen2.5-VL-7B-Instruct")
register_model("qwen2.5-vl-32b-instruct", "qwen2.5-vl", "Qwen/Qwen2.5-VL-32B-Instruct")
register_model("qwen2.5-vl-72b-instruct", "qwen2.5-vl", "Qwen/Qwen2.5-VL-72B-Instruct")
register_model("llava-v1.6-mistral-7b", "llava-next", "llava-hf/llava-v1.6-mistral-7b-hf")
register_model("llava-onevision-qwen2-0.5b-ov", "llava-onevision", "llava-hf/llava-onevision-qwen2-0.5b-ov-hf")
register_model("llava-onevision-qwen2-7b-ov", "llava-onevision", "llava-hf/llava-onevision-qwen2-7b-ov-hf")
register_model("llava-onevision-qwen2-72b-ov", "llava-onevision", "llava-hf/llava-onevision-qwen2-72b-ov-hf")
register_model("aria", "aria", "rhymes-ai/Aria")
register_model("idefics2-8b", "idefics2", "HuggingFaceM4/idefics2-8b")
register_model("idefics2-8b-chatty", "idefics2", "HuggingFaceM4/idefics2-8b-chatty")
register_model("idefics3-8b-llama3", "idefics3", "HuggingFaceM4/Idefics3-8B-Llama3")
register_model("smolvlm-256m-instruct", "idefics3", "HuggingFaceTB/SmolVLM-256M-Instruct")
register_model("smolvlm-500m-instruct", "idefics3", "HuggingFaceTB/SmolVLM-500M-Instruct")
register_model("smolvlm2-2.2b-instruct", "smolvlm", "HuggingFaceTB/SmolVLM2-2.2B-Instruct")
register_model("gemma-3-4b-it", "gemma3", "google/gemma-3-4b-it")
register_model("gemma-3-12b-it", "gemma3", "google/gemma-3-12b-it")
register_model("gemma-3-27b-it", "gemma3", "google/gemma-3-27b-it")
register_model("internvl3-1b", "internvl", "OpenGVLab/InternVL3-1B-hf")
register_model("internvl3-2b", "internvl", "OpenGVLab/InternVL3-2B-hf")
register_model("internvl3-8b", "internvl", "OpenGVLab/InternVL3-8B-hf")
register_model("llava-v1.6-vicuna-7b", "llava-next-vicuna", "llava-hf/llava-v1.6-vicuna-7b-hf")
register_model("llava-v1.6-vicuna-13b", "llava-next-vicuna", "llava-hf/llava-v1.6-vicuna-13b-hf")
register_model("llava-v1.6-34b", "llava-next-34b", "llava-hf/llava-v1.6-34b-hf")
register_model("llava-interleave-qwen-0.5b", "llava-interleave", "llava-hf/llava-interleave-qwen-0.5b-hf")
register_model("llava-interleave-qwen-7b", "llava-interleave", "llava-hf/llava-interleave-qwen-7b-hf")
register_model("llava-next-video-7b", "llava-next-video", "llava-hf/LLaVA-NeXT-Video-7B-hf")
register_model("llava-next-video-7b-dpo", "llava-next-video", "llava-hf/LLaVA-NeXT-Video-7B-DPO-hf")
register_model("lfm2-vl-450m", "lfm2-vl", "LiquidAI/LFM2-VL-450M")
register_model("lfm2-vl-1.6b", "lfm2-vl", "LiquidAI/LFM2-VL-1.6B")
register_model("ovis2-1b", "ovis2", "thisisiron/Ovis2-1B-hf")
register_model("ovis2-2b", "ovis2", "thisisiron/Ovis2-2B-hf")
register_model("videollama3-2b-image", "video-llama3", "lkhl/VideoLLaMA3-2B-Image-HF")
register_model("mistral-small-3.1-24b-instruct", "mistral3", "mistralai/Mistral-Small-3.1-24B-Instruct-2503")
register_model("mistral-small-3.2-24b-instruct", "mistral3", "mistralai/Mistral-Small-3.2-24B-Instruct-2506")
register_model("pixtral-12b", "pixtral", "mistral-community/pixtral-12b")
register_model("paligemma2-3b-mix-224", "paligemma", "google/paligemma2-3b-mix-224")
register_model("paligemma2-3b-mix-448", "paligemma", "google/paligemma2-3b-mix-448")
register_model("paligemma2-10b-mix-224", "paligemma", "google/paligemma2-10b-mix-224")
register_model("paligemma2-10b-mix-448", "paligemma", "google/paligemma2-10b-mix-448")
register_model("paligemma2-28b-mix-224", "paligemma", "google/paligemma2-28b-mix-224")
register_model("paligemma2-28b-mix-448", "paligemma", "google/paligemma2-28b-mix-448")
register_model("paligemma-3b-mix-224", "paligemma", "google/paligemma-3b-mix-224")
register_model("paligemma-3b-mix-448", "paligemma", "google/paligemma-3b-mix-448")
register_model("gemma-4-e2b-it", "gemma4", "google/gemma-4-E2B-it")
register_model("gemma-4-e4b-it", "gemma4", "google/gemma-4-E4B-it")
register_model("glm-4.1v-9b-thinking", "glm4v", "zai-org/GLM-4.1V-9B-Thinking")
register_model("gemma-3n-e4b-it", "gemma3n", "google/gemma-3n-E4B-it")
register_model("qwen3-vl-2b-instruct", "qwen3-vl", "Qwen/Qwen3-VL-2B-Instruct")
register_model("qwen3-vl-4b-instruct", "qwen3-vl", "Qwen/Qwen3-VL-4B-Instruct")
register_model("qwen3-vl-8b-instruct", "qwen3-vl", "Qwen/Qwen3-VL-8B-Instruct")
register_model("qwen3-vl-32b-instruct", "qwen3-vl", "Qwen/Qwen3-VL-32B-Instruct")
register_model("qwen3-vl-30b-a3b-instruct", "qwen3-vl-moe", "Qwen/Qwen3-VL-30B-A3B-Instruct")
register_model("qwen3-vl-235b-a22b-instruct", "qwen3-vl-moe", "Qwen/Qwen3-VL-235B-A22B-Instruct")
register_model("qwen3.5-0.8b", "qwen3.5", "Qwen/Qwen3.5-0.8B")
register_model("qwen3.5-2b", "qwen3.5", "Qwen/Qwen3.5-2B")
register_model("qwen3.5-4b", "qwen3.5", "Qwen/Qwen3.5-4B")
register_model("qwen3.5-9b", "qwen3.5", "Qwen/Qwen3.5-9B")
register_model("qwen3.5-27b", "qwen3.5", "Qwen/Qwen3.5-27B")
register_model("qwen3.5-35b-a3b", "qwen3.5-moe", "Qwen/Qwen3.5-35B-A3B")
register_model("qwen3.5-122b-a10b", "qwen3.5-moe", "Qwen/Qwen3.5-122B-A10B")
register_model("qwen3.5-397b-a17b", "qwen3.5-moe", "Qwen/Qwen3.5-397B-A17B")
# The 11B's current template (hub revision of 2024-12, tests/template_revisions.py) accepts a system prompt next to
# images; the original one, which the family record and the tiny model follow, refuses it.
register_model(
    "llama-3.2-11b-vision-instruct",
    "llama-3.2-vision",
    "meta-llama/Llama-3.2-11B-Vision-Instruct",
    system_prompt_with_images=True,
)
register_model("llama-3.2-90b-vision-instruct", "llama-3.2-vision", "meta-llama/Llama-3.2-90B-Vision-Instruct")
register_model("llama-4-scout-17b-16e-instruct", "llama4", "meta-llama/Llama-4-Scout-17B-16E-Instruct")
register_model("llama-4-maverick-17b-128e-instruct", "llama4", "meta-llama/Llama-4-Maverick-17B-128E-Instruct")
register_model("perception-lm-1b", "perception-lm", "facebook/Perception-LM-1B")
register_model("perception-lm-3b", "perception-lm", "facebook/Perception-LM-3B")
register_model("perception-lm-8b", "perception-lm", "facebook/Perception-LM-8B")
# No checkpoint of its own: train/preview/validate take --model_local_path DIR (a vlmtune compose output).
register_model("llava-composed", "llava-composed", "")
register_model("idefics3-composed", "idefics3-composed", "")


# --- the 2026 generation (issue 19) ------------------------------------------------------------------------
# Types new in transformers 5.23 that follow its VLM conventions: one `conventional_family` record each, its parts,
# end-of-turn and capabilities derived from each checkpoint's own files and checked before its weights load
# (`vlmtune check <id>` shows them); fields set by hand only where a model breaks a convention, with the reason.

# https://huggingface.co/Qwen/Qwen4-Exp (Qwen3.8-Flash-Next)
register_family(
    conventional_family(
        "qwen4-exp",
        build_tiny=qwen4_exp.build_tiny,
        # The template's default is thinking on (a reasoning-effort instruction in the system turn, thoughts in
        # the generation prompt); Qwen3_5Collator renders with enable_thinking=False, the mode vlmtune trains.
        collator=Qwen3_5Collator,
        # No copy of Qwen4-Exp's own template was found: the tiny model's is the Qwen3.8 family's (Qwen3.8-27B's,
        # quoted in a public guide, and a llama-server copy); a real checkpoint's own template is what trains.
        template_source="derived and checked at load (tiny model: the Qwen3.8 template, no Qwen4-Exp copy found)",
        notes="non-thinking mode: every reply follows an empty <think></think> block; fused experts as qwen3.5-moe",
    )
)
# Qwen3.8-Flash-Next is the released Qwen4-Exp checkpoint (public vLLM and QEfficient ports of the type say so).
register_model("qwen3.8-flash-next", "qwen4-exp", "Qwen/Qwen3.8-Flash-Next")

# --- issue 19, batch C: DeepSeek-VL, Janus, ViP-LLaVA, Video-LLaVA ------------------------------------------------

DEEPSEEK_TEMPLATE = (
    "outside copy: CHAT_TEMPLATE of transformers' convert_deepseek_vl_hybrid_weights_to_hf.py (the processor's in "
    "tests/models/deepseek_vl*/test_processing_*.py)"
)
# https://huggingface.co/deepseek-community/deepseek-vl-1.3b-chat
register_family(
    conventional_family(
        "deepseek-vl",
        build_tiny=deepseek_vl.build_tiny,
        # The converted template leaves the last message unclosed; DeepSeek's format ends every reply with eos.
        collator=DeepseekCollator,
        template_source=DEEPSEEK_TEMPLATE,
        notes="the template writes DeepSeek-VL's default system prompt itself; vLLM 0.32: not implemented",
    )
)
register_model("deepseek-vl-1.3b-chat", "deepseek-vl", "deepseek-community/deepseek-vl-1.3b-chat")

# https://huggingface.co/deepseek-community/deepseek-vl-7b-chat
register_family(
    conventional_family(
        "deepseek-vl-hybrid",
        build_tiny=deepseek_vl.build_tiny_hybrid,
        collator=DeepseekCollator,  # as deepseek-vl
        # Two vision towers: the high-resolution SAM tower (with its neck and downsampling projection) is vision
        # encoder as SigLIP is; the convention knows one tower and would freeze it as `others`. The towers' mixing
        # weight is a bare parameter (no module to train or save whole): it stays frozen.
        modules=ModulePrefixes(
            vision_encoder=(
                "model.vision_model",
                "model.high_res_vision_model",
                "model.high_res_vision_neck",
                "model.high_res_vision_proj",
            ),
            vision_projector=("model.aligner",),
            llm=("model.language_model", "lm_head"),
            others=("model.high_res_vision_alpha",),
        ),
        template_source=DEEPSEEK_TEMPLATE,
        notes="SigLIP + high-resolution SAM towers; vLLM 0.32: not implemented",
    )
)
register_model("deepseek-vl-7b-chat", "deepseek-vl-hybrid", "deepseek-community/deepseek-vl-7b-chat")

# https://huggingface.co/deepseek-community/Janus-Pro-1B
register_family(
    conventional_family(
        "janus",
        build_tiny=janus.build_tiny,
        # deepseek-vl's unclosed last message, and the default system prompt that the processor writes itself.
        collator=JanusCollator,
        template_source="outside copy: CHAT_TEMPLATE of transformers' convert_janus_weights_to_hf.py",
        notes=(
            "text replies only: the image-generation modules stay frozen; the processor writes Janus' default system "
            "prompt; vLLM 0.32: not implemented"
        ),
    )
)
register_model("janus-pro-1b", "janus", "deepseek-community/Janus-Pro-1B")

# https://huggingface.co/llava-hf/vip-llava-7b-hf
register_family(
    conventional_family(
        "vipllava",
        build_tiny=vipllava.build_tiny,
        template_source=(
            "derived and checked at load (tiny model: stand-in, the llava-hf LLaVA-1.5 template; no copy of "
            "vip-llava-7b-hf's template found, searched 2026-12-07)"
        ),
        notes="LLaVA-1.5 on visual prompts, multi-layer CLIP features; vLLM 0.32: not implemented",
    )
)
register_model("vip-llava-7b", "vipllava", "llava-hf/vip-llava-7b-hf")

# https://huggingface.co/LanguageBind/Video-LLaVA-7B-hf
register_family(
    conventional_family(
        "video-llava",
        build_tiny=video_llava.build_tiny,
        # Separate image and video towers: the convention knows one vision part, so both are named here.
        modules=ModulePrefixes(
            vision_encoder=("model.image_tower", "model.video_tower"),
            vision_projector=("model.multi_modal_projector",),
            llm=("model.language_model", "lm_head"),
        ),
        template_source=(
            "derived and checked at load (tiny model: stand-in, the LLaVA-NeXT-Video Vicuna template; no copy of "
            "Video-LLaVA-7B-hf's template found, searched 2026-12-07)"
        ),
        notes="8-frame videos through their own tower; vLLM 0.32: not implemented",
    )
)
register_model("video-llava-7b", "video-llava", "LanguageBind/Video-LLaVA-7B-hf")

# https://huggingface.co/meta-models/Muse-Glimmer-30B
register_family(
    conventional_family(
        "muse-glimmer",
        build_tiny=muse_glimmer.build_tiny,
        # The projector is three top-level modules (adapter MLP, projection, norm), none of a conventional name.
        modules=ModulePrefixes(
            vision_encoder=("model.vision_tower",),
            vision_projector=("model.vision_adapter", "model.vision_projection", "model.perception_emb_norm"),
            llm=("model.language_model", "lm_head"),
        ),
        template_source=(
            "derived and checked at load (tiny model: stand-in, Llama 4's template, Llama4Processor's default, the "
            "same tokenizer, images as the processor's image token; no copy of Muse Glimmer's template found, "
            "searched 2026-12-07)"
        ),
        notes="vLLM 0.32 implements MuseGlimmerForConditionalGeneration (not run here)",
    )
)
register_model("muse-glimmer-30b", "muse-glimmer", "meta-models/Muse-Glimmer-30B")

# --- issue 19, batch B: GLM-V after GLM-4.1V, Cohere's vision models -------------------------------------------------
# Conventional records: parts, end-of-turn and capabilities come from each checkpoint's own files, checked at load
# (`vlmtune check`). No copy of these checkpoints' released templates was found (searched 2026-12-07), so the tiny
# models carry a labelled stand-in and what trains on a real checkpoint is its own template, checked when it opens.
GLM_STAND_IN = "derived and checked at load (tiny model: stand-in GLM-4.1V-9B-Thinking template, outside copy; no copy"
COHERE_STAND_IN = (
    "derived and checked at load (tiny model: stand-in Command-R template, llama.cpp tests/test-chat-template.cpp; "
    "no copy"
)
SEARCHED_ON = "found, searched 2026-12-07)"


def glm_family(family_id: str, build_tiny: Callable[[Path], None], type_name: str, **fixed: Any) -> Family:
    """A GLM-V family after GLM-4.1V: its template breaks two conventions, as GLM-4.1V's does (see the fields)."""
    return conventional_family(
        family_id,
        build_tiny=build_tiny,
        # GLM templates write system/assistant content with {{ content }} (text parts would render as a repr), and
        # a reply has no end-of-turn text: the next "<|user|>" (a released stop token) closes it.
        collator=Glm4vCollator,
        reply_end="<|user|>",
        video=False,  # the video prompt needs frame timestamps that vlmtune's frames do not carry (as glm4v)
        template_source=f"{GLM_STAND_IN} of {type_name}'s released template {SEARCHED_ON}",
        **fixed,
    )


# https://huggingface.co/zai-org/GLM-4.6V (MoE) and GLM-4.6V-Flash (dense): GLM-4.1V's layout in the glm46v classes
register_family(
    glm_family(
        "glm4.6v",
        glm46v.build_tiny,
        "GLM-4.6V",
        packing=True,
        notes="the language model is the checkpoint's own (dense Flash, MoE 106B); vLLM 0.32 has no Glm46V class",
    )
)
# https://huggingface.co/zai-org/GLM-4.5V: GLM-4.1V's vision tower before a MoE language model
register_family(
    glm_family(
        "glm4v-moe",
        glm46v.build_tiny_moe,
        "GLM-4.5V",
        packing=True,
        notes=(
            "MoE language model (routers stay frozen); LoRA on the language model needs --lora_dropout 0, and PEFT "
            "then adapts the fused experts instead of the dense and shared-expert MLPs (its transformers v5 "
            "conversion for this type); vLLM 0.32 implements it (glm4_1v)"
        ),
    )
)
# https://huggingface.co/zai-org/GLM-5.3-Flash: KDA linear attention + MLA with a sparse indexer, hyper-connections
register_family(
    glm_family(
        "glm5-next",
        glm46v.build_tiny_glm5,
        "GLM-5.3-Flash",
        notes=(
            "no packing (its linear-attention layers carry state along the row); past the sparse indexer's budget "
            "(2048 keys) sampling and training log-probs may differ (vlmtune/loaders/glm46v.py); vLLM 0.32 "
            "implements it"
        ),
    )
)
# https://huggingface.co/CohereLabs/aya-vision-8b: SigLIP + pixel-shuffle projector + Cohere 2, tiled images
register_family(
    conventional_family(
        "aya-vision",
        build_tiny=cohere_vision.build_tiny_aya,
        packing=True,
        template_source=f"{COHERE_STAND_IN} of Aya Vision's released template {SEARCHED_ON}",
        notes="images are cut into tiles plus a thumbnail; vLLM 0.32 no longer implements it (removed in 0.24)",
    )
)
# https://huggingface.co/CohereLabs/command-a-vision-07-2025: Aya Vision's layout with Command A as language model
register_family(
    conventional_family(
        "cohere2-vision",
        build_tiny=cohere_vision.build_tiny_cohere2,
        packing=True,
        template_source=f"{COHERE_STAND_IN} of Command A Vision's released template {SEARCHED_ON}",
        notes="images are cut into tiles plus a thumbnail; vLLM 0.32 implements it",
    )
)
register_model("glm-4.6v", "glm4.6v", "zai-org/GLM-4.6V")
register_model("glm-4.6v-flash", "glm4.6v", "zai-org/GLM-4.6V-Flash")
register_model("glm-4.5v", "glm4v-moe", "zai-org/GLM-4.5V")
register_model("glm-5.3-flash", "glm5-next", "zai-org/GLM-5.3-Flash")
register_model("aya-vision-8b", "aya-vision", "CohereLabs/aya-vision-8b")
register_model("aya-vision-32b", "aya-vision", "CohereLabs/aya-vision-32b")
register_model("command-a-vision-07-2025", "cohere2-vision", "CohereLabs/command-a-vision-07-2025")
# --- end of issue 19, batch B ---
# --- issue 19, batch A ------------------------------------------------------------------------------------------
# Each tiny model carries a stand-in template (its loader says which and why); a real checkpoint trains with its own.
# https://huggingface.co/mistralai/Mistral-Large-4-1T-A52B (vLLM 0.32 has no implementation of the architecture)
register_family(
    conventional_family(
        "mistral-large4",
        build_tiny=mistral_large4.build_tiny,
        # PixtralProcessor keeps each image's own size: pixel_values are padded to the batch's largest image.
        collator=Mistral3Collator,
        template_source=(
            "derived and checked at load (tiny model: stand-in Mistral-Small-3.1's template, the outside copy in "
            "transformers test_processing_mistral3.py; no copy of Mistral-Large-4's found, searched 2026-12-07)"
        ),
        notes="MoE with MLA and indexed sparse attention; Mistral Small 3.1's Pixtral vision tower",
    )
)
register_model("mistral-large-4-1t-a52b", "mistral-large4", "mistralai/Mistral-Large-4-1T-A52B")
# https://huggingface.co/LiquidAI/LFM3-VL-2B (vLLM 0.32 has no implementation of the architecture)
register_family(
    conventional_family(
        "lfm3-vl",
        build_tiny=lfm3_vl.build_tiny,
        # Video frames are written with their timestamps, which need each video's metadata (Qwen3-VL's processing).
        collator=Qwen3VLCollator,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen3-VL's template, whose media markers this "
            "processor expands; no copy of LFM3-VL's found, searched 2026-12-07)"
        ),
        notes="short convolutions in the vision tower and the LM (no packing); Qwen3-VL's image and video processing",
    )
)
register_model("lfm3-vl-2b", "lfm3-vl", "LiquidAI/LFM3-VL-2B")
# https://huggingface.co/LGAI-EXAONE/EXAONE-4.5-33B (vLLM 0.32 implements Exaone4_5_ForConditionalGeneration)
register_family(
    conventional_family(
        "exaone4.5",
        build_tiny=exaone4_5.build_tiny,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen2-VL's template, whose media markers this "
            "processor expands; no copy of EXAONE-4.5's found, searched 2026-12-07)"
        ),
        notes="Qwen2.5-VL's vision tower on an EXAONE 4 language model (sliding and global attention)",
    )
)
register_model("exaone-4.5-33b", "exaone4.5", "LGAI-EXAONE/EXAONE-4.5-33B")
# https://huggingface.co/stepfun-ai/Step-3.7-Flash (vLLM 0.32 has no implementation of the architecture)
register_family(
    conventional_family(
        "step3.7",
        build_tiny=step3p7.build_tiny,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen3-VL's ChatML layout with this processor's "
            "<im_patch>; no copy of Step-3.7's found, searched 2026-12-07)"
        ),
        notes="MoE language model with sliding and full attention; large images add local crops to the global view",
    )
)
register_model("step-3.7-flash", "step3.7", "stepfun-ai/Step-3.7-Flash")
# https://huggingface.co/nvidia/Cosmos3-Edge (vLLM 0.32 implements Cosmos3EdgeForConditionalGeneration)
register_family(
    conventional_family(
        "cosmos3-edge",
        build_tiny=cosmos3_edge.build_tiny,
        # Its model needs mm_token_type_ids, which its processor returns only when asked; frames carry timestamps.
        collator=Cosmos3EdgeCollator,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen3-VL's template, whose media markers this "
            "processor expands; no copy of Cosmos3-Edge's found, searched 2026-12-07)"
        ),
        notes="a SigLIP-style tower and an MLP projector over 2x2 merged patches; video frames carry timestamps",
    )
)
register_model("cosmos3-edge", "cosmos3-edge", "nvidia/Cosmos3-Edge")
# https://huggingface.co/openbmb/MiniCPM-V-4.6 (vLLM 0.32 implements MiniCPMV4_6ForConditionalGeneration)
register_family(
    conventional_family(
        "minicpm-v4.6",
        build_tiny=minicpmv4_6.build_tiny,
        # Its processor packs all views of a sample into one row (joined along the last dim) and resamples frames.
        collator=MiniCPMVCollator,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen3-VL's ChatML layout with the tokenizer's image "
            "placeholder; no copy of MiniCPM-V-4.6's found, searched 2026-12-07)"
        ),
        notes="Qwen3.5's language model (linear attention: no packing); large images add slices to the global view",
    )
)
register_model("minicpm-v-4.6", "minicpm-v4.6", "openbmb/MiniCPM-V-4.6")
# https://huggingface.co/openbmb/MiniCPM-V-4.7-1B (vLLM 0.32 implements MiniCPMV4_7ForConditionalGeneration)
register_family(
    conventional_family(
        "minicpm-v4.7",
        build_tiny=minicpmv4_6.build_tiny_4_7,
        # Its processor packs all views of a sample into one row (joined along the last dim) and resamples frames.
        collator=MiniCPMVCollator,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen3-VL's ChatML layout with the tokenizer's image "
            "placeholder; no copy of MiniCPM-V-4.7's found, searched 2026-12-07)"
        ),
        notes="MiniCPM-V 4.6's image and video processing; Qwen3.5's language model (linear attention: no packing)",
    )
)
register_model("minicpm-v-4.7-1b", "minicpm-v4.7", "openbmb/MiniCPM-V-4.7-1B")

# --- issue 19, batch E: omni models trained on images and video (their audio towers stay frozen) ---------------------
# The audio tower is not vision: the convention leaves it in `others`, frozen, and audio input is not supported.
# https://huggingface.co/meta-models/Muse-Spark-Open-816B-A42B (vLLM 0.32 has no implementation of the architecture)
register_family(
    conventional_family(
        "muse-spark",
        build_tiny=muse_spark.build_tiny,
        # Muse Glimmer's projector: three top-level modules (adapter MLP, projection, norm), none of a conventional
        # name; the audio tower is named in `others` so that it stays frozen whatever the mode.
        modules=ModulePrefixes(
            vision_encoder=("model.vision_tower",),
            vision_projector=("model.vision_adapter", "model.vision_projection", "model.perception_emb_norm"),
            llm=("model.language_model", "lm_head"),
            others=("model.audio_tower",),
        ),
        template_source=(
            "derived and checked at load (tiny model: stand-in, muse-glimmer's: Llama 4's template, Llama4Processor's "
            "default, images as the processor's image token; no copy of Muse Spark's template found, searched "
            "2026-12-07)"
        ),
        notes=(
            "images (video where the checkpoint's template writes one: derived), the audio tower frozen; MoE LM; "
            "vLLM 0.32: not implemented"
        ),
    )
)
register_model("muse-spark-open-816b-a42b", "muse-spark", "meta-models/Muse-Spark-Open-816B-A42B")
# https://huggingface.co/google/gemma-4-12B-it (vLLM 0.32 implements Gemma4UnifiedForConditionalGeneration)
register_family(
    conventional_family(
        "gemma4-unified",
        build_tiny=gemma4_unified.build_tiny,
        # Encoder-free: no tower; the patch embedder inside the model is the vision encoder, its final norm + linear
        # into the language model the projector, and the audio embedder (not vision) stays frozen in `others`.
        modules=ModulePrefixes(
            vision_encoder=("model.embed_vision",),
            vision_projector=("model.embed_vision.multimodal_embedder",),
            llm=("model.language_model", "lm_head"),
            others=("model.embed_audio",),
        ),
        # Video off as for gemma4: its prompt needs frame timestamps that vlmtune's frames do not carry.
        video=False,
        template_source=(
            "derived and checked at load (tiny model: stand-in, gemma4's: the gemma-4-E2B-it / -E4B-it template, an "
            "outside copy, for the same processor tokens; no copy of gemma-4-12B-it's template found, searched "
            "2026-12-07)"
        ),
        notes=(
            "encoder-free Gemma 4 (raw patches through an embedder); images only: video is off and the audio "
            "embedder stays frozen; vLLM 0.32 implements Gemma4UnifiedForConditionalGeneration (not run here)"
        ),
    )
)
register_model("gemma-4-12b-it", "gemma4-unified", "google/gemma-4-12B-it")
# https://huggingface.co/Qwen/Qwen2.5-Omni-7B (vLLM 0.32: the thinker, under the whole model's architectures)
register_family(
    conventional_family(
        "qwen2.5-omni",
        # The thinker class with the checkpoint's Omni processor: a released config is the whole omni model's,
        # which AutoModelForImageTextToText does not map (vlmtune/loaders/qwen_omni.py).
        load=qwen_omni.load,
        build_tiny=qwen_omni.build_tiny,
        template_source=(
            "derived and checked at load (tiny model: stand-in, Qwen2-VL's template with the Omni processor's "
            "<|vision_bos|><|IMAGE|><|vision_eos|> markers; no copy of Qwen2.5-Omni's chat_template.json found, "
            "searched 2026-12-07)"
        ),
        notes=(
            "the thinker only (text replies; the talker and vocoder are not loaded); images and video, the audio "
            "tower stays frozen; vLLM 0.32 implements the thinker under the whole model's architectures "
            "(Qwen2_5OmniForConditionalGeneration), not the thinker-only one a full finetune writes (not run here)"
        ),
    )
)
register_model("qwen2.5-omni-7b", "qwen2.5-omni", "Qwen/Qwen2.5-Omni-7B")
register_model("qwen2.5-omni-3b", "qwen2.5-omni", "Qwen/Qwen2.5-Omni-3B")
# https://huggingface.co/Qwen/Qwen3-Omni-30B-A3B-Instruct (vLLM 0.32: the thinker, under the whole model's)
register_family(
    conventional_family(
        "qwen3-omni",
        load=qwen_omni.load_qwen3,  # the thinker class with the Omni processor, as qwen2.5-omni
        build_tiny=qwen_omni.build_tiny_qwen3,
        template_source=(
            "derived and checked at load (tiny model: stand-in, Qwen3-VL's template with the Omni processor's "
            "<|vision_bos|><|IMAGE|><|vision_eos|> markers; no copy of Qwen3-Omni's chat template found, searched "
            "2026-12-07)"
        ),
        notes=(
            "the thinker only (text replies); images and video, the audio tower stays frozen; MoE language model "
            "(fused experts as qwen3-vl-moe); vLLM 0.32 implements the thinker under the whole model's architecture "
            "(Qwen3OmniMoeForConditionalGeneration), not the thinker-only one a full finetune writes (not run here)"
        ),
    )
)
register_model("qwen3-omni-30b-a3b-instruct", "qwen3-omni", "Qwen/Qwen3-Omni-30B-A3B-Instruct")
# https://huggingface.co/dots-studio/dots3-note-prev (vLLM 0.32 implements Dots3NoteForCausalLM, text only)
register_family(
    conventional_family(
        "dots3-note",
        build_tiny=dots3_note.build_tiny,
        template_source=(
            "derived and checked at load (tiny model: stand-in, its sibling dots.ocr's layout as ms-swift defines it, "
            "swift/llm/template/template/dots.py; no copy of dots3-note's template found, searched 2026-12-07)"
        ),
        notes=(
            "images and video, the audio tower stays frozen; MoE vision blocks, MoE language model with latent and "
            "indexed sparse attention (the indexer gets no gradient: its top-k choice is not differentiable); vLLM "
            "0.32 implements the text model only (Dots3NoteForCausalLM)"
        ),
    )
)
register_model("dots3-note-prev", "dots3-note", "dots-studio/dots3-note-prev")
# --- end of issue 19, batch E ---


# --- issue 19, batch D ---------------------------------------------------------------------------------------------
# Conventional records; each tiny model carries a labelled stand-in template (its loader says which and why), and a
# real checkpoint trains with its own, derived and checked at load (`vlmtune check`).

# https://huggingface.co/naver-hyperclovax/HyperCLOVAX-SEED-Think-32B
register_family(
    conventional_family(
        "hyperclovax-vision-v2",
        build_tiny=hyperclovax_vision_v2.build_tiny,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen2-VL's template, whose media markers this "
            "processor expands; no copy of HyperCLOVAX-SEED-Think-32B's found, searched 2026-12-07)"
        ),
        notes=(
            "Qwen2.5-VL's vision tower, a linear projector, a HyperCLOVA X language model; vLLM 0.32 implements "
            "HCXVisionV2ForCausalLM (not run here)"
        ),
    )
)
register_model("hyperclovax-seed-think-32b", "hyperclovax-vision-v2", "naver-hyperclovax/HyperCLOVAX-SEED-Think-32B")
# https://huggingface.co/thinkingmachines/Inkling-2-Small-MXFP8
register_family(
    conventional_family(
        "inkling2",
        build_tiny=inkling2.build_tiny,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen3-VL's ChatML layout with this processor's image "
            "token; no copy of Inkling-2's or a sibling's template found, searched 2026-12-07)"
        ),
        notes=(
            "MoE with sliding and full attention, short convolutions (no packing); images at their own size, one "
            "token per 40-pixel tile; the named checkpoint's experts are MXFP8; vLLM 0.32: not implemented (its "
            "Inkling classes are the audio-vision inkling_mm_model type)"
        ),
    )
)
register_model("inkling-2-small", "inkling2", "thinkingmachines/Inkling-2-Small-MXFP8")
# https://huggingface.co/MiniMaxAI/MiniMax-M3
register_family(
    conventional_family(
        "minimax-m3",
        build_tiny=minimax_m3_vl.build_tiny,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen3-VL's ChatML layout with this processor's image "
            "token, no video part; no copy of MiniMax-M3's found, searched 2026-12-07)"
        ),
        notes=(
            "MoE with full and block-sparse attention (a lightning indexer); vLLM 0.32 implements "
            "MiniMaxM3SparseForConditionalGeneration (not run here)"
        ),
    )
)
register_model("minimax-m3", "minimax-m3", "MiniMaxAI/MiniMax-M3")
# https://huggingface.co/baidu/ERNIE-4.5-VL-28B-A3B-PT (its moe_mm_token_type_ids are batched as a token row by the
# shared collator: vlmtune.collators.base.SEQUENCE_KEYS)
register_family(
    conventional_family(
        "ernie4.5-vl",
        build_tiny=ernie4_5_vl_moe.build_tiny,
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen2-VL's ChatML layout with ERNIE's image brackets, "
            "no video part; the one copy found of ERNIE-4.5-VL's, in transformers' convert_ernie4_5_vl_moe_to_hf.py, "
            "is unusable (whitespace inside its literals, '<|end_of_sentence |>'), searched 2026-12-07)"
        ),
        notes=(
            "separate text and vision experts (each token's group from the processor); 3D rotary positions; "
            "vLLM 0.32 implements Ernie4_5_VLMoeForConditionalGeneration (not run here)"
        ),
    )
)
register_model("ernie-4.5-vl-28b-a3b", "ernie4.5-vl", "baidu/ERNIE-4.5-VL-28B-A3B-PT")
# https://huggingface.co/ibm-granite/granite-vision-4.1-4b (named in transformers' granite4_vision.md)
register_family(
    conventional_family(
        "granite4-vision",
        build_tiny=granite4_vision.build_tiny,
        # LLaVA-NeXT's tiling: a batch's images have different tile counts, padded by LLaVA-NeXT's collator.
        collator=LlavaNextCollator,
        # Two sets of window Q-Former projectors (DeepStack injection), neither of a conventional name; the row
        # separator image_newline is a bare parameter (frozen, as llava-next's).
        modules=ModulePrefixes(
            vision_encoder=("model.vision_tower",),
            vision_projector=("model.layerwise_projectors", "model.spatial_projectors"),
            llm=("model.language_model", "lm_head"),
            others=("model.image_newline",),
        ),
        template_source=(
            "derived and checked at load (tiny model: stand-in Qwen3-VL's ChatML layout with this processor's "
            "<image>, no video part; no copy of Granite Vision 4.1's template found, searched 2026-12-07)"
        ),
        notes=(
            "document extraction (charts, tables, key-value pairs; task tags as prompts); LLaVA-NeXT tiling with "
            "DeepStack projectors into several LM layers; vLLM 0.32 implements Granite4VisionForConditionalGeneration "
            "(not run here)"
        ),
    )
)
register_model("granite-vision-4.1-4b", "granite4-vision", "ibm-granite/granite-vision-4.1-4b")
# --- end of issue 19, batch D ---


# --- unsupported families ---------------------------------------------------------------------------------

REMOTE_CODE_ONLY = (
    "its code exists only as remote code in the checkpoint repository (trust_remote_code), written for transformers "
    "4.x; vlmtune never runs remote code by default and cannot verify it against transformers 5 offline"
)
NO_CHAT_FORMAT = "it has no chat template: a captioning/OCR model trained on plain prompts, not conversations"

register_unsupported("qwen-vl", REMOTE_CODE_ONLY + " (Qwen2-VL and later are supported)", "Qwen/Qwen-VL-Chat")
register_unsupported(
    "phi3-v",
    REMOTE_CODE_ONLY,
    "microsoft/Phi-3-vision-128k-instruct",
    "microsoft/Phi-3.5-vision-instruct",
)
register_unsupported(
    "kimi-k2.5",
    "its tokenizer is a remote-code tiktoken tokenizer, so its processor does not load without trust_remote_code",
    "moonshotai/Kimi-K2.5",
    "moonshotai/Kimi-K2.6",
)
TEMPLATE_UNCONFIRMED = (
    "its released chat template could not be read offline word for word, so the masking cannot be proven against "
    "the real prompt format yet"
)
register_unsupported(
    "molmo2",
    TEMPLATE_UNCONFIRMED + " (it also moves all images to the start and needs per-sample pooling indices)",
    "allenai/Molmo2-8B",
    "allenai/Molmo2-4B",
    "allenai/Molmo2-O-7B",
)
register_unsupported("blip-2", NO_CHAT_FORMAT, "Salesforce/blip2-opt-2.7b")
register_unsupported("instructblip", NO_CHAT_FORMAT, "Salesforce/instructblip-vicuna-7b")
register_unsupported("pix2struct", NO_CHAT_FORMAT, "google/pix2struct-textcaps-base")
register_unsupported("kosmos-2", NO_CHAT_FORMAT, "microsoft/kosmos-2-patch14-224")
register_unsupported("git", NO_CHAT_FORMAT, "microsoft/git-base")


COMPOSED_PATH = "(a vlmtune compose output: --model_local_path DIR)"


def format_table() -> str:
    rows = [("model id", "family", "checkpoint")]
    rows += [
        (m.model_id, m.family_id, m.hf_path or COMPOSED_PATH)
        for m in sorted(MODELS.values(), key=lambda m: (m.family_id, m.model_id))
    ]
    return _aligned(rows)


def _aligned(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def capability_cell(family: Family, name: str) -> str:
    """'yes' or 'no' as the record says, or 'derived' where each checkpoint's own template decides (a conventional
    family: `vlmtune check <model id>` shows what it accepts)."""
    if name in family.derived:
        return "derived"
    return "yes" if getattr(family, name) else "no"


def format_family_table() -> str:
    """A Markdown table of every family: its tiny id, what its samples may hold, its registered checkpoints."""
    lines = [
        "| family | tiny id | multi-image | video | system prompt | multi-turn | template source | checkpoints |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family_id in sorted(FAMILIES):
        family = FAMILIES[family_id]
        checkpoints = ", ".join(
            f"`{m.hf_path}`" if m.hf_path else "any `vlmtune compose` output"
            for m in sorted(MODELS.values(), key=lambda m: m.model_id)
            if m.family_id == family_id and not m.is_tiny
        )
        system = capability_cell(family, "system_prompt")
        if system == "yes" and capability_cell(family, "system_prompt_with_images") == "no":
            system = "text-only samples"
        cells = [
            family_id,
            f"`{TINY_PREFIX}{family_id}`",
            capability_cell(family, "multi_image"),
            capability_cell(family, "video"),
            system,
            capability_cell(family, "multi_turn"),
            family.template_source,
            checkpoints,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_unsupported() -> str:
    rows = [("family", "checkpoints", "why it is not supported")]
    rows += [(u.name, ", ".join(u.hf_paths), u.reason) for u in sorted(UNSUPPORTED.values(), key=lambda u: u.name)]
    return _aligned(rows)


def main(argv: list[str] | None = None) -> None:
    from vlmtune.arguments import CommandParser  # one-line errors, close matches for a mistyped flag

    parser = CommandParser(prog="vlmtune models", description="List the models and families vlmtune can finetune.")
    view = parser.add_mutually_exclusive_group()
    view.add_argument("--families", action="store_true", help="What each family accepts, as a Markdown table.")
    view.add_argument("--unsupported", action="store_true", help="Families vlmtune cannot support, and why.")
    view.add_argument(
        "--coverage",
        action="store_true",
        help="Every image-text-to-text type of the installed transformers: trains (family, template) or why not.",
    )
    args = parser.parse_args(argv)
    if args.coverage:
        from vlmtune.coverage import format_coverage  # it reads the registry, so it is imported after it

        print(format_coverage())
    elif args.families:
        print(format_family_table())
    elif args.unsupported:
        print(format_unsupported())
    else:
        print(format_table())


if __name__ == "__main__":  # through the CLI, for its one-line errors
    import sys

    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["models", *sys.argv[1:]]))
