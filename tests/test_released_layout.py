"""Full models are written in the key layout of the family's released checkpoints (vlmtune/loaders/released.py).

The expected layout comes from each family's conversion mapping in transformers (what `from_pretrained`
converts from), applied here name by name; the saved model must reload with identical weights and logits.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tests.conftest import digit_png, resolved_entry
from tests.test_train import run
from vlmtune.core.modeling import checkpoint_path
from vlmtune.loaders.released import released_conversions, save_released
from vlmtune.supported_models import FAMILIES, get_model


def saved_keys(folder) -> set[str]:
    keys = set()
    for shard in folder.glob("*.safetensors"):
        with safe_open(str(shard), "pt") as handle:
            keys |= set(handle.keys())
    return keys


def released_names(model) -> tuple[set[str], set[str]]:
    """(names the family's renamings give the model's weights when reversed, names a fusing converter owns)."""
    from transformers.core_model_loading import WeightConverter, apply_renamings

    transforms = [t.reverse_transform() for t in released_conversions(model)[::-1]]
    renamings = [t for t in transforms if not isinstance(t, WeightConverter)]
    converters = [t for t in transforms if isinstance(t, WeightConverter)]
    tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
    names, fused = set(), set()
    for name in model.state_dict():
        if name in tied:
            continue
        if any(converter.rename_source_key(name)[1] is not None for converter in converters):
            fused.add(name)
        else:
            names.add(apply_renamings(name, renamings))
    return names, fused


@pytest.mark.parametrize("family_id", list(FAMILIES))
def test_saved_full_model_has_the_released_layout_and_reloads_identically(family_id, load_tiny, tmp_path):
    entry = resolved_entry(f"tiny-{family_id}")
    model, processor = load_tiny(entry.model_id)
    folder = save_released(model, tmp_path / "out")
    processor.save_pretrained(folder)

    expected, fused = released_names(model)
    keys = saved_keys(folder)
    assert expected <= keys, sorted(expected - keys)[:5]
    assert bool(fused) == bool(keys - expected), sorted(keys - expected)[:5]  # only fused experts are split
    # The tiny checkpoint is written the same way.
    assert saved_keys(Path(checkpoint_path(entry))) == keys

    reloaded, _ = entry.family.load(str(folder))
    original = model.state_dict()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, original[name]), name
    ids = torch.tensor([[1, 5, 9, 17, 33]])
    model.eval(), reloaded.eval()
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids).logits, model(input_ids=ids).logits)


def test_llava_and_qwen2_vl_are_written_with_the_released_checkpoints_names(load_tiny, tmp_path):
    """Anchors from the released checkpoints (llava-hf/llava-1.5-7b-hf, Qwen/Qwen2-VL-2B-Instruct)."""
    llava = saved_keys(save_released(load_tiny("tiny-llava-1.5")[0], tmp_path / "llava"))
    assert "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight" in llava
    assert {"language_model.model.embed_tokens.weight", "multi_modal_projector.linear_1.weight"} <= llava
    qwen = saved_keys(save_released(load_tiny("tiny-qwen2-vl")[0], tmp_path / "qwen"))
    assert {"model.layers.0.self_attn.q_proj.weight", "visual.blocks.0.attn.qkv.weight", "lm_head.weight"} <= qwen


def test_full_finetune_and_merge_outputs_are_written_in_the_released_layout(tmp_path):
    from vlmtune.serving.merge import merge

    turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": "3"}]
    digits_data = tmp_path / "train.json"
    digits_data.write_text(json.dumps([{"image": digit_png(tmp_path, "d3.png", 3), "conversations": turns}] * 2))

    full_trainer, full = run(tmp_path / "full", digits_data, "tiny-llava-1.5", max_steps=1, llm_mode="full")
    assert "vision_tower.vision_model.post_layernorm.weight" in saved_keys(full)
    _, lora = run(tmp_path / "lora", digits_data, "tiny-llava-1.5", max_steps=1)
    merged = merge(lora, tmp_path / "merged")
    assert saved_keys(merged) == saved_keys(full)
    reloaded, _ = get_model("tiny-llava-1.5").family.load(str(full))
    trained = full_trainer.model.state_dict()
    assert all(torch.equal(tensor, trained[name]) for name, tensor in reloaded.state_dict().items())
