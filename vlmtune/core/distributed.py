"""Training on several GPUs with the engines the HF Trainer already drives: DDP, DeepSpeed ZeRO-2/3, FSDP2.

    torchrun --nproc_per_node 4 -m vlmtune.train ... --deepspeed configs/deepspeed_zero3.json
    torchrun --nproc_per_node 4 -m vlmtune.train ... --fsdp --fsdp_config configs/fsdp2.json
    DISTRIBUTED=zero2 NUM_GPUS=4 bash scripts/finetune.sh        # the same through the script

Two things vlmtune adds on top:
- combinations that cannot work are refused before anything loads (`check_engine`);
- a batch without images must still run the vision tower: ZeRO-3 and FSDP gather each module's sharded
  weights with collective calls, in the order the modules run, so a rank that skips the vision tower while
  another runs it waits forever. `DummyVision` then runs the model's public `get_image_features` on a tiny
  dummy image right after the token embeddings (where an image batch runs the vision tower, so the ranks
  gather the same modules in the same order) and adds 0 x the sum of the features to the embeddings: the
  loss is unchanged, and the vision tower and projector take part in forward and backward with zero
  gradients.
"""

from __future__ import annotations

import inspect
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from vlmtune.collators.base import PIXEL_KEYS
from vlmtune.errors import ArgumentError

DUMMY_IMAGE_SIZE = 32


def deepspeed_zero_stage(training_args: Any) -> int | None:
    """The ZeRO stage of `--deepspeed` (a JSON path or a dict), else of `accelerate launch --config_file` with a
    DeepSpeed config (configs/accelerate/*zero3.yaml: the launcher passes it in the environment, and the
    Trainer's accelerator reads it from there, not from --deepspeed), or None without DeepSpeed."""
    config = training_args.deepspeed
    if not config and os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() in ("true", "1"):
        if os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE"):
            return int(os.environ["ACCELERATE_DEEPSPEED_ZERO_STAGE"])
        config = os.environ.get("ACCELERATE_DEEPSPEED_CONFIG_FILE")
    if not config:
        return None
    if not isinstance(config, dict):
        config = json.loads(Path(config).read_text())
    return int(config.get("zero_optimization", {}).get("stage", 0))


def shards_parameters(training_args: Any) -> bool:
    """Whether the engine shards the weights (ZeRO-3 or FSDP), so that every rank must run every module."""
    return bool(training_args.fsdp) or deepspeed_zero_stage(training_args) == 3


@contextmanager
def gathered_parameters(model: torch.nn.Module, training_args: Any):
    """Under DeepSpeed ZeRO-3: every parameter of `model` whole on every process inside the block (DeepSpeed's
    `GatheredParameters`, read-only: `modifier_rank=None`); entering it is a collective call, so every process
    must enter it the same number of times. Otherwise nothing: deepspeed is not imported. Used around generation
    (one gather instead of one per module and token) and around the GRPO weight push (whole tensors to send)."""
    if deepspeed_zero_stage(training_args) != 3:
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(list(model.parameters()), modifier_rank=None):
        yield


def check_engine(model_args: Any, training_args: Any) -> None:
    """Refuse combinations of training mode and engine that cannot work, with the reason."""
    if model_args.use_qlora and shards_parameters(training_args):
        engine = "FSDP" if training_args.fsdp else "DeepSpeed ZeRO-3"
        raise ArgumentError(
            f"--use_qlora cannot be combined with {engine}: {engine} shards every weight across the GPUs as "
            "flat tensors of one floating dtype, but vlmtune's QLoRA keeps the 4-bit weights packed in uint8 "
            "(bitsandbytes' default storage), which it cannot shard or gather with the other weights. Use QLoRA "
            "on one GPU, with DDP (torchrun) or with DeepSpeed ZeRO-2, or plain LoRA (--use_qlora false) with "
            "ZeRO-3 / FSDP."
        )


def vision_tower_every_step(training_args: Any) -> bool:
    """--vision_tower_every_step if given, else on exactly when the engine shards the weights."""
    if training_args.vision_tower_every_step is not None:
        return training_args.vision_tower_every_step
    return shards_parameters(training_args)


def has_media(inputs: dict[str, Any]) -> bool:
    return any(inputs.get(key) is not None for key in PIXEL_KEYS)


def dummy_image_inputs(processor: Any) -> dict[str, torch.Tensor]:
    """The image processor's tensors for one small grey image (resized as the processor resizes any image)."""
    image = Image.new("RGB", (DUMMY_IMAGE_SIZE, DUMMY_IMAGE_SIZE), (128, 128, 128))
    return dict(processor.image_processor(images=[image], return_tensors="pt"))


def tensor_sum(value: Any) -> torch.Tensor | int:
    """Sum of every floating tensor in a (nested) model output; 0 when there is none."""
    if isinstance(value, torch.Tensor):
        return value.float().sum() if value.is_floating_point() else 0
    if isinstance(value, dict):  # ModelOutput is a dict
        return sum((tensor_sum(v) for v in value.values()), 0)
    if isinstance(value, list | tuple):
        return sum((tensor_sum(v) for v in value), 0)
    return 0


def image_feature_module(model: torch.nn.Module) -> torch.nn.Module | None:
    """The outermost module with a public `get_image_features` (the model itself, or its inner model)."""
    return next((module for module in model.modules() if hasattr(module, "get_image_features")), None)


def feature_inputs(model: torch.nn.Module, image_inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The image processor's tensors that `get_image_features` takes by name, at its own level or the inner
    model's it forwards to (VideoLLaMA3's wrapper passes `image_merge_sizes` on through **kwargs)."""
    accepted = set()
    for module in model.modules():
        if hasattr(module, "get_image_features"):
            accepted |= set(inspect.signature(module.get_image_features).parameters)
    return {key: value for key, value in image_inputs.items() if key in accepted}


def image_features(output: Any, projector: torch.nn.Module | None) -> list[torch.Tensor]:
    """What of `get_image_features`' output a real image puts into the sequence.

    The pooled features (`pooler_output`) where the model returns them (LLaVA's tower feeds its second-to-last
    layer, so its last layer gets no gradient from a real image either), plus Qwen3-VL's DeepStack features. A
    model whose `get_image_features` stops before the projector (Llama 4) has its `multi_modal_projector` applied,
    as its forward does.
    """
    if not isinstance(output, dict):
        return [output]
    features = output.get("pooler_output")
    if features is None:
        features = output.get("last_hidden_state")
        if projector is not None:
            features = projector(features)
    deepstack = output.get("deepstack_features") or []
    return [features, *deepstack]


class DummyVision:
    """Runs the vision tower on a dummy image in every forward that `arm` is called for (a batch without media).

    A forward hook on the token embeddings (`model.get_input_embeddings()`, the module every family embeds
    its input ids with, before it runs the vision tower on real images) adds the zero. Generation and other
    forwards are left alone: the hook only acts once armed, and disarms itself.
    """

    def __init__(self, model: torch.nn.Module, processor: Any):
        if image_feature_module(model) is None:
            raise ArgumentError(
                f"{type(model).__name__} has no public get_image_features, so vlmtune cannot run its vision tower "
                "on a dummy image in text-only steps (needed under ZeRO-3/FSDP, or asked for with "
                "--vision_tower_every_step): give every batch an image, and train with DDP or ZeRO-2"
            )
        self.feature_module = image_feature_module(model)
        self.projector = next((m for name, m in model.named_modules() if name.endswith("multi_modal_projector")), None)
        self.model = model
        self.image_inputs = feature_inputs(model, dummy_image_inputs(processor))
        self.device_inputs: dict[str, torch.Tensor] | None = None  # on the model's device and dtype, once known
        self.armed = False
        self.handle = model.get_input_embeddings().register_forward_hook(self.after_embeddings)

    def arm(self, inputs: dict[str, Any]) -> None:
        """Arm for the next forward when its inputs hold no image or video."""
        self.armed = not has_media(inputs)

    def after_embeddings(self, module: torch.nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        if not self.armed:
            return None
        self.armed = False  # once per forward
        return output + self.zero().to(output.dtype)

    def zero(self) -> torch.Tensor:
        """0 x the sum of the dummy image's features: a zero that depends on the vision weights."""
        if self.device_inputs is None:  # the Trainer has placed the model by the first training forward
            parameter = next(p for p in self.model.parameters() if p.is_floating_point())
            self.device_inputs = {
                key: value.to(parameter.device, parameter.dtype if value.is_floating_point() else value.dtype)
                for key, value in self.image_inputs.items()
            }
        output = self.feature_module.get_image_features(**self.device_inputs)
        return 0.0 * tensor_sum(image_features(output, self.projector))
