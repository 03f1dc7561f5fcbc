"""Length grouping: estimated lengths match the encoded ones without decoding images, are cached, reach the sampler."""

from __future__ import annotations

import json
import os

import pytest
from PIL import Image, ImageFile

from tests.conftest import digit_png, resolved_family
from tests.test_masking import conversation, encode
from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments
from vlmtune.core.fast_paths import apply_max_pixels
from vlmtune.core.packing import PackingCollator
from vlmtune.data.lengths import cached_lengths, estimate_lengths, length_cache_file
from vlmtune.datasets import Sample
from vlmtune.supported_models import FAMILIES
from vlmtune.train import train

# Documented approximations (vlmtune/data/lengths.py): text around each image's tokens (Gemma 3 / 3n / 4 brackets,
# LFM2-VL and Llama 3.2 Vision markers; the space Idefics2's processor writes after an image that text follows) and
# LLaVA-OneVision's base-tile-only multi-image samples are not in the processors' per-size token counts.
APPROXIMATE = {"gemma3", "gemma3n", "gemma4", "idefics2", "lfm2-vl", "llama-3.2-vision", "llava-onevision"}
APPROXIMATE |= {"muse-glimmer"}  # issue 19, batch C: <|image_start|> / <|image_end|> around each image's tokens
APPROXIMATE |= {"minimax-m3"}  # issue 19, batch D: ]<]start of image[>[ / ]<]end of image[>[ around them
APPROXIMATE |= {"muse-spark", "gemma4-unified"}  # issue 19, batch E: as muse-glimmer and gemma4


def mixed_samples(folder, family) -> list[Sample]:
    small, large = digit_png(folder, "a.png", 7, 32), digit_png(folder, "b.png", 3, 80)
    more_turns = ("Sure?", "Yes, quite sure.") if family.multi_turn else ()
    wide = os.path.join(folder, "wide.png")
    Image.open(large).resize((300, 120)).save(wide)
    found = [
        Sample(conversation("<image>\nWhich digit?", "7"), images=[small], source="one image"),
        Sample(conversation("Say hi.", "Hello there, friend."), source="text only"),
        Sample(conversation("<image>\nWhich?", "3", *more_turns), images=[wide], source="wide"),
    ]
    if family.multi_image:
        found.append(Sample(conversation("<image>\n<image>\nBoth?", "7 and 3"), images=[large, small], source="two"))
    return found


@pytest.mark.parametrize("family_id", sorted(set(FAMILIES) - APPROXIMATE))
def test_estimated_lengths_equal_encoded_lengths(family_id, load_tiny, tmp_path, monkeypatch):
    _, processor = load_tiny(f"tiny-{family_id}")
    family = resolved_family(family_id)
    collator = family.collator(processor, family.reply_end)
    samples = mixed_samples(tmp_path, family)
    encoded = [len(encode(collator, sample)["input_ids"]) for sample in samples]

    def no_decoding(self):
        raise AssertionError("image pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    assert estimate_lengths(samples, collator) == encoded


def test_estimates_follow_max_pixels_and_model_max_length(load_tiny, tmp_path):
    _, processor = load_tiny("tiny-qwen2-vl")
    family = resolved_family("qwen2-vl")
    samples = mixed_samples(tmp_path, family)
    collator = family.collator(processor, family.reply_end, model_max_length=40)
    assert max(estimate_lengths(samples, collator)) == 40
    processor = type(processor).from_pretrained(processor.tokenizer.name_or_path)  # a copy to change
    before = estimate_lengths(samples, family.collator(processor, family.reply_end))
    apply_max_pixels(processor, 56 * 56, "qwen2-vl")
    collator = family.collator(processor, family.reply_end)
    after = estimate_lengths(samples, collator)
    assert after == [len(encode(collator, sample)["input_ids"]) for sample in samples]
    assert after[2] < before[2]  # the wide image is capped at 4 tokens
    processor.save_pretrained(tmp_path / "saved")  # the cap travels with the output folder's processor
    assert type(processor).from_pretrained(tmp_path / "saved").image_processor.size.longest_edge == 56 * 56


def test_max_pixels_is_refused_for_fixed_size_processors(load_tiny):
    _, processor = load_tiny("tiny-llava-1.5")
    with pytest.raises(ValueError, match="--max_pixels applies to the Qwen-VL families"):
        apply_max_pixels(processor, 10_000, "llava-1.5")


def test_lengths_are_cached_by_data_file_and_settings(load_tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("VLMTUNE_CACHE", str(tmp_path / "cache"))
    _, processor = load_tiny("tiny-llava-1.5")
    family = resolved_family("llava-1.5")
    collator = family.collator(processor, family.reply_end)
    samples = mixed_samples(tmp_path, family)
    data = tmp_path / "train.json"
    data.write_text("[]")
    cache = length_cache_file(str(data), {"model": "tiny-llava-1.5"})
    assert cached_lengths(samples, collator, cache) == estimate_lengths(samples, collator)
    cache.write_text(json.dumps([1, 2, 3, 4]))  # a marker: the next call must read the file, not recompute
    assert cached_lengths(samples, collator, cache) == [1, 2, 3, 4]
    assert length_cache_file(str(data), {"model": "tiny-qwen2-vl"}) != cache
    os.utime(data, ns=(0, 0))
    assert length_cache_file(str(data), {"model": "tiny-llava-1.5"}) != cache


def test_group_by_length_hands_estimates_to_the_sampler_without_encoding(tmp_path, monkeypatch):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from vlmtune.datasets import LazySupervisedDataset

    records = []
    for i in range(8):
        image = digit_png(tmp_path, f"d{i}.png", i, size=32 + 16 * i)
        reply = " ".join(["seven"] * (1 + 3 * i))
        records.append(
            {
                "image": image,
                "conversations": [{"from": "human", "value": "<image>\nWhat?"}, {"from": "gpt", "value": reply}],
            }
        )
    data = tmp_path / "train.json"
    data.write_text(json.dumps(records))
    encoded = []
    original = LazySupervisedDataset.encode_sample
    monkeypatch.setattr(
        LazySupervisedDataset, "encode_sample", lambda self, i: encoded.append((self, i)) or original(self, i)
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=2,
        group_by_length=True,
        use_cpu=True,
        disable_tqdm=True,
        report_to="none",
        eval_metric="exact_match",
        eval_max_new_tokens=4,
    )
    assert args.train_sampling_strategy == "group_by_length"
    trainer = train(
        ModelArguments(model_id="tiny-qwen2-vl"),
        # Evaluation by generation goes through the family collator that --packing wraps.
        DataArguments(data_path=str(data), eval_data_path=str(data), model_max_length=256, packing=True),
        args,
    )
    sampler = trainer._get_train_sampler()
    assert isinstance(sampler, LengthGroupedSampler)
    assert sampler.lengths == trainer.train_dataset.lengths
    # The eval dataset is grouped from estimates too (the Trainer's own eval sampler would read every item).
    assert trainer._get_eval_sampler(trainer.eval_dataset).lengths == trainer.eval_dataset.lengths
    # Lengths came from the estimate: only the samples of the 2 steps (and a prefetched batch) were encoded.
    trained = [i for dataset, i in encoded if dataset is trainer.train_dataset]
    assert len(set(sampler.lengths)) == 8 and len(trained) < 8
    assert "eval_exact_match" in trainer.state.log_history[-1] or any(
        "eval_exact_match" in entry for entry in trainer.state.log_history
    )
    assert isinstance(trainer.data_collator, PackingCollator)
