"""The registry: lookups fail loudly with close matches, the table lists everything, prefixes match real modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import resolved_family
from vlmtune import supported_models as registry
from vlmtune.core.modeling import PARTS, part_of, part_roots
from vlmtune.supported_models import FAMILIES, MODELS, ModulePrefixes, get_model, register_model


def test_table_lists_every_model_family_and_tiny_id():
    output = subprocess.run(
        [sys.executable, "-m", "vlmtune.supported_models"], capture_output=True, text=True, check=True
    ).stdout
    for entry in MODELS.values():
        assert entry.model_id in output and entry.hf_path in output
    for family_id in FAMILIES:
        assert f"tiny-{family_id}" in output
    assert "llava-hf/llava-1.5-13b-hf" in output and "Qwen/Qwen2.5-VL-72B-Instruct" in output


def test_unknown_id_lists_close_matches():
    with pytest.raises(KeyError, match="unknown model id 'qwen2-vl-2b'.*did you mean 'qwen2-vl-2b-instruct'"):
        get_model("qwen2-vl-2b")


def test_duplicate_and_dangling_registrations_fail(monkeypatch):
    monkeypatch.setattr(registry, "MODELS", dict(MODELS))
    with pytest.raises(ValueError, match="already registered"):
        register_model("llava-1.5-7b", "llava-1.5", "somewhere/else")
    with pytest.raises(ValueError, match="unknown family 'qwen2vl'.*did you mean"):
        register_model("my-model", "qwen2vl", "me/my-model")


def test_longest_prefix_decides_the_part():
    prefixes = resolved_family("qwen2-vl").modules
    assert part_of("model.visual.blocks.0.attn.qkv.weight", prefixes) == "vision_encoder"
    assert part_of("model.visual.merger.mlp.0.weight", prefixes) == "vision_projector"
    assert part_of("model.language_model.layers.0.mlp.up_proj.weight", prefixes) == "llm"
    assert part_of("lm_head.weight", prefixes) == "llm"
    assert part_of("model.visualizer.weight", prefixes) == "others"  # a prefix matches whole path segments


@pytest.mark.parametrize("family_id", sorted(FAMILIES))
def test_family_prefixes_cover_the_real_model(family_id, load_tiny):
    model, _ = load_tiny(f"tiny-{family_id}")
    prefixes: ModulePrefixes = resolved_family(family_id).modules
    for part in ("vision_encoder", "vision_projector", "llm"):
        assert part_roots(model, prefixes, part), f"no module for {part}"
    parts = {part_of(name, prefixes) for name, _ in model.named_parameters()}
    assert parts <= set(PARTS)
    unclaimed = [n for n, _ in model.named_parameters() if part_of(n, prefixes) == "others"]
    assert not unclaimed or prefixes.others, f"parameters outside every prefix: {unclaimed[:3]}"


def test_adding_a_checkpoint_as_the_guide_says(monkeypatch, tmp_path, isolated_tiny_cache):
    """docs/add_new_model.md (a): one register_model line makes a new id load, encode and train."""
    import torch

    from tests.test_masking import conversation, encode
    from vlmtune.core.modeling import checkpoint_path
    from vlmtune.datasets import Sample

    monkeypatch.setattr(registry, "MODELS", dict(MODELS))
    folder = checkpoint_path(get_model("tiny-qwen2-vl"))  # stands in for a downloaded checkpoint folder
    register_model("my-qwen2-vl", "qwen2-vl", str(folder))

    entry = get_model("my-qwen2-vl")
    model, processor = entry.family.load(checkpoint_path(entry))
    collator = entry.family.collator(processor, entry.family.reply_end)
    batch = collator([encode(collator, Sample(conversation("Hi?", "Yo."), source="s"))])
    assert torch.isfinite(model(**batch).loss)
    assert "my-qwen2-vl" in registry.format_table()


def test_readme_family_table_is_the_registry():
    from pathlib import Path

    from vlmtune.supported_models import format_family_table

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    block = readme.split("<!-- families:start -->\n", 1)[1].split("\n<!-- families:end -->", 1)[0]
    assert block == format_family_table(), "regenerate it: python -m vlmtune.supported_models --families"


def test_unsupported_families_are_listed_and_refused_with_the_reason(capsys):
    from vlmtune import supported_models as registry

    registry.main(["--unsupported"])
    listing = capsys.readouterr().out
    for name in ("qwen-vl", "phi3-v", "kimi-k2.5"):
        assert name in listing
    with pytest.raises(KeyError, match="the phi3-v family is not supported: its code exists only as remote code"):
        registry.get_model("microsoft/Phi-3.5-vision-instruct")
    with pytest.raises(ValueError, match="cannot register 'my-qwen-vl': the qwen-vl family is not supported"):
        registry.register_model("my-qwen-vl", "qwen-vl", "Qwen/Qwen-VL-Chat")


def test_load_auto_loads_a_family_through_the_auto_class(load_tiny):
    from transformers import Qwen2VLForConditionalGeneration

    from vlmtune.core.modeling import checkpoint_path
    from vlmtune.loaders.base import load_auto

    model, processor = load_auto(checkpoint_path(get_model("tiny-qwen2-vl")))
    assert isinstance(model, Qwen2VLForConditionalGeneration) and processor.chat_template
