"""The GRPO step on vlmtune's one Trainer: rollouts, rewards and advantages before the step, the loss in it.

`GRPOTrainer` is `vlmtune.core.trainer.VLMTrainer` (per-part learning rates, the Trainer's optimizer, scheduler,
checkpoints, logging and progress bar) whose data loader yields prompts: `get_batch_samples` (the Trainer's hook
that fetches one optimizer step's micro-batches) turns them into rollouts (`generate_completions`), scores them
and hands the Trainer's own steps batches of prompt+completion inputs with advantages; `compute_loss` is the
GRPO-family loss (`vlmtune.grpo.loss`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from vlmtune.collators.base import VLMCollator
from vlmtune.core.distributed import gathered_parameters
from vlmtune.core.evaluation import gather_replies, rank_share
from vlmtune.core.trainer import VLMTrainer
from vlmtune.datasets import USER, Sample
from vlmtune.grpo.loss import LossSettings, group_advantages, policy_loss
from vlmtune.grpo.rewards import RewardFunc, score
from vlmtune.grpo.rollouts import (
    Rollouts,
    SamplingSettings,
    completion_logps,
    generate_completions,
    replace_groups,
    training_inputs,
)

# Batch entries that are the loss's, not the model's.
LOSS_KEYS = ("completion_mask", "advantages", "old_logps", "ref_logps", "sampling_logps")


class GRPOTrainer(VLMTrainer):
    def __init__(
        self,
        *args,
        collator: VLMCollator,
        rewards: dict[str, RewardFunc],
        reward_weights: list[float],
        sampling: SamplingSettings,
        loss_settings: LossSettings,
        scale_rewards: str = "group",
        advantage_estimator: str = "grpo",
        num_iterations: int = 1,
        mask_truncated_completions: bool = False,
        resample_tied_groups: bool = False,
        max_resample_times: int = 3,
        log_completions_steps: int = 10,
        reference: torch.nn.Module | None = None,
        llm: Any = None,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.collator = collator
        self.rewards = rewards
        self.reward_weights = torch.tensor(reward_weights, dtype=torch.float32)
        self.sampling = sampling
        self.loss_settings = loss_settings
        self.scale_rewards = scale_rewards
        self.advantage_estimator = advantage_estimator
        self.num_iterations = num_iterations
        self.mask_truncated_completions = mask_truncated_completions
        self.resample_tied_groups = resample_tied_groups
        self.max_resample_times = max_resample_times
        self.resampled = 0
        self.log_completions_steps = log_completions_steps
        self.reference = None if reference is None else reference.to(self.args.device)
        self.llm = llm  # --use_vllm: a ColocatedEngine or a RolloutClient samples the rollouts; None: `model.generate`
        self.pushed_step: int | None = None  # the optimizer step whose weights the engine holds
        self.model_accepts_loss_kwargs = False  # the Trainer divides each micro-batch's loss by the accumulation
        self.buffered: list[dict[str, Any]] = []  # the last optimizer step's rollouts, for num_iterations > 1
        self.metrics: dict[str, list[float]] = defaultdict(list)

    def _get_train_sampler(self, train_dataset=None):
        """With num_iterations > 1: each window of prompts comes num_iterations times in a row, so the reused
        rollouts stand for exactly the prompts the data loader hands in (TRL repeats its sampler the same way)."""
        if self.num_iterations == 1:
            return super()._get_train_sampler(train_dataset)
        dataset = self.train_dataset if train_dataset is None else train_dataset
        window = self.args.train_batch_size * self.args.gradient_accumulation_steps * self.args.world_size
        return RepeatedWindows(len(dataset), window, self.num_iterations, self.args.seed)

    # --- before the step: rollouts, rewards, advantages -------------------------------------------------------

    def get_batch_samples(self, epoch_iterator, num_batches: int, device) -> tuple[list[dict[str, Any]], Any]:
        """One optimizer step's micro-batches of prompts -> their rollouts (generated, scored, with advantages),
        and the completion tokens of the whole step on all processes (DAPO's normaliser, as TRL's).

        With num_iterations > 1 the data loader hands in each step's prompts that many times in a row
        (`RepeatedWindows`): the first time they are rolled out, the other times the same rollouts train again.
        """
        prompts, _ = super().get_batch_samples(epoch_iterator, num_batches, device)
        if self.state.global_step % self.num_iterations == 0 or len(self.buffered) != len(prompts):
            self.buffered = self.make_batches(prompts)
        tokens = sum(batch["completion_mask"].sum() for batch in self.buffered)
        tokens = torch.as_tensor(tokens, device=device).reshape(1)
        return self.buffered, self.accelerator.gather(tokens).sum() / self.accelerator.num_processes

    def make_batches(self, micro_batches: list[list[Sample]]) -> list[dict[str, Any]]:
        """Roll out and score every micro-batch of this process, then compute the advantages over the whole
        generation batch of all processes (a group never leaves its process; `batch` scaling and the logged
        means see every process's rewards, as TRL's gather)."""
        scored = []
        for index, prompts in enumerate(micro_batches):
            position = index * self.accelerator.num_processes + self.accelerator.process_index
            rollouts = self.generate(prompts, self.sampling_seed(position))
            rewards, per_reward = self.score(rollouts)
            for round_ in range(1, self.max_resample_times + 1 if self.resample_tied_groups else 1):
                groups = tied_groups(rewards, self.sampling.num_generations)
                if not groups:
                    break
                rollouts, rewards, per_reward = self.resample(rollouts, rewards, per_reward, groups, position, round_)
            scored.append((rollouts, rewards, per_reward))
        if self.resample_tied_groups:  # groups replaced in this step by this process
            self.metrics["tied_groups_resampled"].append(float(self.resampled))
            self.resampled = 0
        local = torch.cat([rollout_table(*item) for item in scored]).to(self.args.device)
        table = self.accelerator.gather(local).cpu()  # [completions of all processes, rewards + 3]
        advantages, tied = group_advantages(
            table[:, -3], self.sampling.num_generations, self.scale_rewards, self.advantage_estimator
        )
        self.record_rollout_metrics(table, tied)
        start = self.accelerator.process_index * len(local)
        batches = []
        for rollouts, rewards, per_reward in scored:
            count = len(rewards)
            batches.append(self.make_batch(rollouts, rewards, per_reward, advantages[start : start + count]))
            start += count
        return batches

    def resample(self, rollouts: Rollouts, rewards, per_reward, groups: list[int], position: int, round_: int):
        """DAPO's dynamic sampling: the tied `groups` (all rewards equal, no signal) replaced by the rollouts of as
        many prompts drawn afresh from the training data (the draw seeded like the sampling, so a resumed run
        draws the same); the replacements may be tied again, and are then resampled in the next round."""
        seed = self.sampling_seed(position, round_)
        draw = torch.randint(len(self.train_dataset), (len(groups),), generator=torch.Generator().manual_seed(seed))
        fresh = self.generate([self.train_dataset[int(i)] for i in draw], seed)
        fresh_rewards, fresh_per_reward = self.score(fresh)
        self.resampled += len(groups)
        size = self.sampling.num_generations

        def spliced(old: list, new: list) -> list:
            merged = list(old)
            for slot, group in enumerate(groups):
                merged[group * size : (group + 1) * size] = new[slot * size : (slot + 1) * size]
            return merged

        rollouts = replace_groups(self.collator, rollouts, groups, fresh, self.sampling)
        rewards = torch.tensor(spliced(rewards.tolist(), fresh_rewards.tolist()), dtype=rewards.dtype)
        per_reward = {name: spliced(values, fresh_per_reward[name]) for name, values in per_reward.items()}
        return rollouts, rewards, per_reward

    def sampling_seed(self, position: int, round_: int = 0) -> int:
        """The seed of one micro-batch's sampling: a function of the run's seed, the step and the micro-batch's
        place in the step's generation batch (micro-batch index x processes + rank), so each process samples
        differently, a resumed run samples as the uninterrupted one, and one process with N accumulation steps
        samples what N processes with one step each sample."""
        key = f"{self.args.seed}/{self.state.global_step}/{position}/{round_}".encode()
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") >> 1  # distinct for every combination

    def make_batch(self, rollouts: Rollouts, rewards, per_reward, advantages: torch.Tensor) -> dict[str, Any]:
        mask = rollouts.completion_mask
        if self.mask_truncated_completions:
            mask = mask * (~rollouts.truncated).unsqueeze(1).to(mask.dtype)
        batch = training_inputs(rollouts, self.collator.reply_token_type_id)
        batch.update(
            completion_mask=mask, advantages=advantages.to(mask.device), sampling_logps=rollouts.sampling_logps
        )
        length = mask.shape[1]
        with torch.no_grad():
            if self.num_iterations > 1:  # the policy the rollouts came from, for the ratio of later iterations
                batch["old_logps"] = completion_logps(
                    self.model, batch_model_inputs(batch), length, self.sampling.temperature
                )[0]
            if self.loss_settings.beta != 0.0:
                batch["ref_logps"] = self.reference_logps(batch_model_inputs(batch), length)
        self.log_completions(rollouts, per_reward, rewards, advantages)
        return batch

    def generate(self, prompts: list[Sample], seed: int) -> Rollouts:
        """The rollouts of the current policy: by `model.generate` (its own RNG stream seeded with `seed`, the
        run's RNG untouched; ZeRO-3's shards gathered for it), or by vLLM (colocated or a rollout server) once
        it holds the weights of this optimizer step (pushed before the first rollouts too: the run may start from
        an adapter), its requests seeded with `seed` as well, so a resumed run samples as the uninterrupted one."""
        if self.llm is None:
            devices = [self.args.device] if self.args.device.type == "cuda" else []
            with torch.random.fork_rng(devices=devices), gathered_parameters(self.model, self.args):
                torch.manual_seed(seed)
                return generate_completions(self.model, self.collator, prompts, self.sampling)
        from vlmtune.grpo.vllm_rollouts import generate_completions_vllm

        if self.pushed_step != self.state.global_step:
            self.push_weights()
        return generate_completions_vllm(self.llm, self.collator, prompts, self.sampling, seed)

    def push_weights(self) -> None:
        """The policy's weights into the engine (colocate) or the rollout server (server mode: the first process
        pushes, the others wait until it has), with ZeRO-3's shards gathered on every process first."""
        from vlmtune.grpo.vllm_rollouts import push_weights

        model = self.accelerator.unwrap_model(self.model)
        with gathered_parameters(model, self.args):
            if self.accelerator.is_main_process:
                push_weights(self.llm, model)
        self.accelerator.wait_for_everyone()
        self.pushed_step = self.state.global_step

    def score(self, rollouts: Rollouts) -> tuple[torch.Tensor, dict[str, list[float | None]]]:
        """(weighted total per completion, NaN where every reward said None; each reward's scores)."""
        prompts = [prompt_text(sample) for sample in rollouts.prompts]
        keys = sorted({key for sample in rollouts.prompts for key in sample.extra})
        columns: dict[str, list[Any]] = {key: [sample.extra.get(key) for sample in rollouts.prompts] for key in keys}
        lengths = rollouts.completion_mask.sum(1).tolist()
        columns["completion_ids"] = [ids[:n] for ids, n in zip(rollouts.completion_ids.tolist(), lengths, strict=True)]
        sources = [sample.source for sample in rollouts.prompts]
        per_reward = score(self.rewards, prompts, rollouts.texts, columns, sources)
        table = torch.tensor(
            [[float("nan") if v is None else v for v in values] for values in per_reward.values()], dtype=torch.float32
        ).T  # [N, rewards]
        total = (table * self.reward_weights).nansum(dim=1)
        total[torch.isnan(table).all(dim=1)] = float("nan")
        return total, per_reward

    def reference_logps(self, inputs: dict[str, Any], length: int) -> torch.Tensor:
        """Log-probs under the reference: the base with adapters disabled (LoRA), or the frozen starting copy."""
        if self.reference is not None:
            return completion_logps(self.reference, inputs, length, self.sampling.temperature)[0]
        with self.model.disable_adapter():
            return completion_logps(self.model, inputs, length, self.sampling.temperature)[0]

    # --- evaluation -------------------------------------------------------------------------------------------

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix: str = "eval") -> dict[str, float]:
        """Held-out rewards: a greedy reply to every eval prompt (split over the processes, gathered), generated
        and scored as the training rollouts are (the same stops, at most max_completion_length tokens, the same
        reward inputs): `eval_reward` (weighted, as in training) and `eval_rewards/<name>/mean`, e.g. the
        accuracy of the replies. Logged and returned."""
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        samples = dataset.samples
        indices = rank_share(len(samples), self.args.process_index, self.args.world_size)
        settings = dataclasses.replace(self.sampling, num_generations=1, greedy=True)
        batch_size = self.args.per_device_eval_batch_size
        local = []
        with gathered_parameters(self.model, self.args):  # once per process: shares may differ in length
            for start in range(0, len(indices), batch_size):
                chunk = indices[start : start + batch_size]
                rollouts = generate_completions(self.model, self.collator, [samples[i] for i in chunk], settings)
                lengths = rollouts.completion_mask.sum(1).tolist()
                ids = [row[:n] for row, n in zip(rollouts.completion_ids.tolist(), lengths, strict=True)]
                local += [(i, (text, row)) for i, text, row in zip(chunk, rollouts.texts, ids, strict=True)]
        replies = gather_replies(local)  # index -> (text, completion ids with the stop token, as in training)
        order = sorted(replies)
        prompts = [samples[i] for i in order]
        texts = [replies[i][0] for i in order]
        keys = sorted({key for sample in prompts for key in sample.extra})
        columns: dict[str, list[Any]] = {key: [sample.extra.get(key) for sample in prompts] for key in keys}
        columns["completion_ids"] = [replies[i][1] for i in order]
        per_reward = score(
            self.rewards, [prompt_text(p) for p in prompts], texts, columns, [p.source for p in prompts]
        )
        table = torch.tensor([[torch.nan if v is None else v for v in values] for values in per_reward.values()]).T
        total = (table * self.reward_weights).nansum(dim=1)
        total[torch.isnan(table).all(dim=1)] = torch.nan
        metrics = {f"{metric_key_prefix}_reward": torch.nanmean(total).item()}
        for column, name in enumerate(per_reward):
            metrics[f"{metric_key_prefix}_rewards/{name}/mean"] = torch.nanmean(table[:, column]).item()
        self.log(metrics)
        self.control = self.callback_handler.on_evaluate(self.args, self.state, self.control, metrics)
        return metrics

    # --- the step ---------------------------------------------------------------------------------------------

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        mask = inputs["completion_mask"]
        logps, entropies = completion_logps(
            model, batch_model_inputs(inputs), mask.shape[1], self.sampling.temperature, entropy=True
        )
        old_logps = inputs.get("old_logps")
        loss, stats = policy_loss(
            logps,
            logps.detach() if old_logps is None else old_logps,  # one iteration: the ratio is 1, as in TRL
            inputs["advantages"],
            mask,
            self.loss_settings,
            ref_logps=inputs.get("ref_logps"),
            num_items_in_batch=num_items_in_batch,
        )
        if self.loss_settings.loss_type in ("dapo", "cispo") and self.model.training:
            # Normalised over the whole step's tokens already: undo the Trainer's division by the accumulation
            # steps (TRL turns that division off for DAPO).
            loss = loss * self.current_gradient_accumulation_steps
        for name, value in stats.items():
            self.metrics[name].append(value)
        real = mask.float()
        if old_logps is None:  # the policy that sampled, unchanged: any difference is generation vs training forward
            difference = (logps.detach() - inputs["sampling_logps"]).abs()
            self.metrics["sampling/logp_abs_diff"].append(((difference * real).sum() / real.sum().clamp(min=1)).item())
        self.metrics["entropy"].append(((entropies * real).sum() / real.sum().clamp(min=1)).item())
        return (loss, None) if return_outputs else loss

    # --- logging ----------------------------------------------------------------------------------------------

    def record_rollout_metrics(self, table: torch.Tensor, tied: torch.Tensor) -> None:
        """Rollout metrics of the whole generation batch (`table`: every process's `rollout_table` rows)."""
        for column, name in enumerate(self.rewards):
            scored = table[:, column][~torch.isnan(table[:, column])]
            if len(scored):
                self.metrics[f"rewards/{name}/mean"].append(scored.mean().item())
                self.metrics[f"rewards/{name}/std"].append(scored.std().item() if len(scored) > 1 else 0.0)
        rewards, lengths, truncated = table[:, -3], table[:, -2], table[:, -1]
        self.metrics["reward"].append(torch.nanmean(rewards).item())
        self.metrics["reward_std"].append(torch.nan_to_num(rewards).std().item())
        self.metrics["completions/mean_length"].append(lengths.mean().item())
        self.metrics["completions/max_length"].append(lengths.max().item())
        self.metrics["completions/clipped_ratio"].append(truncated.mean().item())
        groups = tied.view(-1, self.sampling.num_generations)[:, 0]
        self.metrics["frac_reward_zero_std"].append(groups.float().mean().item())  # tied groups: no signal

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The Trainer's log (progress bar, report_to) with the rollout and loss metrics averaged since the last
        log and over the processes (every process logs: the Trainer gathers the loss the same way)."""
        if "loss" in logs:
            names = sorted(name for name, values in self.metrics.items() if values)
            means = torch.tensor([sum(self.metrics[n]) / len(self.metrics[n]) for n in names], device=self.args.device)
            if self.accelerator.num_processes > 1 and names:
                means = self.accelerator.reduce(means, reduction="mean")
            logs = {**logs, **dict(zip(names, means.tolist(), strict=True))}
            self.metrics.clear()
        super().log(logs, start_time)

    def log_completions(self, rollouts: Rollouts, per_reward, rewards, advantages) -> None:
        step = self.state.global_step
        if step % self.log_completions_steps or not self.is_world_process_zero() or self.args.output_dir is None:
            return
        path = Path(self.args.output_dir) / "completions.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as file:
            for i, sample in enumerate(rollouts.prompts):
                row = {
                    "step": step,
                    "source": sample.source,
                    "prompt": prompt_text(sample),
                    "completion": rollouts.texts[i],
                    "rewards": {name: values[i] for name, values in per_reward.items()},
                    "reward": None if torch.isnan(rewards[i]) else rewards[i].item(),
                    "advantage": advantages[i].item(),
                }
                file.write(json.dumps(row, ensure_ascii=False) + "\n")


class RepeatedWindows(torch.utils.data.Sampler):
    """A random order of the dataset, cut into windows of `window` indices (one optimizer step's prompts on all
    processes), each window yielded `repeats` times in a row; a last partial window is dropped."""

    def __init__(self, size: int, window: int, repeats: int, seed: int):
        self.size, self.window, self.repeats = size, window, repeats
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        order = torch.randperm(self.size, generator=self.generator).tolist()
        for start in range(0, self.size - self.window + 1, self.window):
            for _ in range(self.repeats):
                yield from order[start : start + self.window]

    def __len__(self) -> int:
        return (self.size // self.window) * self.window * self.repeats


def tied_groups(rewards: torch.Tensor, num_generations: int) -> list[int]:
    """The groups whose scored completions all got the same reward, or fewer than two were scored: no signal."""
    grouped = rewards.view(-1, num_generations)
    high = torch.where(grouped.isnan(), -torch.inf, grouped).max(1).values
    low = torch.where(grouped.isnan(), torch.inf, grouped).min(1).values
    return torch.nonzero(~(high > low)).flatten().tolist()


def rollout_table(rollouts: Rollouts, rewards: torch.Tensor, per_reward: dict[str, list]) -> torch.Tensor:
    """[completions, rewards + 3] float rows to gather across processes: each reward's score (NaN: None), the
    weighted total, the completion's length and whether it was cut."""
    scores = [[float("nan") if v is None else v for v in values] for values in per_reward.values()]
    columns = [*scores, rewards.tolist(), rollouts.completion_mask.sum(1).tolist(), rollouts.truncated.tolist()]
    return torch.tensor(columns, dtype=torch.float32).T


def prompt_text(sample: Sample) -> str:
    """What a reward sees as the prompt: the text of the last user turn (with its <image> placeholders)."""
    return next(turn.text for turn in reversed(sample.turns) if turn.role == USER)


def batch_model_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in batch.items() if key not in LOSS_KEYS}
