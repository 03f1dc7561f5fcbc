"""Packing keeps samples apart: packed per-sample losses equal unpacked ones, and no sample sees another."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tests.conftest import digit_png, resolved_entry, resolved_family
from tests.test_masking import conversation, encode
from vlmtune.collators.base import IGNORE_INDEX
from vlmtune.core.modeling import checkpoint_path
from vlmtune.core.packing import PackingCollator, check_packing, fill_rows, multimodal_rope_index
from vlmtune.datasets import Sample
from vlmtune.supported_models import FAMILIES

PACKING_FAMILIES = sorted(family_id for family_id, family in FAMILIES.items() if family.packing)


def load(family_id: str, attention: str):
    entry = resolved_entry(f"tiny-{family_id}")
    model, processor = entry.family.load(checkpoint_path(entry), attn_implementation=attention)
    model.eval()
    collator = entry.family.collator(processor, entry.family.reply_end)
    return model, collator


def samples(folder, multi_image: bool) -> list[Sample]:
    seven = digit_png(folder, "7.png", 7, size=32)
    three = digit_png(folder, "3.png", 3, size=64)
    two = [seven, three] if multi_image else [three]
    return [
        Sample(conversation("<image>\nWhich digit?", "7"), images=[seven], source="a"),
        Sample(conversation("Say hi.", "Hi there, how are you today?"), source="b"),
        Sample(
            conversation("<image>\n" * len(two) + "Which digits?", "Seven and three.", "Sure?", "Yes."),
            images=two,
            source="c",
        ),
    ]


def token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Summed next-token cross-entropy of one sample's logits [length, vocab] against its labels [length]."""
    return F.cross_entropy(logits[:-1].float(), labels[1:], ignore_index=IGNORE_INDEX, reduction="sum")


def placements(features: list[dict], one_row: bool) -> dict[int, tuple[int, slice]]:
    """Where PackingCollator puts each sample: index -> (row, token slice)."""
    lengths = [len(f["input_ids"]) for f in features]
    rows = [list(range(len(features)))] if one_row else fill_rows(lengths, max(lengths))
    found = {}
    for r, row in enumerate(rows):
        start = 0
        for index in row:
            found[index] = (r, slice(start, start + lengths[index]))
            start += lengths[index]
    return found


def packed_logits(model, collator, features: list[dict], one_row: bool = True) -> list[torch.Tensor]:
    batch = PackingCollator(collator, multimodal_rope_index(model), one_row=one_row)(features)
    assert "attention_mask" not in batch and batch["use_cache"] is False
    with torch.no_grad():
        logits = model(**batch).logits
    where = placements(features, one_row)
    return [logits[where[i][0], where[i][1]] for i in range(len(features))]


@pytest.mark.parametrize(("attention", "one_row"), [("sdpa", True), ("sdpa", False), ("eager", False)])
@pytest.mark.parametrize("family_id", PACKING_FAMILIES)
def test_packed_per_sample_loss_equals_unpacked(family_id, attention, one_row, tmp_path):
    model, collator = load(family_id, attention)
    check_packing(model, family_id, FAMILIES[family_id].packing)
    features = [encode(collator, s) for s in samples(tmp_path, resolved_family(family_id).multi_image)]
    if not one_row:
        assert len(fill_rows([len(f["input_ids"]) for f in features], max(len(f["input_ids"]) for f in features))) > 1

    packed = packed_logits(model, collator, features, one_row)
    for feature, logits in zip(features, packed, strict=True):
        with torch.no_grad():
            alone = model(**collator([feature])).logits[0]
        assert torch.allclose(logits, alone, atol=1e-4), (logits - alone).abs().max()
        expected, got = token_losses(alone, feature["labels"]), token_losses(logits, feature["labels"])
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-5), (got, expected)

    # The model's own loss over the packed row is the token mean over all samples, as in a padded batch.
    batch = PackingCollator(collator, multimodal_rope_index(model), one_row=one_row)(features)
    with torch.no_grad():
        packed_loss = model(**batch).loss
        padded_loss = model(**collator(features)).loss
    assert torch.allclose(packed_loss, padded_loss, atol=1e-5)


@pytest.mark.parametrize("family_id", PACKING_FAMILIES)
def test_a_sample_cannot_see_the_sample_before_it(family_id, tmp_path):
    model, collator = load(family_id, "sdpa")
    first, second, third = samples(tmp_path, resolved_family(family_id).multi_image)
    changed = Sample(conversation("Say hello, please.", "Hello! Nice to meet you."), source="b2")
    target = encode(collator, third)
    before = packed_logits(model, collator, [encode(collator, second), target])[1]
    after = packed_logits(model, collator, [encode(collator, changed), target])[1]
    assert torch.allclose(before, after, atol=1e-5), (before - after).abs().max()
    # Control: the same rows with one running position sequence do mix the samples.
    batch = PackingCollator(collator, multimodal_rope_index(model))([encode(collator, changed), target])
    batch["attention_mask"] = torch.ones_like(batch["input_ids"])
    batch.pop("position_ids")
    with torch.no_grad():
        mixed = model(**batch).logits[0][-len(target["input_ids"]) :]
    assert not torch.allclose(mixed, after, atol=1e-3)


def test_packed_rows_restart_positions_and_hide_boundary_labels(load_tiny, tmp_path):
    model, processor = load_tiny("tiny-qwen2-vl")
    family = resolved_family("qwen2-vl")
    collator = family.collator(processor, family.reply_end)
    features = [encode(collator, s) for s in samples(tmp_path, multi_image=True)]
    lengths = [len(f["input_ids"]) for f in features]
    for one_row in (True, False):
        batch = PackingCollator(collator, multimodal_rope_index(model), one_row=one_row)(features)
        rows = 1 if one_row else len(fill_rows(lengths, max(lengths)))
        width = sum(lengths) if one_row else max(lengths)
        assert batch["position_ids"].shape == (4, rows, width) and batch["input_ids"].shape == (rows, width)
        for row, part in placements(features, one_row).values():
            assert batch["position_ids"][0, row, part.start] == 0 and batch["labels"][row, part.start] == IGNORE_INDEX
            assert (batch["position_ids"][1:, row, part.start] == 0).all()
        assert batch["image_grid_thw"].shape[0] == 3
        assert (batch["input_ids"] == collator.pad_token_id).sum() == rows * width - sum(lengths)


def test_rows_are_filled_longest_first_within_the_longest_sample():
    assert fill_rows([5, 3, 2, 4, 1], 5) == [[0], [3, 4], [1, 2]]
    assert fill_rows([7], 7) == [[0]]


def test_packing_is_refused_where_samples_could_mix(load_tiny):
    model, _ = load_tiny("tiny-gemma3")
    with pytest.raises(ValueError, match="not supported for the gemma3 family"):
        check_packing(model, "gemma3", FAMILIES["gemma3"].packing)
    model, _ = load_tiny("tiny-llava-1.5")
    previous = model.config._attn_implementation
    model.config._attn_implementation = "paged|sdpa"
    try:
        with pytest.raises(ValueError, match="this model runs 'paged|sdpa'"):
            check_packing(model, "llava-1.5", True)
    finally:
        model.config._attn_implementation = previous


# A conventional family's video support is read from its template (checked in the test).
VIDEO_PACKING_FAMILIES = [f for f in PACKING_FAMILIES if FAMILIES[f].video or "video" in FAMILIES[f].derived]


@pytest.mark.parametrize("family_id", VIDEO_PACKING_FAMILIES)
def test_packed_video_samples_match_unpacked(family_id, tmp_path):
    """Videos too: per-sample (for Qwen, temporal 3-D) positions keep a video sample's logits as they are alone."""
    from tests.conftest import write_video
    from vlmtune.data.video import decode_video
    from vlmtune.datasets import open_image

    if not resolved_family(family_id).video:
        pytest.skip(f"{family_id}: its template takes no video")
    model, collator = load(family_id, "sdpa")
    seven = digit_png(tmp_path, "7.png", 7, size=32)
    clip = write_video(tmp_path / "clip.mp4", num_frames=8)
    image_sample = Sample(conversation("<image>\nWhich digit?", "7"), images=[seven], source="a")
    video_sample = Sample(conversation("<video>\nWhat happens?", "It gets brighter."), videos=[clip], source="v")
    features = [
        collator.encode(image_sample, [open_image(seven)], []),
        collator.encode(video_sample, [], [decode_video(clip, 4)]),
    ]
    for feature, logits in zip(features, packed_logits(model, collator, features), strict=True):
        with torch.no_grad():
            alone = model(**collator([feature])).logits[0]
        assert torch.allclose(logits, alone, atol=1e-4), (logits - alone).abs().max()
