"""Load a registered model and make the right parts trainable: LoRA, QLoRA or full, per part.

Parts come from the family's module prefixes (`vlmtune.supported_models.ModulePrefixes`), matched against
`model.named_modules()` paths; the longest matching prefix decides. No `eval`, no substring guessing.
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from vlmtune.errors import ArgumentError
from vlmtune.loaders.convention import PARTS, part_of  # noqa: F401  (PARTS: also imported from here)
from vlmtune.loaders.tiny import ensure_tiny_checkpoint
from vlmtune.supported_models import ModelEntry, ModulePrefixes

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def checkpoint_path(entry: ModelEntry, local_path: str | None = None) -> str:
    """Where to load from: an explicit local folder, the built tiny model, or the registered hub path."""
    if local_path:
        return local_path
    if not entry.hf_path:
        raise ArgumentError(
            f"{entry.model_id} has no checkpoint of its own: pass --model_local_path with a folder written by "
            "vlmtune compose (or trained from one)"
        )
    if entry.is_tiny:
        return str(ensure_tiny_checkpoint(entry.family_id, entry.family.build_tiny))
    return entry.hf_path


def load_processor(entry: ModelEntry, local_path: str | None = None, trust_remote_code: bool = False):
    """The processor of a registered model alone (tokenizer, image processor, chat template); no weights."""
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(checkpoint_path(entry, local_path), trust_remote_code=trust_remote_code)


def part_roots(model: nn.Module, prefixes: ModulePrefixes, part: str) -> list[str]:
    """The module paths of `part` that exist in this model (a prefix that matches nothing is an error)."""
    names = dict(model.named_modules())
    roots = [prefix for prefix in getattr(prefixes, part) if prefix in names]
    missing = [prefix for prefix in getattr(prefixes, part) if prefix not in names]
    if missing:
        raise ValueError(f"the family's {part} prefixes {missing} match no module of {type(model).__name__}")
    return roots


# Last names of MoE routers (`mlp.gate`) and of Qwen's shared-expert gate: they stay frozen under LoRA, since
# adapting them shifts which experts every token goes to.
ROUTER_NAMES = ("gate", "router", "shared_expert_gate")


def saved_modules(model: nn.Module, prefixes: ModulePrefixes, part: str) -> list[str]:
    """The modules PEFT saves whole for a fully trained part next to LoRA: the part's roots, a ModuleList root
    (Qwen3-VL's DeepStack mergers) as its items, since PEFT cannot wrap a list."""
    names = []
    for root in part_roots(model, prefixes, part):
        module = model.get_submodule(root)
        if isinstance(module, nn.ModuleList):
            names += [f"{root}.{index}" for index in range(len(module))]
        else:
            names.append(root)
    return names


def lora_targets(model: nn.Module, prefixes: ModulePrefixes, parts: set[str]) -> list[str]:
    """Full paths of the linear layers to put LoRA on: every nn.Linear of the given parts but the output head and
    MoE routers."""
    targets = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or part_of(name, prefixes) not in parts:
            continue
        if not name.endswith("lm_head") and name.rpartition(".")[2] not in ROUTER_NAMES:
            targets.append(name)
    return targets


def expert_parameters(model: nn.Module, prefixes: ModulePrefixes, parts: set[str]) -> list[str]:
    """Full names of fused MoE expert weights in the given parts, which are no nn.Linear and need PEFT's
    target_parameters: the 3-D parameters [experts, out, in] of a transformers `*Experts` module (the naming every
    MoE model of transformers 5 follows, e.g. `mlp.experts.gate_up_proj` of `Qwen3VLMoeTextExperts`). Other 3-D
    parameters (a position embedding [1, positions, dim], a Conv1d weight) are not experts."""
    names = []
    for module_name, module in model.named_modules():
        if not type(module).__name__.endswith("Experts"):
            continue
        for parameter_name, parameter in module.named_parameters(recurse=False):
            name = f"{module_name}.{parameter_name}"
            if parameter.dim() == 3 and part_of(name, prefixes) in parts:
                names.append(name)
    return names


def quantization_config(prefixes: ModulePrefixes, compute_dtype: torch.dtype):
    """4-bit nf4 for QLoRA. Vision tower, projector and head stay unquantized (listed from the path's start)."""
    try:
        import bitsandbytes  # noqa: F401  (optional: only QLoRA needs it)
    except ImportError as error:
        raise RuntimeError("--use_qlora needs bitsandbytes: pip install bitsandbytes") from error
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
        llm_int8_skip_modules=[*prefixes.vision_encoder, *prefixes.vision_projector, *prefixes.others, "lm_head"],
    )


def load_model(entry: ModelEntry, model_args: Any) -> tuple[nn.Module, Any]:
    """Load model and processor of a registered id, with dtype, attention and QLoRA settings from the args.
    A conventional family's entry must come checked (`vlmtune.core.checkpoint.checked_entry`): QLoRA's unquantized
    parts, and the collator the caller builds, read the fields derived from the checkpoint's files."""
    family = entry.family
    if family.derived and entry.resolved is None:  # a caller's slip, not a user's: say which step is missing
        raise ValueError(f"{entry.model_id}: a conventional family's entry must pass checked_entry before loading")
    dtype = DTYPES[model_args.model_dtype]
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": model_args.trust_remote_code}
    if model_args.attn_implementation:
        kwargs["attn_implementation"] = model_args.attn_implementation
    if model_args.use_qlora:
        kwargs["quantization_config"] = quantization_config(family.modules, dtype)
    path = checkpoint_path(entry, model_args.model_local_path)
    logger.info("loading %s (%s) from %s", entry.model_id, entry.family_id, path)
    return family.load(path, **kwargs)


def set_trainable(
    model: nn.Module, prefixes: ModulePrefixes, model_args: Any, gradient_checkpointing: bool
) -> nn.Module:
    """Freeze, fully train or LoRA-adapt each part as the args say; returns the (possibly PEFT-wrapped) model."""
    full_parts = set()
    if model_args.llm_mode == "full":
        full_parts.add("llm")
    if model_args.vision_mode == "full":
        full_parts.add("vision_encoder")
    if model_args.train_projector:
        full_parts.add("vision_projector")
    lora_parts = {
        part
        for part, mode in (("llm", model_args.llm_mode), ("vision_encoder", model_args.vision_mode))
        if mode == "lora"
    }
    for part in full_parts | lora_parts:
        part_roots(model, prefixes, part)  # fail early on a prefix that matches nothing

    for name, parameter in model.named_parameters():
        parameter.requires_grad = part_of(name, prefixes) in full_parts
    if model_args.use_qlora:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    if not lora_parts:
        return model

    from peft import LoraConfig, get_peft_model

    experts = expert_parameters(model, prefixes, lora_parts)
    if experts and model_args.lora_dropout:
        # PEFT's ParamWrapper (target_parameters) cannot apply dropout: LoRA stays on the linear layers only.
        logger.warning(
            "%d fused MoE expert weights get no LoRA because --lora_dropout is %s; pass --lora_dropout 0 to adapt "
            "the experts too",
            len(experts),
            model_args.lora_dropout,
        )
        experts = []
    targets = lora_targets(model, prefixes, lora_parts)
    config = LoraConfig(
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=targets,
        target_parameters=experts or None,
        # Fully trained parts next to LoRA are saved whole with the adapter.
        modules_to_save=[name for part in sorted(full_parts) for name in saved_modules(model, prefixes, part)] or None,
        task_type="CAUSAL_LM",
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as error:
        if "lora_dropout" not in str(error):
            raise
        # PEFT's transformers-v4-to-v5 conversion (glm4v_moe) renames `*.gate_proj`/`*.up_proj`/`*.down_proj`
        # targets to the fused experts' parameters, which take no dropout.
        raise ArgumentError(
            f"PEFT turns this {model.config.model_type} model's MLP LoRA targets into fused-expert parameters, "
            "which take no dropout: pass --lora_dropout 0"
        ) from error
    warn_about_rewritten_targets(targets, peft_model.peft_config["default"].target_modules)
    return peft_model


def warn_about_rewritten_targets(asked: list[str], kept: Any) -> None:
    """Say which LoRA targets PEFT dropped on its own: its transformers-v5 conversion (GLM-4.5V's type) moves every
    `*.gate_proj`/`*.up_proj`/`*.down_proj` target, dense MLPs and shared experts included, onto the fused experts."""
    dropped = sorted(set(asked) - set(kept or ()))
    if dropped:
        logger.warning(
            "PEFT put no LoRA on %d of the asked linear layers (e.g. %s): it maps them onto the fused MoE experts "
            "(its transformers v4-to-v5 conversion); train the language model fully to train them",
            len(dropped),
            dropped[0],
        )


def count_parameters(model: nn.Module) -> tuple[int, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, total
