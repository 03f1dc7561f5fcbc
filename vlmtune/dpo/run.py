"""`vlmtune dpo`: check the pairs, load the model as `vlmtune train` does, train on preferences, save."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from transformers import TrainerCallback

from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments
from vlmtune.collators.base import VLMCollator
from vlmtune.dpo.arguments import DPOArguments
from vlmtune.dpo.data import PairCollator, PairDataset, PreferencePair, read_pairs
from vlmtune.dpo.trainer import DPOTrainer
from vlmtune.errors import ArgumentError
from vlmtune.pipeline import (
    check_run,
    load_model_and_collator,
    make_trainable,
    resolve_resume,
    save_outputs,
    trainer_parts,
)
from vlmtune.supported_models import ModelEntry

logger = logging.getLogger("vlmtune")


def dpo(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    dpo_args: DPOArguments,
    callbacks: list[TrainerCallback] | None = None,
) -> DPOTrainer:
    """Check the pairs, load the model, train on the preference loss, save (same output layout as train)."""
    entry = check_run(model_args, training_args)
    check_dpo_run(data_args, training_args)
    pairs = read_pairs(data_args.data_path, entry.family, data_args)
    eval_pairs = read_pairs(data_args.eval_data_path, entry.family, data_args) if data_args.eval_data_path else None
    model, processor, collator = load_model_and_collator(entry, model_args, data_args)
    trainer = dpo_trainer(
        entry,
        model,
        processor,
        collator,
        pairs,
        (model_args, data_args, training_args, dpo_args),
        callbacks,
        eval_pairs=eval_pairs,
    )
    output_dir = Path(training_args.output_dir)
    trainer.train(resume_from_checkpoint=resolve_resume(training_args.resume_from_checkpoint, output_dir))
    if eval_pairs:  # a final evaluation: logged (eval_rewards/accuracies, ...) and in eval_results.json
        trainer.save_metrics("eval", trainer.evaluate())
    save_outputs(trainer, processor, (model_args, data_args, training_args, dpo_args), output_dir)
    return trainer


def check_dpo_run(data_args: DataArguments, training_args: TrainingArguments) -> None:
    """SFT data options that `vlmtune dpo` does not do yet are refused, not ignored."""
    unsupported = {
        "--packing": data_args.packing,
        "--streaming": data_args.streaming,
        "--group_by_length": training_args.train_sampling_strategy == "group_by_length",
    }
    for flag, given in unsupported.items():
        if given:
            raise ArgumentError(f"{flag} is not supported by vlmtune dpo yet; drop it")


def dpo_trainer(
    entry: ModelEntry,
    model,
    processor,
    collator: VLMCollator,
    pairs: list[PreferencePair],
    args: tuple[ModelArguments, DataArguments, TrainingArguments, DPOArguments],
    callbacks: list[TrainerCallback] | None = None,
    eval_pairs: list[PreferencePair] | None = None,
) -> DPOTrainer:
    """The DPOTrainer of a run around a loaded model, made trainable here; with --precompute_ref_log_probs the
    reference pass over the pairs runs now."""
    model_args, data_args, training_args, dpo_args = args
    family = entry.family
    model, part_lrs = make_trainable(model, family, model_args, training_args)
    settings = dpo_args.loss_settings()
    reference = None
    if settings.needs_reference and not hasattr(model, "disable_adapter"):
        # Full finetuning has no adapter to switch off: the reference is a frozen copy of the starting weights.
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    dataset = PairDataset(pairs, collator.encode, family.to_load_image, data_args.num_frames)
    eval_dataset = (
        PairDataset(eval_pairs, collator.encode, family.to_load_image, data_args.num_frames) if eval_pairs else None
    )
    batcher = PairCollator(collator)
    trainer = DPOTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        eval_dataset=eval_dataset,
        data_collator=batcher,
        processing_class=processor,
        callbacks=callbacks,
        **trainer_parts(entry, data_args, part_lrs),
        loss_settings=settings,
        reference=reference,
    )
    if dpo_args.precompute_ref_log_probs and settings.needs_reference:
        logger.info("computing the reference log-probs of %d pairs", len(dataset))
        for each in (dataset, eval_dataset) if eval_dataset else (dataset,):
            each.ref_logps = trainer.precompute_reference(each, batcher, training_args.per_device_train_batch_size)
        trainer.reference = None  # the frozen copy is not needed any more
    return trainer
