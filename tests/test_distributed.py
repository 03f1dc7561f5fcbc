"""Several processes and sharding engines: the vision tower in text-only steps, refused combinations, configs,
and a real two-process data-parallel run on CPU (torchrun, gloo)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from tests.conftest import digit_png, resolved_family
from tests.ddp_worker import checksum
from tests.test_masking import conversation
from vlmtune.arguments import TrainingArguments
from vlmtune.core.distributed import (
    DummyVision,
    check_engine,
    deepspeed_zero_stage,
    image_feature_module,
    vision_tower_every_step,
)
from vlmtune.core.modeling import checkpoint_path, part_of
from vlmtune.core.trainer import VLMTrainer
from vlmtune.datasets import Sample, open_image
from vlmtune.errors import ArgumentError
from vlmtune.supported_models import FAMILIES, get_model

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


def engine_args(deepspeed=None, fsdp=None, every_step=None):
    return SimpleNamespace(deepspeed=deepspeed, fsdp=fsdp, vision_tower_every_step=every_step)


def load_fresh(family_id: str):
    """A fresh copy of the tiny model (its gradients are changed here) with the vision parts trainable."""
    family = resolved_family(family_id)
    model, processor = family.load(checkpoint_path(get_model(f"tiny-{family_id}")))
    vision = ("vision_encoder", "vision_projector")
    for name, parameter in model.named_parameters():
        parameter.requires_grad = part_of(name, family.modules) in vision
    return model, processor, family


def vision_grads(model) -> dict[str, torch.Tensor]:
    grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.requires_grad and p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


# Families whose dummy pass reaches more weights than one real image does (harmless: their gradients are zero, and
# DDP needs every used weight reached, not exactly those). Granite Vision 4: the dummy's layerwise Q-Former
# projections all run, while the tiny model's real forward leaves some of their layers without a gradient.
DUMMY_REACHES_MORE = {"granite4-vision"}


@pytest.mark.parametrize("family_id", sorted(FAMILIES))
def test_dummy_image_reaches_every_vision_weight_that_an_image_trains(family_id, images):
    model, processor, family = load_fresh(family_id)
    if image_feature_module(model) is None:  # Mllama reads images through cross-attention, no get_image_features
        with pytest.raises(ArgumentError, match="no public get_image_features.* give every batch an image"):
            DummyVision(model, processor)
        return
    collator = family.collator(processor, family.reply_end)
    image_sample = Sample(conversation("<image>\nWhich digit?", "7"), images=[images[0]])
    model(**collator([collator.encode(image_sample, [open_image(images[0])], [])])).loss.backward()
    trained_by_an_image = set(vision_grads(model))
    assert trained_by_an_image

    text_batch = collator([collator.encode(Sample(conversation("Say hi.", "Hi.")), [], [])])
    plain_loss = model(**text_batch).loss
    if plain_loss.requires_grad:  # Gemma 3n embeds text through its vision embedder too
        plain_loss.backward()
        assert set(vision_grads(model)) < trained_by_an_image  # but the vision tower itself is left out
    dummy = DummyVision(model, processor)
    dummy.arm(text_batch)
    loss = model(**text_batch).loss
    assert not dummy.armed  # it acted once, in this forward
    assert torch.equal(loss, plain_loss)  # the loss is unchanged ...
    loss.backward()
    grads = vision_grads(model)
    if family_id in DUMMY_REACHES_MORE:  # ... and every vision weight an image trains has a gradient ...
        assert set(grads) >= trained_by_an_image
    else:
        assert set(grads) == trained_by_an_image
    assert all(not g.any() for g in grads.values())  # ... of zero
    dummy.handle.remove()


def test_trainer_runs_the_dummy_for_text_only_batches_only(tmp_path, images):
    model, processor, family = load_fresh("qwen2-vl")
    collator = family.collator(processor, family.reply_end)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    kwargs = {"model": model, "args": args, "data_collator": collator, "processing_class": processor}
    assert VLMTrainer(**kwargs, prefixes=family.modules, part_lrs={}).dummy_vision is None
    trainer = VLMTrainer(**kwargs, prefixes=family.modules, part_lrs={}, vision_every_step=True)
    calls = []
    handle = model.model.visual.register_forward_hook(lambda *_: calls.append(1))

    text_batch = collator([collator.encode(Sample(conversation("Say hi.", "Hi.")), [], [])])
    loss = trainer.compute_loss(model, dict(text_batch))
    assert calls == [1] and loss.requires_grad and not trainer.dummy_vision.armed
    loss.backward()
    assert vision_grads(model)
    image_sample = Sample(conversation("<image>\nHi?", "7"), images=[images[0]])
    trainer.compute_loss(model, dict(collator([collator.encode(image_sample, [open_image(images[0])], [])])))
    assert calls == [1, 1]  # the real image only: no dummy next to it
    model.generate(**{k: v for k, v in text_batch.items() if k != "labels"}, max_new_tokens=2)
    assert calls == [1, 1]  # generation is left alone
    handle.remove()


def test_vision_tower_every_step_is_on_exactly_under_sharding_unless_set():
    assert vision_tower_every_step(engine_args(fsdp=True))
    assert vision_tower_every_step(engine_args(deepspeed=str(CONFIGS / "deepspeed_zero3.json")))
    assert not vision_tower_every_step(engine_args(deepspeed=str(CONFIGS / "deepspeed_zero2.json")))
    assert not vision_tower_every_step(engine_args())
    assert vision_tower_every_step(engine_args(every_step=True))
    assert not vision_tower_every_step(engine_args(fsdp=True, every_step=False))


def test_shipped_engine_configs():
    assert deepspeed_zero_stage(engine_args(deepspeed=str(CONFIGS / "deepspeed_zero2.json"))) == 2
    assert deepspeed_zero_stage(engine_args(deepspeed=str(CONFIGS / "deepspeed_zero3.json"))) == 3
    zero3 = json.loads((CONFIGS / "deepspeed_zero3.json").read_text())
    assert zero3["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"]  # saves a whole model
    fsdp = json.loads((CONFIGS / "fsdp2.json").read_text())
    assert fsdp["version"] == 2 and fsdp["state_dict_type"] == "FULL_STATE_DICT"


@pytest.mark.parametrize(
    ("engine", "refused"),
    [
        ({"deepspeed": str(CONFIGS / "deepspeed_zero3.json")}, "DeepSpeed ZeRO-3"),
        ({"deepspeed": {"zero_optimization": {"stage": 3}}}, "DeepSpeed ZeRO-3"),
        ({"fsdp": True}, "FSDP"),
        ({"deepspeed": str(CONFIGS / "deepspeed_zero2.json")}, None),
        ({}, None),
    ],
)
def test_qlora_with_a_sharding_engine_is_refused_with_the_reason(engine, refused):
    qlora, lora = SimpleNamespace(use_qlora=True), SimpleNamespace(use_qlora=False)
    check_engine(lora, engine_args(**engine))  # plain LoRA works with every engine
    if refused is None:
        check_engine(qlora, engine_args(**engine))
        return
    with pytest.raises(ValueError, match=f"--use_qlora cannot be combined with {refused}: .* shards every weight"):
        check_engine(qlora, engine_args(**engine))


def test_train_refuses_qlora_with_fsdp_before_loading_anything(tmp_path):
    from vlmtune.arguments import DataArguments, ModelArguments
    from vlmtune.train import train

    fsdp2 = str(CONFIGS / "fsdp2.json")
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, fsdp=True, fsdp_config=fsdp2)
    model_args = ModelArguments(model_id="tiny-qwen2-vl", use_qlora=True)
    data_args = DataArguments(data_path=str(tmp_path / "missing.json"))  # never read: the refusal comes first
    with pytest.raises(ValueError, match="cannot be combined with FSDP"):
        train(model_args, data_args, args)


def test_two_processes_on_cpu_finish_and_save_what_rank_0_holds(tmp_path):
    records = [
        {"image": digit_png(tmp_path, f"d{d}.png", d), "conversations": conversation_record("<image>\nDigit?", str(d))}
        for d in range(4)
    ]
    records += [{"conversations": conversation_record(q, a)} for q, a in (("Say hi.", "Hi."), ("Say no.", "No."))]
    data = tmp_path / "train.json"
    data.write_text(json.dumps(records))
    out = tmp_path / "out"
    command = ["torchrun", "--standalone", "--nproc_per_node", "2", str(ROOT / "tests" / "ddp_worker.py")]
    command += ["--model_id", "tiny-qwen2-vl", "--llm_mode", "full", "--data_path", str(data)]
    command += ["--output_dir", str(out), "--per_device_train_batch_size", "1", "--num_train_epochs", "1"]
    command += ["--learning_rate", "1e-3", "--use_cpu", "true", "--ddp_backend", "gloo", "--logging_steps", "1"]
    command += ["--seed", "0", "--disable_tqdm", "true", "--vision_tower_every_step", "true"]
    # DDP without its unused-parameter search, like ZeRO-3 and FSDP, needs every trained weight (here the
    # projector) in every step of every rank: without the dummy image a text-only step hangs (measured).
    command += ["--ddp_find_unused_parameters", "false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    torchrun = Path(sys.executable).parent / "torchrun"
    command[0] = str(torchrun) if torchrun.exists() else command[0]
    # Its own process group, so that a hang (what this test guards against) cannot leave workers behind.
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        _, stderr = process.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("the two-process run hung for 240 s")
    assert process.returncode == 0, stderr[-3000:]

    reports = [json.loads((out / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert all(r["world_size"] == 2 and r["steps"] == 3 for r in reports)  # 6 samples, 2 ranks, batch size 1
    assert reports[0]["checksum"] == reports[1]["checksum"]  # DDP kept the ranks in step
    saved, _ = FAMILIES["qwen2-vl"].load(str(out))
    assert checksum(saved.state_dict()) == reports[0]["checksum"]  # the folder holds what rank 0 trained


def conversation_record(question: str, answer: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": question}, {"from": "gpt", "value": answer}]
