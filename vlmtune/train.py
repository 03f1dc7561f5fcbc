"""Finetune a registered vision-language model with one HF Trainer: LoRA (default), QLoRA or full.

    vlmtune train --model_id tiny-qwen2-vl --data_path data/train.json --output_dir out --num_train_epochs 1
    vlmtune train --config configs/example.yaml --learning_rate 1e-4      # command line beats the file
    vlmtune train ... --save_strategy steps --save_steps 500 --resume_from_checkpoint auto   # survive a kill
    torchrun --nproc_per_node 4 -m vlmtune.train --model_id qwen2-vl-7b-instruct ...    # several GPUs

Every sample is checked (vlmtune.validate) before the model loads; training refuses to start on errors unless
`--skip_bad_samples` is given. With `--resume_from_checkpoint auto` a run continues from the newest complete
checkpoint in `output_dir` (a checkpoint cut short by a kill is passed over), or starts afresh if there is none.

The output folder holds the adapter (or the full model), the processor, `vlmtune_args.yaml` (every resolved
argument), `loss_curve.png` (once a loss was logged) and, with eval data, `eval_results.json` (final eval loss
and `--eval_metric` scores).
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path

import yaml
from transformers import TrainerCallback, set_seed

from vlmtune.arguments import ArgumentError, DataArguments, ModelArguments, TrainingArguments, parse_args
from vlmtune.datasets import DataError, LazySupervisedDataset, Sample, StreamingSupervisedDataset, skipped_summary
from vlmtune.distributed import check_engine, vision_tower_every_step
from vlmtune.export import vllm_note
from vlmtune.fast_paths import apply_max_pixels, check_fast_paths
from vlmtune.formats import iter_samples, problem_list
from vlmtune.lengths import cached_lengths, length_cache_file
from vlmtune.modeling import count_parameters, load_model, set_trainable
from vlmtune.packing import check_family_packs, packing_collator
from vlmtune.released import released_layout
from vlmtune.supported_models import Family, ModelEntry, get_model
from vlmtune.trainer import VLMTrainer, last_complete_checkpoint, save_loss_curve
from vlmtune.validate import check_data, check_family, data_options

logger = logging.getLogger("vlmtune")


def read_data(
    path: str, family: Family, data_args: DataArguments, reward_columns: tuple[str, ...] | None = None
) -> list[Sample]:
    """Check every sample (fields, roles, placeholders, files, media headers, the family's capabilities) before
    any model loads; errors stop here unless `--skip_bad_samples`, which drops the bad samples and says why.
    `reward_columns`: GRPO prompts (see `vlmtune.validate.check_data`)."""
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
    """The registered model of the run, after the checks that need no data or weights (engine, fast paths)."""
    entry = get_model(model_args.model_id)  # unknown ids fail here, before anything is loaded
    check_engine(model_args, training_args)  # e.g. QLoRA with ZeRO-3 / FSDP, refused with the reason
    check_fast_paths(model_args.attn_implementation, training_args.use_liger_kernel)
    return entry


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


def train(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    callbacks: list[TrainerCallback] | None = None,
) -> VLMTrainer:
    """Check the data, load the model, train, save; `callbacks` are extra `transformers.TrainerCallback`s."""
    entry = check_run(model_args, training_args)
    family = entry.family
    output_dir = Path(training_args.output_dir)
    if data_args.streaming and training_args.max_steps <= 0:
        raise ArgumentError("--streaming needs --max_steps: a streamed dataset has no length to count epochs in")
    if data_args.packing:
        check_family_packs(family.family_id, family.packing)
    train_samples = None if data_args.streaming else read_data(data_args.data_path, family, data_args)
    eval_samples = read_data(data_args.eval_data_path, family, data_args) if data_args.eval_data_path else None

    model, processor, collator = load_model_and_collator(entry, model_args, data_args)
    if data_args.streaming:
        # Each process reads its own shard. Dispatching batches from rank 0 would slice every tensor of a batch
        # along dim 0 as if it were the batch dim, which cuts the concatenated image patches of a VLM batch.
        training_args.accelerator_config.dispatch_batches = False
        train_dataset = streaming_dataset(data_args.data_path, family, collator, data_args)
    else:
        train_dataset = lazy_dataset(train_samples, family, collator, data_args)
    eval_dataset = lazy_dataset(eval_samples, family, collator, data_args) if eval_samples else None
    if training_args.train_sampling_strategy == "group_by_length":
        # Estimated, not encoded (vlmtune.lengths); a streamed dataset has no lengths to group by.
        settings = {"model": [model_args.model_id, model_args.model_local_path], **dataclasses.asdict(data_args)}
        for samples, dataset, path in (
            (train_samples, train_dataset, data_args.data_path),
            (eval_samples, eval_dataset, data_args.eval_data_path),
        ):
            if samples is not None:
                dataset.lengths = cached_lengths(samples, collator, length_cache_file(path, settings))
    batcher = packing_collator(model, family, collator) if data_args.packing else collator

    model, part_lrs = make_trainable(model, family, model_args, training_args)

    trainer = VLMTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=batcher,
        processing_class=processor,
        prefixes=family.modules,
        part_lrs=part_lrs,
        vision_every_step=vision_tower_every_step(training_args),
        num_frames=data_args.num_frames,
        callbacks=callbacks,
    )
    trainer.train(resume_from_checkpoint=resolve_resume(training_args.resume_from_checkpoint, output_dir))
    if train_dataset.skipped:  # each bad sample once, with its file and reason (also logged when first met)
        logger.warning(skipped_summary(train_dataset.skipped, "training"))
    if eval_dataset is not None:  # a final evaluation: logged, in the loss curve and in eval_results.json
        trainer.save_metrics("eval", trainer.evaluate())
        if eval_dataset.skipped:
            logger.warning(skipped_summary(eval_dataset.skipped, "evaluation"))
    save_outputs(trainer, processor, (model_args, data_args, training_args), output_dir)
    return trainer


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    train(*parse_args(argv))


if __name__ == "__main__":  # python -m vlmtune.train (e.g. under torchrun): the CLI's clear errors
    from vlmtune.cli import main as cli_main

    sys.exit(cli_main(["train", *sys.argv[1:]]))
