"""The DPO path's log-probs for every registered family (one image, two images and a video where the family takes
them): chosen and rejected replies of several pairs, encoded by the family's collator and padded into one batch,
get exactly the log-probs that a plain forward of each conversation alone gives (fp32, 1e-4), with each pair's
media encoded once (`media_encoded_once`) for every family but those listed in PER_ROW; and, for the families
that pack, with each pair as one row (`SharedPromptCollator`: the prompt once, then both replies), which
`vlmtune dpo` uses for them.

A reply masked wrong (a prompt token trained, the end of turn left out), media put in the wrong row when the
chosen and rejected rows are stacked, or padding that changes what a row sees, all break this equality.
"""

from __future__ import annotations

import pytest
import torch

from tests.conftest import digit_png, resolved_family, write_video
from vlmtune.collators.base import IGNORE_INDEX
from vlmtune.core.packing import multimodal_rope_index
from vlmtune.datasets import Sample, Turn, encode_with_media
from vlmtune.dpo.data import PairCollator, PairDataset, PreferencePair, SharedPromptCollator
from vlmtune.dpo.run import pair_batcher
from vlmtune.dpo.trainer import LOSS_KEYS, media_encoded_once, reply_logps
from vlmtune.supported_models import FAMILIES, MODELS

# Families (or a family's videos) whose pairs' media are encoded per row (the plain forward), not once per pair:
# no `mm_encoder_outputs` (llama-3.2-vision), no `get_video_features` (PerceptionLM's videos), or an encoder
# whose output or arguments are more than per-media features from the batch (llama4, ovis2; Qwen3-VL: deepstack).
PER_ROW = {
    "llama-3.2-vision",
    "llama4",
    "ovis2",
    ("perception-lm", "video"),
    "qwen3-vl",
    "qwen3-vl-moe",
}
PER_ROW |= {"qwen3-omni"}  # issue 19, batch E: the thinker's vision tower has Qwen3-VL's deepstack
PER_ROW |= {"granite4-vision"}  # issue 19, batch D: its image features are deepstack lists per LLM layer
# Issue 19, batches A and C: media-once is not taken where the encoder's inputs are not the processor's one
# `pixel_values` per media (DeepSeek-VL hybrid's second, high-resolution tower; MiniCPM-V's packed views;
# Video-LLaVA's `pixel_values_images`).
PER_ROW |= {"deepseek-vl-hybrid", "minicpm-v4.6", "minicpm-v4.7", ("video-llava", "images")}
# Families that pack but keep two rows per pair: layers that attend in chunks (Llama 4) or in a sliding window
# (Cohere2's, the language model of Aya Vision and Command A Vision).
TWO_ROWS = {"llama4", "aya-vision", "cohere2-vision"}


def tiny_id(family_id: str) -> str:
    return next(model_id for model_id, entry in MODELS.items() if entry.is_tiny and entry.family_id == family_id)


def pair(text: str, images=(), videos=(), chosen="Seven.", rejected="It is a three, I think.") -> PreferencePair:
    prompt = Sample([Turn("user", text)], images=list(images), videos=list(videos), source=text)
    return PreferencePair(prompt, chosen, rejected)


def alone_logp(model, collator, sample: Sample, load_images: bool) -> tuple[float, int]:
    """(sum of log softmax at the trained tokens, their count) of one conversation in a batch of its own."""
    batch = collator([encode_with_media(collator.encode, sample, load_images, num_frames=4)])
    labels = batch.pop("labels")
    with torch.no_grad():
        logits = model(**batch).logits.float()
    total, count = 0.0, 0
    for position in (labels[0] != IGNORE_INDEX).nonzero().flatten().tolist():
        total += torch.log_softmax(logits[0, position - 1], dim=-1)[labels[0, position]].item()
        count += 1
    return total, count


@pytest.mark.parametrize("family_id", sorted(FAMILIES))
def test_pair_logps_equal_each_conversation_alone(family_id, load_tiny, tmp_path):
    family = resolved_family(family_id)
    model, processor = load_tiny(tiny_id(family_id))
    model.eval()
    collator = family.collator(processor, family.reply_end, 1024)
    seven, three = digit_png(tmp_path, "seven.png", 7), digit_png(tmp_path, "three.png", 3, size=48)
    batches = [[pair("<image>\nWhich digit?", [seven]), pair("<image>\nAnd this one?", [three], chosen="Three.")]]
    if family.multi_image:
        batches[0].append(pair("<image><image>\nSame digit?", [seven, three], chosen="No.", rejected="Yes, both."))
    if family.video:  # a batch of its own: not every processor takes images and videos in one call
        clip = write_video(tmp_path / "clip.mp4")
        batches.append([pair("<video>\nWhat happens?", videos=[clip], chosen="A square moves.", rejected="Nothing.")])
    batchers = [PairCollator(collator)]
    if family.packing:  # one row per pair: what `vlmtune dpo` picks for these, but where layers attend in chunks
        row_per_pair = isinstance(pair_batcher(model, family, collator), SharedPromptCollator)
        assert row_per_pair == (family_id not in TWO_ROWS)  # (even where the tiny window is longer than a row)
        batchers.append(SharedPromptCollator(collator, multimodal_rope_index(model)))
    for pairs in batches:
        dataset = PairDataset(pairs, collator.encode, family.to_load_image, num_frames=4)
        items = [dataset[i] for i in range(len(pairs))]
        expected = {}
        for i, each in enumerate(pairs):
            for side, reply in (("chosen", each.chosen), ("rejected", each.rejected)):
                expected[i, side] = alone_logp(model, collator, each.with_reply(reply), family.to_load_image)
        for batcher in batchers:
            batch = batcher(items)
            with torch.no_grad():
                logps, _ = reply_logps(model, batch)
            for (i, side), (logp, count) in expected.items():
                assert getattr(logps, f"{side}_tokens")[i].item() == count > 0
                where = (pairs[i].source, side, type(batcher).__name__)
                assert getattr(logps, side)[i].item() == pytest.approx(logp, abs=1e-4), where
        with torch.no_grad():
            shared = media_encoded_once(model, {k: v for k, v in batch.items() if k not in LOSS_KEYS}) is not None
        kind = "video" if pairs[0].prompt.videos else "images"
        if isinstance(batcher, PairCollator):
            assert shared == (family_id not in PER_ROW and (family_id, kind) not in PER_ROW)
