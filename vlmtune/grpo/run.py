"""`vlmtune grpo`: check the prompts, load the model as `vlmtune train` does, run GRPO on the one Trainer, save."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

from transformers import TrainerCallback

from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments
from vlmtune.collators.base import VLMCollator
from vlmtune.core.distributed import shards_parameters
from vlmtune.core.modeling import checkpoint_path
from vlmtune.datasets import Sample
from vlmtune.errors import ArgumentError
from vlmtune.grpo.arguments import GRPOArguments
from vlmtune.grpo.data import PromptDataset, keep_samples, read_prompts
from vlmtune.grpo.loss import LossSettings
from vlmtune.grpo.rewards import resolve_rewards
from vlmtune.grpo.rollouts import SamplingSettings
from vlmtune.grpo.trainer import GRPOTrainer
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

# Columns the built-in rewards read from each sample; `vlmtune validate --task grpo` checks the same.
REWARD_COLUMNS = {"accuracy": ("solution",)}


def reward_functions(grpo_args: GRPOArguments) -> dict:
    """The run's reward functions by name (built-in ones with its tag and length options bound); an unknown name
    or a missing plugin file raises ArgumentError (the web UI checks this before it starts a run)."""
    options = {
        "think_tags": tuple(grpo_args.think_tags),
        "answer_tags": tuple(grpo_args.answer_tags),
        "max_completion_length": grpo_args.max_completion_length,
        "overlong_buffer": grpo_args.overlong_buffer,
    }
    return resolve_rewards(grpo_args.reward_funcs, grpo_args.reward_plugin, options)


def reward_columns(grpo_args: GRPOArguments) -> tuple[str, ...]:
    """The columns every prompt must have for the run's built-in rewards."""
    return tuple(sorted({c for name in grpo_args.reward_funcs for c in REWARD_COLUMNS.get(name, ())}))


def grpo(
    model_args: ModelArguments,
    data_args: DataArguments,
    training_args: TrainingArguments,
    grpo_args: GRPOArguments,
    callbacks: list[TrainerCallback] | None = None,
) -> GRPOTrainer:
    """Check the prompts and rewards, load the model, train with GRPO, save (same output layout as train)."""
    entry, rewards, prompts = check_grpo_run(model_args, data_args, training_args, grpo_args)
    eval_prompts = None
    if data_args.eval_data_path:  # held-out prompts, scored by the same rewards every eval_steps and at the end
        eval_prompts = read_prompts(data_args.eval_data_path, entry.family, data_args, reward_columns(grpo_args))
    llm = None
    if grpo_args.use_vllm and grpo_args.vllm_mode == "server":  # a missing or wrong server fails before loading
        llm = start_rollout_engine(entry, model_args, grpo_args)
    model, processor, collator = load_model_and_collator(entry, model_args, data_args)
    trainer = grpo_trainer(
        entry,
        model,
        processor,
        collator,
        prompts,
        rewards,
        (model_args, data_args, training_args, grpo_args),
        callbacks,
        eval_prompts,
        llm,
    )
    output_dir = Path(training_args.output_dir)
    trainer.train(resume_from_checkpoint=resolve_resume(training_args.resume_from_checkpoint, output_dir))
    if eval_prompts:  # a final evaluation: logged, on the reward curve and in eval_results.json
        trainer.save_metrics("eval", trainer.evaluate())
    save_outputs(trainer, processor, (model_args, data_args, training_args, grpo_args), output_dir)
    return trainer


def check_grpo_run(
    model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments, grpo_args: GRPOArguments
) -> tuple[ModelEntry, dict, list[Sample]]:
    """(the registered model, the reward functions, the prompts): every check that needs no weights."""
    entry = check_run(model_args, training_args)
    rewards = reward_functions(grpo_args)  # bad names fail now
    prompts = read_prompts(data_args.data_path, entry.family, data_args, reward_columns(grpo_args))
    if grpo_args.use_vllm:
        check_vllm(entry, model_args, training_args, grpo_args.vllm_mode)
    if training_args.eval_strategy != "no" and not data_args.eval_data_path:
        strategy = getattr(training_args.eval_strategy, "value", training_args.eval_strategy)
        raise ArgumentError(f"--eval_strategy {strategy} needs --eval_data_path (held-out prompts)")
    if grpo_args.resample_tied_groups and shards_parameters(training_args):
        # Each process resamples its own groups, so processes generate a different number of times, and
        # generation with sharded weights is a collective: they would wait on each other forever.
        raise ArgumentError("--resample_tied_groups cannot be combined with DeepSpeed ZeRO-3 or FSDP yet")
    return entry, rewards, prompts


def grpo_trainer(
    entry: ModelEntry,
    model,
    processor,
    collator: VLMCollator,
    prompts: list[Sample],
    rewards: dict,
    args: tuple[ModelArguments, DataArguments, TrainingArguments, GRPOArguments],
    callbacks: list[TrainerCallback] | None = None,
    eval_prompts: list[Sample] | None = None,
    llm=None,
) -> GRPOTrainer:
    """The GRPOTrainer of a run around a loaded model, made trainable here (`grpo`; benchmarks/grpo_step.py
    passes a real-size random-init model); with --use_vllm, `llm` or else a new engine (or server client)
    samples the rollouts."""
    model_args, data_args, training_args, grpo_args = args
    family = entry.family
    model, part_lrs = make_trainable(model, family, model_args, training_args)
    reference = None
    if grpo_args.beta != 0.0 and not hasattr(model, "disable_adapter"):
        # Full finetuning has no adapter to switch off: the reference is a frozen copy of the starting weights.
        reference = copy.deepcopy(model).eval().requires_grad_(False)
    return GRPOTrainer(
        model=model,
        args=training_args,
        train_dataset=PromptDataset(prompts),
        eval_dataset=PromptDataset(eval_prompts) if eval_prompts else None,
        data_collator=keep_samples,
        processing_class=processor,
        callbacks=callbacks,
        **trainer_parts(entry, data_args, part_lrs),
        collator=collator,
        rewards=rewards,
        reward_weights=grpo_args.reward_weights or [1.0] * len(rewards),
        sampling=SamplingSettings(
            num_generations=grpo_args.num_generations,
            temperature=grpo_args.temperature,
            top_p=grpo_args.top_p,
            max_completion_length=grpo_args.max_completion_length,
            num_frames=data_args.num_frames,
        ),
        loss_settings=LossSettings(
            loss_type=grpo_args.loss_type,
            epsilon_low=grpo_args.epsilon,
            epsilon_high=grpo_args.epsilon_high,
            beta=grpo_args.beta,
            importance_sampling_level=grpo_args.importance_sampling_level,
            max_completion_length=grpo_args.max_completion_length,
            use_bias_correction_kl=grpo_args.use_bias_correction_kl,
            sapo_temperature_pos=grpo_args.sapo_temperature_pos,
            sapo_temperature_neg=grpo_args.sapo_temperature_neg,
        ),
        scale_rewards=grpo_args.scale_rewards,
        advantage_estimator=grpo_args.advantage_estimator,
        num_iterations=grpo_args.num_iterations,
        mask_truncated_completions=grpo_args.mask_truncated_completions,
        resample_tied_groups=grpo_args.resample_tied_groups,
        max_resample_times=grpo_args.max_resample_times,
        log_completions_steps=grpo_args.log_completions_steps,
        reference=reference,
        llm=llm or (start_rollout_engine(entry, model_args, grpo_args) if grpo_args.use_vllm else None),
    )


def check_vllm(
    entry: ModelEntry, model_args: ModelArguments, training_args: TrainingArguments, mode: str = "colocate"
) -> None:
    """--use_vllm: a family vLLM runs, no QLoRA; colocate: vLLM importable here, one process (ArgumentError)."""
    from vlmtune.serving.vllm_backend import NOT_IMPLEMENTED_FAMILIES, import_vllm

    if mode == "colocate" and training_args.world_size > 1:
        raise ArgumentError(
            "--use_vllm --vllm_mode colocate runs its engine in the training process: launch one process, or "
            "start `vlmtune rollout-server MODEL` and add --vllm_mode server"
        )
    if mode == "colocate":
        import_vllm()
    if entry.family_id in NOT_IMPLEMENTED_FAMILIES:
        raise ArgumentError(
            f"--use_vllm: vLLM does not implement {entry.family_id} (docs/serving.md); drop --use_vllm"
        )
    if model_args.use_qlora:
        raise ArgumentError("--use_vllm with --use_qlora is not supported yet (4-bit weights are not pushed)")


def start_rollout_engine(entry: ModelEntry, model_args: ModelArguments, grpo_args: GRPOArguments):
    """colocate: the vLLM engine on the run's starting checkpoint, in the training dtype; server: the client of
    the running rollout server, checked to serve this model (the trainer pushes the policy's own weights before
    the first rollouts either way)."""
    if grpo_args.vllm_mode == "server":
        from vlmtune.grpo.rollout_client import RolloutClient

        return RolloutClient.connect(
            grpo_args.vllm_server_host,
            grpo_args.vllm_server_port,
            grpo_args.vllm_server_timeout,
            entry,
            grpo_args.vllm_server_api_key_file,
        )
    from vlmtune.grpo.vllm_rollouts import rollout_engine

    folder = checkpoint_path(entry, model_args.model_local_path)
    return rollout_engine(folder, entry, grpo_args.vllm_max_model_len, dtype=model_args.model_dtype)
