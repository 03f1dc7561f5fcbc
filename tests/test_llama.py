"""What is special about the Llama families: Llama 3.2 Vision's cross-attention inputs and dated template, and
Llama 4's mixture of experts (LoRA on the experts, router frozen, no auxiliary loss) and image layout tokens."""

from __future__ import annotations

import json
import logging
from datetime import datetime

import pytest
import torch
from PIL import Image

from tests.conftest import digit_png
from tests.test_masking import conversation, encode, expected_ids
from vlmtune.arguments import DataArguments, ModelArguments
from vlmtune.collators.base import IGNORE_INDEX
from vlmtune.core.modeling import checkpoint_path, expert_parameters, set_trainable
from vlmtune.datasets import Sample, open_image
from vlmtune.errors import DataError
from vlmtune.pipeline import read_data
from vlmtune.supported_models import FAMILIES, get_model


def collator_of(family_id: str, processor, **kwargs):
    family = FAMILIES[family_id]
    return family.collator(processor, family.reply_end, **kwargs)


# --- Llama 3.2 Vision ---------------------------------------------------------------------------------------


def test_mllama_batch_of_zero_one_and_two_images_is_padded_and_trains(tmp_path, load_tiny):
    _, processor = load_tiny("tiny-llama-3.2-vision")
    model, _ = FAMILIES["llama-3.2-vision"].load(checkpoint_path(get_model("tiny-llama-3.2-vision")))
    collator = collator_of("llama-3.2-vision", processor)
    seven = digit_png(tmp_path, "7.png", 7)
    wide = str(tmp_path / "wide.png")  # 64x32: two tiles side by side
    Image.new("RGB", (64, 32), "white").save(wide)
    samples = [
        Sample(conversation("What comes after six?", "Seven."), source="none"),
        Sample(conversation("<image>\nWhich digit?", "7"), images=[seven], source="one"),
        Sample(conversation("<image><image>\nWhich digits?", "7 and nothing"), images=[seven, wide], source="two"),
    ]
    features = [encode(collator, s) for s in samples]
    batch = collator(features)

    lengths = [len(f["input_ids"]) for f in features]
    longest = max(lengths)
    assert batch["input_ids"].shape == (3, longest)
    assert batch["pixel_values"].shape == (3, 2, 2, 3, 32, 32)
    assert batch["aspect_ratio_ids"].shape == (3, 2) and batch["aspect_ratio_mask"].shape == (3, 2, 2)
    assert batch["cross_attention_mask"].shape == (3, longest, 2, 2)
    # Padding images: zero pixels, aspect ratio id 0, first tile marked (as the processor pads), never attended.
    assert not batch["pixel_values"][0].any() and not batch["pixel_values"][1, 1].any()
    assert batch["aspect_ratio_ids"][0].tolist() == [0, 0] and batch["aspect_ratio_ids"][1, 1] == 0
    assert batch["aspect_ratio_mask"][0].tolist() == [[1, 0], [1, 0]]
    assert not batch["cross_attention_mask"][0].any() and not batch["cross_attention_mask"][1, :, 1].any()
    # Real images keep what the processor made.
    assert batch["aspect_ratio_mask"][2, 1].tolist() == [1, 1], "the wide image should fill two tiles"
    for i, f in enumerate(features[1:], start=1):
        images = f["pixel_values"].shape[1]
        assert torch.equal(batch["pixel_values"][i, :images], f["pixel_values"][0])
        assert torch.equal(batch["cross_attention_mask"][i, : lengths[i], :images], f["cross_attention_mask"][0])
        padding = batch["cross_attention_mask"][i, lengths[i] :, :images]
        assert (padding == f["cross_attention_mask"][0, -1]).all(), "padding tokens repeat the last token's row"

    model.train()
    output = model(**batch)
    output.loss.backward()
    assert torch.isfinite(output.loss)
    assert model.model.vision_model.patch_embedding.weight.grad.abs().sum() > 0
    cross_attention = model.model.language_model.layers[1].cross_attn.q_proj.weight.grad
    assert cross_attention is not None and cross_attention.abs().sum() > 0

    # The image samples are padded exactly as the processor pads them in one call (which cannot take a text-only
    # sample next to them: it fails or returns aspect ratios for fewer samples than texts).
    texts = [collator.render(collator.to_messages(s)) for s in samples[1:]]
    opened = [[open_image(path) for path in s.images] for s in samples[1:]]
    reference = processor(text=texts, images=opened, padding=True, return_tensors="pt", add_special_tokens=False)
    pair = collator(features[1:])
    for key in ("input_ids", "pixel_values", "aspect_ratio_ids", "aspect_ratio_mask", "cross_attention_mask"):
        assert torch.equal(pair[key], reference[key]), key


def test_mllama_data_check_refuses_a_system_prompt_next_to_images_before_training(tmp_path):
    image = digit_png(tmp_path, "7.png", 7)
    turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": "7"}]
    text_turns = [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]
    records = [
        {"conversations": text_turns, "system_prompt": "Be brief."},  # fine: no image
        {"image": image, "conversations": turns, "system_prompt": "Be brief."},
    ]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records))
    family = FAMILIES["llama-3.2-vision"]
    with pytest.raises(DataError, match="train.json sample 1: has a system_prompt and images"):
        read_data(str(path), family, DataArguments(data_path=str(path)))
    assert len(read_data(str(path), FAMILIES["llama4"], DataArguments(data_path=str(path)))) == 2


def test_mllama_image_after_a_reply_is_masked_exactly(load_tiny, images):
    """The text before the first image renders with a system block that the whole conversation lacks."""
    _, processor = load_tiny("tiny-llama-3.2-vision")
    collator = collator_of("llama-3.2-vision", processor)
    sample = Sample(conversation("Hi?", "Hello.", "Look: <image>", "A seven."), images=[images[0]], source="late")
    features = encode(collator, sample)
    supervised = features["input_ids"][features["labels"] != IGNORE_INDEX].tolist()
    assert supervised == expected_ids(processor.tokenizer, "llama-3.2-vision", sample)
    assert "Cutting Knowledge" not in processor.tokenizer.decode(features["input_ids"])


def test_mllama_truncation_cuts_the_cross_attention_mask_with_the_tokens(load_tiny, images):
    model, processor = load_tiny("tiny-llama-3.2-vision")
    reply = "Seven, and it is a seven because the image shows a seven."
    sample = Sample(conversation("<image>\nWhich digit?", reply), images=[images[0]], source="long")
    full = encode(collator_of("llama-3.2-vision", processor), sample)
    collator = collator_of("llama-3.2-vision", processor, model_max_length=len(full["input_ids"]) - 5)
    cut = encode(collator, sample)
    assert cut["cross_attention_mask"].shape[1] == len(cut["input_ids"]) == len(full["input_ids"]) - 5
    with torch.no_grad():
        assert torch.isfinite(model(**collator([cut])).loss)


def test_mllama_text_only_system_prompt_renders_as_released(load_tiny):
    _, processor = load_tiny("tiny-llama-3.2-vision")
    collator = collator_of("llama-3.2-vision", processor)
    sample = Sample(conversation("Hi?", "Hello."), system_prompt="Be brief.", source="s")
    days = {datetime.now().strftime("%d %b %Y")}
    text = collator.render(collator.to_messages(sample))
    days.add(datetime.now().strftime("%d %b %Y"))  # the day may change while rendering
    expected = {
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nCutting Knowledge Date: December 2023\n"
        f"Today Date: {day}\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
        for day in days
    }
    assert text in expected  # the system text itself, not the repr of a list of parts


# --- Llama 4 ------------------------------------------------------------------------------------------------


def llama4_batch(tmp_path, processor):
    collator = collator_of("llama4", processor)
    seven, three = digit_png(tmp_path, "7.png", 7), digit_png(tmp_path, "3.png", 3, size=48)
    samples = [
        Sample(conversation("<image>\nWhich digit?", "7"), images=[seven], source="a"),
        Sample(conversation("<image>\nWhich digit?", "3", "Sure?", "Yes."), images=[three], source="b"),
    ]
    return collator([encode(collator, s) for s in samples])


def test_llama4_lora_adapts_experts_and_leaves_the_router_alone(tmp_path, load_tiny, caplog):
    entry = get_model("tiny-llama4")
    model, processor = entry.family.load(checkpoint_path(entry))
    prefixes = entry.family.modules
    experts = expert_parameters(model, prefixes, {"llm"})
    assert experts == [
        "language_model.model.layers.1.feed_forward.experts.gate_up_proj",
        "language_model.model.layers.1.feed_forward.experts.down_proj",
    ]
    router_before = model.language_model.model.layers[1].feed_forward.router.weight.detach().clone()
    args = ModelArguments(model_id="tiny-llama4", lora_dropout=0.0, train_projector=False)
    peft_model = set_trainable(model, prefixes, args, gradient_checkpointing=False)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert any(".experts." in n and "lora_" in n for n in trainable)
    assert any(".shared_expert." in n and "lora_" in n for n in trainable)
    assert not any("router" in n for n in trainable) and all("lora_" in n for n in trainable)

    batch = llama4_batch(tmp_path, processor)
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(2):
        peft_model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    expert_lora_b = [p for n, p in peft_model.named_parameters() if ".experts." in n and "lora_B" in n]
    assert all(p.abs().sum() > 0 for p in expert_lora_b), "the experts' adapters did not train"
    assert torch.equal(model.language_model.model.layers[1].feed_forward.router.weight, router_before)

    # The expert adapters are saved and come back with PEFT's own loading.
    from peft import PeftModel

    peft_model.save_pretrained(tmp_path / "adapter")
    reloaded = PeftModel.from_pretrained(entry.family.load(checkpoint_path(entry))[0], tmp_path / "adapter")
    peft_model.eval()
    reloaded.eval()
    with torch.no_grad():
        assert torch.allclose(peft_model(**batch).logits, reloaded(**batch).logits, atol=1e-5)

    # With dropout, PEFT cannot wrap the expert weights: they are left out, with a warning that says why.
    fresh, _ = entry.family.load(checkpoint_path(entry))
    with caplog.at_level(logging.WARNING, logger="vlmtune.core.modeling"):
        peft_fresh = set_trainable(
            fresh, prefixes, ModelArguments(model_id="tiny-llama4"), gradient_checkpointing=False
        )
    assert "--lora_dropout 0" in caplog.text
    assert not any(".experts." in n for n, p in peft_fresh.named_parameters() if p.requires_grad)


def test_llama4_loss_is_the_token_loss_only(tmp_path, load_tiny):
    """transformers 5.23 adds no load-balancing loss for Llama 4; if a later version does, this says so."""
    model, processor = load_tiny("tiny-llama4")
    batch = llama4_batch(tmp_path, processor)
    with torch.no_grad():
        output = model(**batch, output_router_logits=True)
    assert getattr(output, "aux_loss", None) is None and output.router_logits
    logits, labels = output.logits[:, :-1], batch["labels"][:, 1:]
    token_loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=IGNORE_INDEX)
    assert torch.allclose(output.loss, token_loss, atol=1e-5)


def test_llama4_truncation_guard_knows_the_whole_image_layout(load_tiny):
    _, processor = load_tiny("tiny-llama4")
    collator = collator_of("llama4", processor)
    layout = ["<|image_start|>", "<|image|>", "<|patch|>", "<|tile_x_separator|>", "<|tile_y_separator|>"]
    layout.append("<|image_end|>")
    assert set(processor.tokenizer.convert_tokens_to_ids(layout)) <= collator.media_token_ids


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_llama4_bfloat16_pixels_reach_a_model_of_any_dtype(tmp_path, dtype):
    entry = get_model("tiny-llama4")
    model, processor = entry.family.load(checkpoint_path(entry), dtype=dtype)
    batch = llama4_batch(tmp_path, processor)
    assert batch["pixel_values"].dtype == torch.bfloat16  # as the released image processor makes them
    with torch.no_grad():
        assert torch.isfinite(model(**batch).loss)
