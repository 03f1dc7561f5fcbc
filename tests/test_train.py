"""End to end on tiny models: what trains changes, what is frozen does not, and the output reloads."""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import digit_png, resolved_entry
from tests.test_masking import conversation, encode
from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments, parse_args
from vlmtune.core.modeling import checkpoint_path, load_model, part_of, set_trainable
from vlmtune.datasets import Sample
from vlmtune.supported_models import FAMILIES
from vlmtune.train import train


@pytest.fixture
def digits_data(tmp_path):
    records = []
    for i, digit in enumerate([0, 1, 2, 3, 4, 5, 6, 7]):
        name = digit_png(tmp_path, f"d{i}.png", digit)
        turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": str(digit)}]
        records.append({"image": name, "conversations": turns})
    records.append({"conversations": [{"from": "human", "value": "Say hi."}, {"from": "gpt", "value": "Hi."}]})
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records))
    return str(path)


def run(tmp_path, data_path, model_id, max_steps=3, batch_size=4, learning_rate=1e-2, output_dir=None, **model_kwargs):
    """A short CPU run of a registered model on `data_path`; -> (trainer, output folder, default tmp_path/out)."""
    output_dir = output_dir or tmp_path / "out"
    model_args = ModelArguments(model_id=model_id, **model_kwargs)
    data_args = DataArguments(data_path=str(data_path), model_max_length=256)
    training_args = TrainingArguments(
        output_dir=str(output_dir),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        logging_steps=1,
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    return train(model_args, data_args, training_args), output_dir


def snapshot(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def plain_name(name: str) -> str:
    return name.removeprefix("base_model.model.").replace(".base_layer", "")


def test_lora_trains_adapters_and_projector_only_and_reloads(tmp_path, digits_data):
    from peft import PeftModel

    entry = resolved_entry("tiny-qwen2-vl")
    base, _ = entry.family.load(checkpoint_path(entry))
    before = snapshot(base)
    trainer, out = run(tmp_path, digits_data, "tiny-qwen2-vl")
    prefixes = entry.family.modules

    changed = {"lora": 0, "projector": 0}
    for name, param in trainer.model.named_parameters():
        if "lora_" in name:
            changed["lora"] += int(not torch.equal(param, torch.zeros_like(param)) and "lora_B" in name)
            continue
        original = before.get(plain_name(name).replace(".modules_to_save.default", "").replace(".original_module", ""))
        if original is None:
            continue
        if part_of(plain_name(name), prefixes) == "vision_projector" and "modules_to_save" in name:
            changed["projector"] += int(not torch.equal(param, original))
        elif "modules_to_save" not in name:
            assert torch.equal(param, original), f"frozen {name} changed"
    assert changed["lora"] > 0 and changed["projector"] > 0

    for name in ("adapter_config.json", "adapter_model.safetensors", "vlmtune_args.yaml", "loss_curve.png"):
        assert (out / name).exists(), name
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(out)
    fresh, _ = entry.family.load(checkpoint_path(entry))
    reloaded = PeftModel.from_pretrained(fresh, out)
    sample = Sample(conversation("<image>\nWhich digit?", "7"), images=[digit_png(tmp_path, "x.png", 7)], source="x")
    collator = entry.family.collator(processor, entry.family.reply_end)
    batch = collator([encode(collator, sample)])
    trainer.model.eval()
    reloaded.eval()
    with torch.no_grad():
        assert torch.allclose(trainer.model(**batch).logits, reloaded(**batch).logits, atol=1e-5)


def test_full_finetune_reloads_with_plain_from_pretrained(tmp_path, digits_data):
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    trainer, out = run(tmp_path, digits_data, "tiny-llava-1.5", llm_mode="full")
    reloaded = LlavaForConditionalGeneration.from_pretrained(out)
    processor = AutoProcessor.from_pretrained(out)
    assert processor.chat_template == trainer.processing_class.chat_template
    for (name, a), (_, b) in zip(trainer.model.named_parameters(), reloaded.named_parameters(), strict=True):
        assert torch.equal(a.detach(), b), name
    assert (out / "model.safetensors").exists() and not list(out.glob("pytorch_model*.bin"))


@pytest.mark.parametrize("family_id", sorted(FAMILIES))
def test_a_few_steps_lower_the_loss_on_a_fixed_batch(family_id, tmp_path):
    entry = resolved_entry(f"tiny-{family_id}")
    model, processor = entry.family.load(checkpoint_path(entry))
    collator = entry.family.collator(processor, entry.family.reply_end)
    seven, three = digit_png(tmp_path, "7.png", 7), digit_png(tmp_path, "3.png", 3)
    samples = [
        Sample(conversation("<image>\nWhich digit?", "7"), images=[seven], source="a"),
        Sample(conversation("<image>\nWhich digit?", "3", "Sure?", "Yes."), images=[three], source="b"),
    ]
    if not entry.family.multi_turn:
        samples[1].turns = samples[1].turns[:2]
    batch = collator([encode(collator, s) for s in samples])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(5):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert torch.isfinite(torch.tensor(losses)).all()
    assert losses[-1] < losses[0] - 0.5, losses


def test_part_learning_rates_reach_the_optimizer(tmp_path, digits_data):
    trainer, _ = run(tmp_path, digits_data, "tiny-llava-1.5", projector_lr=0.05, vision_mode="full", vision_lr=1e-4)
    rates = sorted({group["initial_lr"] for group in trainer.optimizer.param_groups})
    assert rates == [1e-4, 1e-2, 0.05]  # vision encoder, LoRA (learning_rate), projector


def test_vision_lora_targets_vision_linears(load_tiny):
    entry = resolved_entry("tiny-qwen2-vl")
    model, _ = entry.family.load(checkpoint_path(entry))
    args = ModelArguments(model_id="tiny-qwen2-vl", llm_mode="frozen", vision_mode="lora", train_projector=False)
    peft_model = set_trainable(model, entry.family.modules, args, gradient_checkpointing=False)
    trainable = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n and ".visual." in n and ".merger." not in n for n in trainable)


def test_yaml_config_and_command_line_precedence(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model_id: tiny-qwen2-vl\ndata_path: d.json\noutput_dir: o\nlearning_rate: 0.1\nlora_r: 4\n")
    model_args, data_args, training_args = parse_args(["--config", str(config), "--learning_rate", "0.5"])
    assert training_args.learning_rate == 0.5 and model_args.lora_r == 4 and data_args.data_path == "d.json"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"use_qlora": True, "llm_mode": "full"}, "--use_qlora needs --llm_mode lora"),
        ({"llm_mode": "frozen", "train_projector": False}, "nothing to train"),
        ({"lora_r": 0}, "must be positive"),
        ({"projector_lr": -1.0}, "--projector_lr must be positive"),
    ],
)
def test_argument_errors_come_before_any_loading(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelArguments(model_id="tiny-qwen2-vl", **kwargs)


def test_unknown_model_fails_before_reading_anything(tmp_path):
    with pytest.raises(KeyError, match="unknown model id"):
        run(tmp_path, str(tmp_path / "missing.json"), "tiny-qwen2")


def test_cli_help_and_models():
    import subprocess
    import sys

    help_text = subprocess.run(
        [sys.executable, "-m", "vlmtune", "train", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--model_id" in help_text and "--llm_mode" in help_text and "--skip_bad_samples" in help_text
    listed = subprocess.run([sys.executable, "-m", "vlmtune", "models"], capture_output=True, text=True, check=True)
    assert "tiny-qwen2-vl" in listed.stdout


def test_qlora_loads_the_llm_in_4bit_and_trains_adapters(tmp_path, digits_data):
    pytest.importorskip("bitsandbytes")
    entry = resolved_entry("tiny-qwen2-vl")
    model, _ = load_model(entry, ModelArguments(model_id="tiny-qwen2-vl", use_qlora=True))
    linear_types = {
        type(m).__name__ for n, m in model.named_modules() if n.startswith("model.language_model.layers.0.mlp.")
    }
    assert "Linear4bit" in linear_types
    assert type(model.model.visual.merger.mlp[0]).__name__ == "Linear"  # projector stays unquantized
    trainer, out = run(tmp_path, digits_data, "tiny-qwen2-vl", use_qlora=True)
    assert (out / "adapter_model.safetensors").exists()


def test_command_line_training_with_yaml_config(tmp_path, digits_data):
    import subprocess
    import sys

    config = tmp_path / "run.yaml"
    config.write_text(f'model_id: tiny-qwen2-vl\ndata_path: {digits_data}\nsave_strategy: "no"\nmax_steps: 50\n')
    out = tmp_path / "cli_out"
    command = [sys.executable, "-m", "vlmtune", "train", f"--config={config}", "--output_dir", str(out)]
    command += ["--max_steps", "2", "--logging_steps", "1", "--use_cpu", "true", "--per_device_train_batch_size", "2"]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    resolved = (out / "vlmtune_args.yaml").read_text()
    assert "max_steps: 2" in resolved and "model_id: tiny-qwen2-vl" in resolved
    assert (out / "adapter_model.safetensors").exists() and (out / "loss_curve.png").exists()
