"""After training: `vlmtune merge` gives the adapter model's logits, `vlmtune chat` answers from any output."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import digit_png, write_video
from tests.test_train import run
from vlmtune.apps.cli import main as cli_main
from vlmtune.core.outputs import load_for_inference
from vlmtune.datasets import Sample, Turn, open_image
from vlmtune.serving import chat
from vlmtune.serving.merge import merge


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    records = []
    for digit in range(6):
        name = digit_png(folder, f"d{digit}.png", digit)
        turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": str(digit)}]
        records.append({"image": name, "conversations": turns})
    path = folder / "train.json"
    path.write_text(json.dumps(records))
    return path


def train_tiny(folder, data_path, **model_kwargs):
    run(folder, data_path, "tiny-qwen2-vl", 4, 3, 2e-2, output_dir=folder, **model_kwargs)
    return folder


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory, digits):
    return train_tiny(tmp_path_factory.mktemp("lora_run"), digits)


def logits(model, processor, image_path) -> torch.Tensor:
    text = "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Which digit?<|im_end|>\n"
    inputs = processor(text=[text], images=[open_image(image_path)], return_tensors="pt")
    model.eval()
    with torch.no_grad():
        return model(**inputs).logits


def test_merged_checkpoint_gives_the_adapter_models_logits(lora_run, digits, tmp_path):
    from transformers import AutoProcessor, Qwen2VLForConditionalGeneration

    adapter_model, processor, _ = load_for_inference(str(lora_run))
    lora_b = [p for n, p in adapter_model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b), "the adapter did not train; the test would be empty"
    image = digits.parent / "d3.png"
    expected = logits(adapter_model, processor, image)

    merged_dir = merge(lora_run, tmp_path / "merged")
    for name in ("config.json", "model.safetensors", "generation_config.json", "vlmtune_args.yaml"):
        assert (merged_dir / name).exists(), name
    assert AutoProcessor.from_pretrained(merged_dir).chat_template == processor.chat_template
    merged = Qwen2VLForConditionalGeneration.from_pretrained(merged_dir)  # plain HF loading, no PEFT
    assert merged.dtype == torch.float32  # the tiny base is stored in float32
    assert not any("lora" in name for name, _ in merged.named_parameters())
    torch.testing.assert_close(logits(merged, processor, image), expected, atol=1e-4, rtol=1e-4)
    # ... and it is not the untrained base: the merge really changed the weights.
    base, _, _ = load_for_inference("tiny-qwen2-vl")
    assert not torch.allclose(logits(base, processor, image), expected, atol=1e-3)


def test_merge_keeps_the_base_dtype_unless_asked(lora_run, tmp_path):
    from transformers import AutoConfig

    merge(lora_run, tmp_path / "bf16", dtype="bfloat16")
    assert AutoConfig.from_pretrained(tmp_path / "bf16").dtype == torch.bfloat16


def test_merge_refuses_a_folder_without_an_adapter(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "config.json").write_text("{}")
    with pytest.raises(ValueError, match="holds no LoRA adapter.*full model already"):
        merge(tmp_path / "full", tmp_path / "merged")
    assert cli_main(["merge", str(tmp_path), str(tmp_path / "merged")]) == 2
    assert "holds no LoRA adapter (no adapter_config.json); it holds no model at all" in capsys.readouterr().err
    assert cli_main(["merge", str(tmp_path / "missing"), str(tmp_path / "merged")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_chat_answers_one_image_from_an_adapter_output(lora_run, digits, capsys):
    image = str(digits.parent / "d2.png")
    assert chat.main([str(lora_run), "--image", image, "--prompt", "Which digit?", "--max_new_tokens", "3"]) == 0
    printed = capsys.readouterr().out.strip()
    model, processor, entry = load_for_inference(str(lora_run))
    collator = entry.family.collator(processor, entry.family.reply_end)
    sample = Sample([Turn("user", "<image>\nWhich digit?"), Turn("assistant", "")], images=[image])
    assert printed == chat.generate_replies(model, collator, [sample], max_new_tokens=3)[0]


def test_chat_batch_mode_writes_predictions(lora_run, digits, tmp_path):
    records = json.loads(digits.read_text())[:4]
    records[1]["conversations"] = records[1]["conversations"][:1]  # no reference answer: still predicted
    data = tmp_path / "eval.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in records))
    out = tmp_path / "predictions.jsonl"
    argv = [str(lora_run), "--data_path", str(data), "--output", str(out), "--max_new_tokens", "3"]
    assert chat.main([*argv, "--batch_size", "3"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["source"] for row in rows] == [f"eval.jsonl line {i}" for i in range(1, 5)]
    assert [row["reference"] for row in rows] == ["0", None, "2", "3"]
    assert all(isinstance(row["prediction"], str) for row in rows)
    assert rows[0]["prompt"] == "<image>\nWhich digit?"


def test_chat_takes_a_video_and_a_full_model_folder(tmp_path, digits, capsys):
    full = train_tiny(tmp_path / "full", digits, llm_mode="full")
    assert not (full / "adapter_config.json").exists()
    clip = write_video(tmp_path / "clip.mp4")
    assert chat.main([str(full), "--video", clip, "--prompt", "What is shown?", "--num_frames", "4"]) == 0
    assert capsys.readouterr().out.endswith("\n")


def test_chat_names_the_problem_with_an_unknown_source(capsys):
    assert cli_main(["chat", "no-such-model", "--prompt", "hi"]) == 2
    assert "neither a folder nor a registered model id" in capsys.readouterr().err


def test_chat_checks_the_question_against_the_family_before_loading(tmp_path, capsys):
    clip = write_video(tmp_path / "clip.mp4")
    assert cli_main(["chat", "tiny-llava-1.5", "--video", clip, "--prompt", "What happens?"]) == 1  # data
    assert "does not take video input" in capsys.readouterr().err
