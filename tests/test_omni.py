"""The thinkers of Qwen's omni models (issue 19, batch E): a released checkpoint's config is the whole omni model's
(thinker + talker + vocoder), its weights prefixed `thinker.`; vlmtune checks, loads and trains its thinker."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tests.conftest import digit_png
from tests.test_masking import conversation, encode
from vlmtune.core.checkpoint import check_checkpoint
from vlmtune.core.modeling import checkpoint_path
from vlmtune.datasets import Sample
from vlmtune.supported_models import get_family, get_model


def omni_layout(tmp_path, family_id: str) -> str:
    """The tiny thinker rewritten as a released omni checkpoint: its config nested as `thinker_config` of the
    whole model's config (talker and vocoder left out, as a thinker-only load never reads them)."""
    folder = tmp_path / family_id
    shutil.copytree(checkpoint_path(get_model(f"tiny-{family_id}")), folder)
    thinker = json.loads((folder / "config.json").read_text())
    whole = {"model_type": thinker["model_type"].removesuffix("_thinker"), "thinker_config": thinker}
    whole["enable_audio_output"] = False
    (folder / "config.json").write_text(json.dumps(whole))
    return str(folder)


@pytest.mark.parametrize(
    ("family_id", "model_type", "processor"),
    [
        ("qwen2.5-omni", "qwen2_5_omni", "Qwen2_5OmniProcessor"),
        ("qwen3-omni", "qwen3_omni_moe", "Qwen3OmniMoeProcessor"),
    ],
)
def test_a_released_omni_checkpoint_is_checked_and_trained_as_its_thinker(tmp_path, family_id, model_type, processor):
    path = omni_layout(tmp_path, family_id)
    family = get_family(family_id)
    report = check_checkpoint(path, family)
    assert not report.failures, report.failure_lines()
    assert dict(report.facts)["model type"] == f"{model_type} ({processor})"
    checked = report.family
    assert checked.modules.others == ("model.audio_tower",) and checked.modules.vision_projector == (
        "model.visual.merger",
    )

    model, loaded_processor = family.load(path)
    assert type(model).__name__.endswith("ThinkerForConditionalGeneration")
    reference, _ = family.load(checkpoint_path(get_model(f"tiny-{family_id}")))
    for (name, weight), (_, expected) in zip(model.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(weight, expected), f"{name} was not read from the thinker.* weights"
    collator = checked.collator(loaded_processor, checked.reply_end)
    sample = Sample(conversation("<image>\nWhich digit?", "7"), images=[digit_png(tmp_path, "7.png", 7)], source="a")
    loss = model(**collator([encode(collator, sample)])).loss
    assert torch.isfinite(loss)
