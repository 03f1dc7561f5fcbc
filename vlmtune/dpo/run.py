"""`vlmtune dpo`: check the pairs, load the model as `vlmtune train` does, train on preferences, save."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

import torch
from transformers import TrainerCallback

from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments
from vlmtune.collators.base import VLMCollator
from vlmtune.core.modeling import checkpoint_path
from vlmtune.core.packing import multimodal_rope_index
from vlmtune.data.lengths import cache_root
from vlmtune.dpo.arguments import DPOArguments
from vlmtune.dpo.data import PairCollator, PairDataset, PreferencePair, SharedPromptCollator, read_pairs
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
from vlmtune.supported_models import Family, ModelEntry

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
    # Before PEFT wraps the model (its rotary index is read here).
    batcher = pair_batcher(model, family, collator) if dpo_args.prompt_once else PairCollator(collator)
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
        share_media=dpo_args.prompt_once,
    )
    if dpo_args.precompute_ref_log_probs and settings.needs_reference:
        for each, path in ((dataset, data_args.data_path), (eval_dataset, data_args.eval_data_path)):
            if each is not None:
                cache = reference_cache_file(path, entry, args)
                each.ref_logps = cached_reference(
                    trainer, each, batcher, training_args.per_device_train_batch_size, cache
                )
        trainer.reference = None  # the frozen copy is not needed any more
    return trainer


def pair_batcher(model, family: Family, collator: VLMCollator) -> PairCollator | SharedPromptCollator:
    """One row per pair (the prompt once, both replies after it) for the families that pack, whose attention is
    a plain causal mask that a 4-D one can replace (eager, sdpa); else the chosen rows then the rejected ones."""
    # transformers keeps the resolved kernel in this config attribute; there is no public accessor.
    if family.packing and model.config._attn_implementation in ("eager", "sdpa") and full_causal_attention(model):
        return SharedPromptCollator(collator, multimodal_rope_index(model))
    return PairCollator(collator)


def full_causal_attention(model) -> bool:
    """Whether every layer attends to all earlier tokens: a custom 4-D mask replaces the model's own, so sliding
    windows (Mistral, Gemma) or chunks (Llama 4) would be lost on sequences longer than them."""
    text = model.config.get_text_config()
    layer_types = getattr(text, "layer_types", None)
    if layer_types:
        return all(kind == "full_attention" for kind in layer_types)
    return not (getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", True))


def reference_cache_file(data_path: str, entry: ModelEntry, args: tuple) -> Path | None:
    """Where the reference log-probs of `data_path` are kept: beside the data (`<data>.ref_logps/<key>.pt`), or
    in $VLMTUNE_CACHE/ref_logps/ where that cannot be written (said in one line); None when the data is not one
    file (e.g. a Hugging Face dataset). The key hashes the data file's bytes, the starting checkpoint (its weight
    files' names, sizes and times), every model and data argument and the training precision: a change to any of
    them computes the log-probs again. The media files the data names are not hashed."""
    if not os.path.isfile(data_path):
        return None
    model_args, data_args, training_args, _ = args
    folder = Path(checkpoint_path(entry, model_args.model_local_path))
    weights = [(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.glob("*.safetensors"))]
    settings = {
        "kind": "dpo reference log-probs",
        "data": file_sha256(data_path),
        "checkpoint": [str(folder), weights],
        "model": dataclasses.asdict(model_args),
        "data_args": {
            k: v for k, v in dataclasses.asdict(data_args).items() if k not in ("data_path", "eval_data_path")
        },
        "precision": [training_args.bf16, training_args.fp16],
    }
    key = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:24]
    beside = Path(f"{data_path}.ref_logps")
    try:  # a real write, not a permission check: root passes those, a read-only mount does not
        beside.mkdir(exist_ok=True)
        tempfile.TemporaryFile(dir=beside).close()
    except OSError as error:
        fallback = cache_root() / "ref_logps"
        logger.warning("cannot write beside the data (%s); reference log-probs cached in %s", error, fallback)
        return fallback / f"{key}.pt"
    return beside / f"{key}.pt"


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cached_reference(trainer: DPOTrainer, dataset: PairDataset, batcher, batch_size: int, cache: Path | None):
    """The reference log-probs of every pair ([N, 2]), read from `cache` when it holds them, else computed (one
    pass before training) and written there."""
    if cache is not None and cache.is_file():
        ref_logps = torch.load(cache, weights_only=True)
        if ref_logps.shape == (len(dataset), 2):
            logger.info("reference log-probs of %d pairs read from %s", len(dataset), cache)
            return ref_logps
    logger.info("computing the reference log-probs of %d pairs", len(dataset))
    ref_logps = trainer.precompute_reference(dataset, batcher, batch_size)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        staging = cache.with_suffix(f".{os.getpid()}.tmp")
        torch.save(ref_logps, staging)
        staging.replace(cache)  # atomic: parallel ranks never read half a file
    return ref_logps
