"""Full models are written in the key layout of their family's released checkpoints.

transformers 5 renames the keys of released checkpoints as it loads them (the family's conversion mapping in
`transformers.conversion_mapping`, e.g. LLaVA's `vision_tower.vision_model.*` becomes `model.vision_tower.*`),
and `save_pretrained` reverses only the renamings that matched when the model was loaded: none for a model
built in code (a tiny model), and not the prefix changes of a checkpoint that was already in the new layout (a
tiny checkpoint, a merge of one). vLLM, older transformers and other tools read only the released layout, so
every full model vlmtune writes (merged, fully finetuned, tiny) goes through `save_released`, which reverses
every renaming of the family's mapping: the released layout is what that mapping converts from. The one
exception is a rule that adds a prefix on load only where it is missing (a raw timm checkpoint gets
`timm_model.`): its released checkpoints already carry the prefix (PerceptionLM's `vision_tower.timm_model.*`),
so it is not reversed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def released_conversions(model) -> list:
    """The family's conversion mapping as `from_pretrained` builds it, but the prefix-adding rules (see above)."""
    from transformers.conversion_mapping import get_model_conversion_mapping

    conversions = get_model_conversion_mapping(model, add_legacy=False)
    kept, seen = [], set()
    for rule in conversions:
        # A rule listed twice (Qwen2.5-Omni's thinker and its inner model both drop `thinker.`) is a no-op the
        # second time on load, but reversed twice it would write the prefix twice.
        key = repr(rule) if type(rule).__name__ in ("WeightRenaming", "PrefixChange") else id(rule)
        if getattr(rule, "prefix_to_add", None) is None and key not in seen:
            kept.append(rule)
            seen.add(key)
    return kept


@contextmanager
def released_layout(model) -> Iterator[None]:
    """While inside, `model.save_pretrained` (also when called by `Trainer.save_model`) writes released keys.

    There is no public API to choose the mapping that `save_pretrained` reverses: it reads the private attribute
    `_weight_conversions` that `from_pretrained` sets. It is set here to the family's whole mapping (from the
    public `get_model_conversion_mapping`, as `from_pretrained` builds it) and restored after.
    """
    missing = object()
    previous = getattr(model, "_weight_conversions", missing)
    model._weight_conversions = released_conversions(model)
    try:
        yield
    finally:
        if previous is missing:
            del model._weight_conversions
        else:
            model._weight_conversions = previous


def save_released(model, folder: str | Path, max_shard_size: str | int = "5GB") -> Path:
    """Write a full model (not a PEFT-wrapped one) with `save_pretrained`, its weights in the released layout."""
    with released_layout(model):
        model.save_pretrained(str(folder), max_shard_size=max_shard_size)
    return Path(folder)
