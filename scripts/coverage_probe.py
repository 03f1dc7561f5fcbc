"""Try every image-text-to-text type of the installed transformers and print what was found, one JSON line each.

    OMP_NUM_THREADS=1 python scripts/coverage_probe.py                 # all 97 types of transformers 5.23
    OMP_NUM_THREADS=1 python scripts/coverage_probe.py qwen4_exp pi0   # just these

For each type of `MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES`: its config class built with defaults (or, where that
fails, with small sub-config sizes), the model class built from it on the meta device (no weights, no memory), the
inner model's top-level parts (language model / vision part / projector), and its processor class: which
components it holds (tokenizer, image/video processor, an audio feature extractor) and whether it ships a default
chat template. vlmtune/coverage.py states each type's status; the reasons there come from this output.
"""

from __future__ import annotations

import inspect
import json
import sys

import torch
import transformers
from transformers import CONFIG_MAPPING
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES
from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

# Small sizes tried when a type's default config does not build (FIELD-NOTES: qwen4_exp, granite4_vision, hunyuan_vl).
SMALL = {
    "num_hidden_layers": 2,
    "depth": 2,
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "num_heads": 2,
    "head_dim": 32,
}
LANGUAGE = ("language_model", "text_model", "llm")
VISION = ("vision", "visual", "image_encoder", "vqmodel", "vision_encoder")
PROJECTOR = ("projector", "merger", "resampler", "aligner", "connector", "adapter")


def shrink(config) -> None:
    """Set small sizes on the config and each sub-config that has the attribute (layers first: meta is fast)."""
    for sub in [config, *(getattr(config, k) for k in getattr(config, "sub_configs", {}) if getattr(config, k, None))]:
        for key, value in SMALL.items():
            if hasattr(sub, key) and isinstance(getattr(sub, key), int):
                setattr(sub, key, value)


def build(model_type: str, model_class):
    config_class = CONFIG_MAPPING[model_type]
    errors = []
    for small in (False, True):
        try:
            config = config_class()
            if small:
                shrink(config)
            else:  # fewer layers only: the layout is the same and the meta build takes a fraction of the time
                for sub in [config, *(getattr(config, k, None) for k in getattr(config, "sub_configs", {}))]:
                    if sub is not None and isinstance(getattr(sub, "num_hidden_layers", None), int):
                        sub.num_hidden_layers = min(sub.num_hidden_layers, 2)
            with torch.device("meta"):
                return model_class(config), ("shrunk" if small else "default"), errors
        except Exception as error:  # noqa: BLE001 - what fails is the finding
            errors.append(
                f"{'shrunk' if small else 'default'}: {type(error).__name__}: {str(error).splitlines()[0][:160]}"
            )
    return None, None, errors


def parts(model) -> dict[str, list[str]]:
    inner = getattr(model, "model", model)
    names = [name for name, _ in inner.named_children()]
    pick = lambda keys: [n for n in names if any(k in n.lower() for k in keys)]  # noqa: E731
    return {"children": names, "language": pick(LANGUAGE), "vision": pick(VISION), "projector": pick(PROJECTOR)}


def processor_facts(model_type: str) -> dict:
    name = PROCESSOR_MAPPING_NAMES.get(model_type)
    if name is None:
        return {"processor": None}
    cls = getattr(transformers, name, None)
    if cls is None:
        return {"processor": name, "importable": False}
    default = inspect.signature(cls.__init__).parameters.get("chat_template")
    source = inspect.getsource(inspect.getmodule(cls))
    return {
        "processor": name,
        "components": list(getattr(cls, "get_attributes", lambda: [])()),
        "audio": "feature_extractor" in source or "audio" in " ".join(getattr(cls, "get_attributes", lambda: [])()),
        "default_chat_template": bool(default is not None and default.default not in (None, inspect._empty))
        or "DEFAULT_CHAT_TEMPLATE" in source,
        "image_token_attr": "image_token" in source,
    }


def probe(model_type: str) -> dict:
    class_name = MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES[model_type]
    model_class = getattr(transformers, class_name, None)
    found = {"type": model_type, "model_class": class_name, **processor_facts(model_type)}
    if model_class is None:
        return {**found, "built": None, "errors": ["model class not importable"]}
    model, how, errors = build(model_type, model_class)
    found.update(built=how, errors=errors, generates=hasattr(model_class, "generate"))
    if model is not None:
        found.update(parts(model))
    return found


def main(types: list[str]) -> None:
    for model_type in types or sorted(MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES):
        print(json.dumps(probe(model_type)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
