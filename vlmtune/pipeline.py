"""The run pipeline every training command shares (`vlmtune train`, `grpo` and every later method), in order:

    entry = check_run(model_args, training_args)                  # the registered model; checks without weights
    samples = read_data(data_args.data_path, entry.family, data_args)   # every sample checked, before any load
    model, processor, collator = load_model_and_collator(entry, model_args, data_args)
    model, part_lrs = make_trainable(model, entry.family, model_args, training_args)
    trainer = <the method's Trainer>(model=model, ..., **trainer_parts(entry, data_args, part_lrs))
    trainer.train(resume_from_checkpoint=resolve_resume(training_args.resume_from_checkpoint, output_dir))
    save_outputs(trainer, processor, (model_args, data_args, training_args, ...), output_dir)

A method is its own module (vlmtune/train.py for SFT, vlmtune/grpo/) that calls these steps top to bottom and adds
only what is its own (its data, its Trainer subclass, its arguments dataclass). The methods layer: it may import
serving, core, the registry, data and the bottom layer; nothing below imports it.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import yaml
from transformers import set_seed

from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments
from vlmtune.core.checkpoint import checked_entry
from vlmtune.core.distributed import check_engine
from vlmtune.core.fast_paths import apply_max_pixels, check_fast_paths
from vlmtune.core.modeling import count_parameters, load_model, set_trainable
from vlmtune.core.trainer import VLMTrainer, last_complete_checkpoint, save_loss_curve
from vlmtune.data.checks import check_data, check_family, data_options
from vlmtune.data.formats import iter_samples, problem_list
from vlmtune.datasets import LazySupervisedDataset, Sample, StreamingSupervisedDataset
from vlmtune.errors import DataError
from vlmtune.loaders.released import released_layout
from vlmtune.serving.export import vllm_note
from vlmtune.supported_models import Family, ModelEntry, get_model

logger = logging.getLogger("vlmtune")


def read_data(
    path: str, family: Family, data_args: DataArguments, reward_columns: tuple[str, ...] | None = None
) -> list[Sample]:
    """Check every sample (fields, roles, placeholders, files, media headers, the family's capabilities) before
    any model loads; errors stop here unless `--skip_bad_samples`, which drops the bad samples and says why.
    `reward_columns`: GRPO prompts (see `vlmtune.apps.validate.check_data`)."""
    report = check_data(
        path,
        data_options(path, data_args),
        family,
        decode_media=False,
        num_frames=data_args.num_frames,
        reward_columns=reward_columns,
    )
    for warning in report.warnings:
        logger.warning(warning)
    if report.errors and not data_args.skip_bad_samples:
        validate = "vlmtune validate --data_path ..." + (" --task grpo" if reward_columns is not None else "")
        raise DataError(
            problem_list(report.errors, path)
            + f"\nfix them ({validate} lists every problem), or pass --skip_bad_samples to train on the good "
            "samples only"
        )
    if report.errors:
        logger.warning("skipping bad samples (%d checked): %s", report.checked, problem_list(report.errors, path))
    if not report.samples:
        raise DataError(f"{path}: no usable samples")
    return report.samples


def streaming_dataset(path: str, family: Family, collator, data_args: DataArguments) -> StreamingSupervisedDataset:
    """A dataset read lazily; its first record is checked now, so that a wrong path or format fails early."""
    options = data_options(path, data_args)
    _, first = next(iter_samples(path, options, streaming=True), (None, DataError(f"{path}: no samples")))
    if isinstance(first, DataError):
        raise first
    check_family(first, family)
    return StreamingSupervisedDataset(
        read=lambda: (sample for _, sample in iter_samples(path, options, streaming=True)),
        encode=collator.encode,
        check=lambda sample: check_family(sample, family),
        load_images=family.to_load_image,
        num_frames=data_args.num_frames,
    )


def resolve_resume(resume_from_checkpoint: str | None, output_dir: Path) -> str | None:
    """`auto`: the newest complete checkpoint in output_dir, or None (a fresh start) when there is none."""
    if resume_from_checkpoint != "auto":
        return resume_from_checkpoint
    checkpoint = last_complete_checkpoint(output_dir)
    logger.info("resume_from_checkpoint=auto: %s", f"resuming from {checkpoint}" if checkpoint else "no checkpoint")
    return str(checkpoint) if checkpoint else None


def lazy_dataset(samples: list[Sample], family: Family, collator, data_args: DataArguments) -> LazySupervisedDataset:
    return LazySupervisedDataset(samples, collator.encode, family.to_load_image, data_args.num_frames)


def save_outputs(trainer: VLMTrainer, processor, args: tuple, output_dir: Path) -> None:
    from peft import PeftModel

    if isinstance(trainer.model, PeftModel):
        trainer.save_model(str(output_dir))  # the adapter (and the modules it trains fully)
        note = vllm_note(output_dir) if trainer.is_world_process_zero() else None
        if note:
            logger.warning(note)
    else:
        with released_layout(trainer.model):  # a full model: in the released key layout, as merge writes it
            trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        processor.save_pretrained(str(output_dir))
        resolved = {
            type(a).__name__: {k: str(v) if isinstance(v, Path) else v for k, v in a.to_dict().items()}
            if hasattr(a, "to_dict")
            else dataclasses.asdict(a)
            for a in args
        }
        (output_dir / "vlmtune_args.yaml").write_text(
            yaml.safe_dump(resolved, sort_keys=False, default_flow_style=None)
        )
        picture = save_loss_curve(trainer.state.log_history, output_dir / "loss_curve.png")
        logger.info("saved to %s%s", output_dir, f" (loss curve: {picture.name})" if picture else "")


def check_run(model_args: ModelArguments, training_args: TrainingArguments) -> ModelEntry:
    """The registered model of the run, after the checks that need no data or weights (engine, fast paths, and the
    checkpoint's own files: template, parts, tokens; `vlmtune check` shows them), a conventional family's derived
    fields filled in."""
    entry = get_model(model_args.model_id)  # unknown ids fail here, before anything is loaded
    check_engine(model_args, training_args)  # e.g. QLoRA with ZeRO-3 / FSDP, refused with the reason
    check_fast_paths(model_args.attn_implementation, training_args.use_liger_kernel)
    return checked_entry(entry, model_args.model_local_path, model_args.trust_remote_code)


def load_model_and_collator(entry: ModelEntry, model_args: ModelArguments, data_args: DataArguments):
    """(model, processor, the family's collator) as the arguments say."""
    family = entry.family
    model, processor = load_model(entry, model_args)
    if data_args.max_pixels:
        apply_max_pixels(processor, data_args.max_pixels, family.family_id)
    collator = family.collator(processor, family.reply_end, data_args.model_max_length, data_args.pad_to_multiple_of)
    return model, processor, collator


def make_trainable(
    model, family: Family, model_args: ModelArguments, training_args: TrainingArguments
) -> tuple[object, dict[str, float]]:
    """The model with LoRA / full / frozen parts as asked (logged), and the per-part learning rates."""
    set_seed(training_args.seed)  # LoRA adapters are initialised randomly as they are added: the same every run
    model = set_trainable(model, family.modules, model_args, training_args.activation_checkpointing)
    trainable, total = count_parameters(model)
    logger.info("trainable parameters: %s of %s (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    part_lrs = {
        part: lr
        for part, lr in (("vision_projector", model_args.projector_lr), ("vision_encoder", model_args.vision_lr))
        if lr
    }
    return model, part_lrs


def trainer_parts(entry: ModelEntry, data_args: DataArguments, part_lrs: dict[str, float]) -> dict[str, Any]:
    """The keyword arguments every method passes to its `VLMTrainer` (subclass): the family's parameter prefixes
    (LoRA targets, per-part learning rates, the frozen parts), the per-part learning rates and the frame count."""
    return {"prefixes": entry.family.modules, "part_lrs": part_lrs, "num_frames": data_args.num_frames}
