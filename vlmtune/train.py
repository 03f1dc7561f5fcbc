"""`vlmtune train`: supervised finetuning (SFT) of a registered VLM with one HF Trainer: LoRA (default), QLoRA or full.

    vlmtune train --model_id tiny-qwen2-vl --data_path data/train.json --output_dir out --num_train_epochs 1
    vlmtune train --config configs/example.yaml --learning_rate 1e-4      # command line beats the file
    vlmtune train ... --save_strategy steps --save_steps 500 --resume_from_checkpoint auto   # survive a kill
    torchrun --nproc_per_node 4 -m vlmtune.train --model_id qwen2-vl-7b-instruct ...    # several GPUs

Every sample is checked (vlmtune.apps.validate) before the model loads; training refuses to start on errors unless
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

from transformers import TrainerCallback

from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments, parse_args
from vlmtune.core.distributed import vision_tower_every_step
from vlmtune.core.packing import check_family_packs, packing_collator
from vlmtune.core.trainer import VLMTrainer
from vlmtune.data.lengths import cached_lengths, length_cache_file
from vlmtune.datasets import skipped_summary
from vlmtune.errors import ArgumentError
from vlmtune.pipeline import (
    check_run,
    lazy_dataset,
    load_model_and_collator,
    make_trainable,
    read_data,
    resolve_resume,
    save_outputs,
    streaming_dataset,
    trainer_parts,
)

logger = logging.getLogger("vlmtune")


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
        # Estimated, not encoded (vlmtune.data.lengths); a streamed dataset has no lengths to group by.
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
        vision_every_step=vision_tower_every_step(training_args),
        callbacks=callbacks,
        **trainer_parts(entry, data_args, part_lrs),
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
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["train", *sys.argv[1:]]))
