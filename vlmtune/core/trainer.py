"""The one HF `Trainer`, with per-part learning rates (projector, vision encoder), and the loss-curve picture.

It also runs the vision tower on a dummy image in text-only steps when asked (`vlmtune.core.distributed`), adds
generation-based metrics to every evaluation when `--eval_metric` is set (`vlmtune.core.evaluation`), and groups
samples by their estimated lengths under `--group_by_length` (`vlmtune.data.lengths`).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import Trainer
from transformers.trainer_pt_utils import LengthGroupedSampler

from vlmtune.core.distributed import DummyVision
from vlmtune.core.evaluation import generation_metrics, resolve_metric
from vlmtune.core.modeling import part_of
from vlmtune.supported_models import ModulePrefixes


class VLMTrainer(Trainer):
    """`transformers.Trainer` whose optimizer gives the projector and the vision encoder their own learning rate."""

    def __init__(
        self,
        *args,
        prefixes: ModulePrefixes,
        part_lrs: dict[str, float],
        vision_every_step: bool = False,
        num_frames: int = 8,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.prefixes = prefixes
        self.part_lrs = part_lrs
        self.num_frames = num_frames
        # Resolved now, so that a wrong import path fails before training rather than at the first evaluation.
        self.eval_metric = resolve_metric(self.args.eval_metric) if self.args.eval_metric else None
        self.dummy_vision = DummyVision(self.model, self.processing_class) if vision_every_step else None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        """The model's loss; with `vision_every_step`, a batch without media also runs the vision tower."""
        if self.dummy_vision is not None:
            self.dummy_vision.arm(inputs)
        try:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        finally:
            if self.dummy_vision is not None:
                self.dummy_vision.armed = False

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        """Eval loss (the Trainer's), plus the `--eval_metric` scores of greedy replies, logged together."""
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        dataset = self.eval_dataset if eval_dataset is None else eval_dataset
        if self.eval_metric is None or not hasattr(dataset, "samples"):
            return metrics
        scores = generation_metrics(
            self.model,
            getattr(self.data_collator, "collator", self.data_collator),  # --packing wraps the family collator
            dataset.samples,
            self.eval_metric,
            self.args.eval_max_new_tokens,
            self.args.per_device_eval_batch_size,
            self.num_frames,
        )
        scores = {f"{metric_key_prefix}_{name}": value for name, value in scores.items()}
        self.log(scores)
        metrics.update(scores)
        return metrics

    def _get_train_sampler(self, train_dataset=None):
        dataset = self.train_dataset if train_dataset is None else train_dataset
        batch_size = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return self.length_grouped_sampler(dataset, batch_size) or super()._get_train_sampler(train_dataset)

    def _get_eval_sampler(self, eval_dataset):
        seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
        generator = torch.Generator().manual_seed(seed)  # the same eval order every time, as the Trainer's
        sampler = self.length_grouped_sampler(eval_dataset, self.args.eval_batch_size, generator)
        return sampler or super()._get_eval_sampler(eval_dataset)

    def length_grouped_sampler(self, dataset, batch_size: int, generator=None) -> LengthGroupedSampler | None:
        """Length grouping from the dataset's estimated `lengths` (vlmtune.data.lengths), when asked and known.

        The Trainer's own samplers would find lengths by reading every item of the dataset (all images opened,
        the processor run over the whole dataset) before the first step, and they iterate a map-style dataset
        until IndexError, which a dataset that wraps its index around (LazySupervisedDataset skipping bad
        samples) never raises. transformers has no public way to hand lengths to them for a dataset that is not
        a `datasets.Dataset`, so both sampler hooks are overridden.
        """
        lengths = getattr(dataset, "lengths", None)
        if self.args.train_sampling_strategy != "group_by_length" or lengths is None:
            return None
        return LengthGroupedSampler(batch_size, lengths=lengths, generator=generator)

    def create_optimizer(self, model=None):
        if self.optimizer is not None or not self.part_lrs:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(model))
        groups: dict[tuple[float, float], list] = {}
        for name, parameter in model.named_parameters():
            if not parameter.requires_grad:
                continue
            # PEFT wraps the model: strip its prefix so the family's module paths match.
            plain = (
                name.removeprefix("base_model.model.")
                .replace(".modules_to_save.default", "")
                .replace(".original_module", "")
            )
            lr = self.part_lrs.get(part_of(plain, self.prefixes), self.args.learning_rate)
            weight_decay = self.args.weight_decay if name in decay else 0.0
            groups.setdefault((lr, weight_decay), []).append(parameter)
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        # The main learning rate's groups first: the Trainer logs the first group's rate.
        order = sorted(groups, key=lambda key: key[0] != self.args.learning_rate)
        param_groups = [{"params": groups[key], "lr": key[0], "weight_decay": key[1]} for key in order]
        self.optimizer = optimizer_cls(param_groups, **optimizer_kwargs)
        return self.optimizer


def save_loss_curve(log_history: list[dict], path: Path) -> Path | None:
    """Plot training (and eval) loss, and a GRPO run's mean reward (and held-out reward) or a DPO run's reward
    margin, against the step;
    returns the PNG's path, or None with nothing logged."""
    train = [(entry["step"], entry["loss"]) for entry in log_history if "loss" in entry]
    if not train:  # a run shorter than logging_steps: its average loss, at its last step
        train = [(entry["step"], entry["train_loss"]) for entry in log_history if "train_loss" in entry]
    evals = [(entry["step"], entry["eval_loss"]) for entry in log_history if "eval_loss" in entry]
    rewards = [(entry["step"], entry["reward"]) for entry in log_history if "reward" in entry]  # GRPO runs
    eval_rewards = [(entry["step"], entry["eval_reward"]) for entry in log_history if "eval_reward" in entry]
    reward_label = "mean reward"
    if not rewards:  # DPO runs: chosen minus rejected reward
        rewards = [(entry["step"], entry["rewards/margins"]) for entry in log_history if "rewards/margins" in entry]
        reward_label = "reward margin (chosen - rejected)"
    if not train and not evals:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for points, label in ((train, "train loss"), (evals, "eval loss")):
        if points:
            axes.plot(*zip(*points, strict=True), marker="." if len(points) < 50 else None, label=label)
    axes.set_xlabel("step")
    axes.set_ylabel("loss")
    axes.legend(loc="upper left")
    if rewards:  # the mean reward on its own scale, on the right
        reward_axes = axes.twinx()
        reward_axes.plot(*zip(*rewards, strict=True), color="tab:green", marker="." if len(rewards) < 50 else None)
        if eval_rewards:  # held-out reward (greedy replies to --eval_data_path)
            reward_axes.plot(*zip(*eval_rewards, strict=True), color="tab:olive", marker="o", linestyle="--")
            reward_label += " (dashed: eval)"
        reward_axes.set_ylabel(reward_label, color="tab:green")
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def is_complete_checkpoint(folder: Path) -> bool:
    """A checkpoint the Trainer finished writing: it writes `trainer_state.json` last, after weights, optimizer
    and RNG states, so a folder cut short by a kill lacks it (or holds it truncated)."""
    state = folder / "trainer_state.json"
    try:
        json.loads(state.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return any(folder.glob("*.safetensors")) or any(folder.glob("*.bin"))


def last_complete_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete `checkpoint-<step>` folder of a run, passing over any that a kill cut short."""
    steps = []
    for folder in Path(output_dir).glob("checkpoint-*"):
        step = folder.name.removeprefix("checkpoint-")
        if folder.is_dir() and step.isdigit():
            steps.append((int(step), folder))
    for _, folder in sorted(steps, reverse=True):
        if is_complete_checkpoint(folder):
            return folder
    return None
