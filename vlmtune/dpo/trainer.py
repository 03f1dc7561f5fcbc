"""The preference step on vlmtune's one Trainer: both replies of each pair in one forward, the loss of
`vlmtune.dpo.loss`, TRL's metric names in the Trainer's log.

A batch (`vlmtune.dpo.data.PairCollator`) holds the B chosen conversations then the B rejected ones, encoded and
padded by the family's collator, so `labels` mark exactly each reply and its end of turn. A reply's log-prob is
the sum over its trained tokens of log softmax(logits)[label] (the logits shifted by one, as the model's own loss
does). The reference is the same model with its adapters disabled (LoRA), a frozen copy (full finetuning), or
log-probs computed once before training (`--precompute_ref_log_probs`).
"""

from __future__ import annotations

import contextlib
import inspect
from collections import defaultdict
from typing import Any

import torch

from vlmtune.collators.base import IGNORE_INDEX, SEQUENCE_KEYS
from vlmtune.core.trainer import VLMTrainer
from vlmtune.dpo.loss import LossSettings, PairLogps, preference_loss
from vlmtune.grpo.rollouts import token_logps

# Batch entries that are the loss's, not the model's.
LOSS_KEYS = ("labels", "ref_chosen_logps", "ref_rejected_logps")
# Each modality's pixel tensor and the model method that encodes it (transformers' names for every VLM that takes
# precomputed `mm_encoder_outputs`).
MEDIA_ENCODERS = {
    "image": ("pixel_values", "get_image_features"),
    "video": ("pixel_values_videos", "get_video_features"),
}


def reply_logps(model, inputs: dict[str, Any], share_media: bool = True) -> tuple[PairLogps, torch.Tensor]:
    """(each reply's summed log-prob and trained-token count, the mean logit over each side's trained tokens [2]).

    Only the positions from the batch's first trained token on go through the LM head (`logits_to_keep`, where
    the model takes it): the replies sit at the end of the conversations, and the head over the whole vocabulary
    at every prompt position is most of a small model's work. With `share_media`, each pair's prompt media go
    through the vision encoder once (`media_encoded_once`)."""
    if "pair_sources" in inputs:
        return shared_prompt_logps(model, inputs)
    labels = inputs["labels"]
    model_inputs = {key: value for key, value in inputs.items() if key not in LOSS_KEYS}
    if share_media:
        model_inputs = media_encoded_once(model, model_inputs) or model_inputs
    trained = labels[:, 1:] != IGNORE_INDEX
    first = int(trained.float().argmax(1).min()) if takes_logits_to_keep(model) else 0
    if first:
        model_inputs["logits_to_keep"] = labels.shape[1] - first
    logits = model(**model_inputs, use_cache=False).logits[:, -(labels.shape[1] - first) : -1].float()
    targets, mask = labels[:, first + 1 :], trained[:, first:]
    logps = token_logps(logits, targets.clamp(min=0)) * mask  # padding and prompt tokens count 0
    sums, counts = logps.sum(1), mask.sum(1)
    pairs = labels.shape[0] // 2
    with torch.no_grad():
        token_means = logits.mean(-1)
        side_logits = torch.stack([token_means[:pairs][mask[:pairs]].mean(), token_means[pairs:][mask[pairs:]].mean()])
    return PairLogps(sums[:pairs], sums[pairs:], counts[:pairs], counts[pairs:]), side_logits


def shared_prompt_logps(model, inputs: dict[str, Any]) -> tuple[PairLogps, torch.Tensor]:
    """`reply_logps` of a batch of one row per pair (`vlmtune.dpo.data.SharedPromptCollator`): the logits at each
    trained token's source position, log-softmaxed at its label, summed per side."""
    model_inputs = {k: v for k, v in inputs.items() if k not in LOSS_KEYS and not k.startswith("pair_")}
    allowed = inputs["pair_mask"]
    dtype = base_model(model).dtype
    # An additive mask: eager adds it to the scores, sdpa takes it as is (a boolean one only sdpa would read).
    model_inputs["attention_mask"] = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill(
        ~allowed, torch.finfo(dtype).min
    )
    sources, targets, sides = inputs["pair_sources"], inputs["pair_targets"], inputs["pair_sides"]
    first = int(sources[sides >= 0].min()) if takes_logits_to_keep(model) else 0
    if first:
        model_inputs["logits_to_keep"] = inputs["input_ids"].shape[1] - first
    logits = model(**model_inputs, use_cache=False).logits
    at = (sources - first).clamp(min=0)  # padding entries (side -1) point anywhere in the row; they count 0
    picked = torch.gather(logits, 1, at.unsqueeze(-1).expand(-1, -1, logits.shape[-1])).float()
    chosen, rejected = sides == 0, sides == 1
    logps = token_logps(picked, targets)
    with torch.no_grad():
        token_means = picked.mean(-1)
        side_logits = torch.stack([token_means[chosen].mean(), token_means[rejected].mean()])
    pairs = PairLogps((logps * chosen).sum(1), (logps * rejected).sum(1), chosen.sum(1), rejected.sum(1))
    return pairs, side_logits


def takes_logits_to_keep(model) -> bool:
    """Whether the model's forward takes `logits_to_keep` (transformers' generation models do)."""
    return "logits_to_keep" in inspect.signature(type(base_model(model)).forward).parameters


def base_model(model):
    """The transformers model under the DDP and PEFT wrappers."""
    if isinstance(model, torch.nn.parallel.DistributedDataParallel):
        model = model.module
    return model.get_base_model() if hasattr(model, "get_base_model") else model


# Model classes whose media encoding is more than per-media pooled features (found at their first batch).
UNSHARED_MEDIA: set[type] = set()


def media_encoded_once(model, inputs: dict[str, Any]) -> dict[str, Any] | None:
    """The forward's inputs with the pixels replaced by their encoding (`mm_encoder_outputs`, a public forward
    argument of transformers' VLMs), each pair's media encoded once and used by both its rows; None where the
    model does not take it or the two halves' media differ (the plain forward then encodes them all).

    A pair batch holds the chosen rows then the rejected rows and both share the prompt, so every media tensor
    is two equal halves (checked here, not assumed): the encoder runs on the first half and its per-media
    outputs are repeated for the second. What else the forward needs from the media (`image_grid_thw` for
    Qwen's 3-D positions, `image_sizes`) stays whole. `tests/test_dpo_logps.py` checks the log-probs for every
    family against a plain forward of each conversation alone."""
    base = base_model(model)
    if type(base) in UNSHARED_MEDIA or "mm_encoder_outputs" not in inspect.signature(type(base).forward).parameters:
        return None
    encoded, pixel_keys = {}, []
    for modality, (pixel_key, method) in MEDIA_ENCODERS.items():
        if inputs.get(pixel_key) is None:
            continue
        # The inner model's method, which its forward calls (some outer wrappers drop arguments, VideoLLaMA3's)
        encode = getattr(getattr(base, "model", None), method, None) or getattr(base, method, None)
        halves = first_halves(encode, inputs)
        output = None if halves is None else encode(**halves, return_dict=True)
        if output is None or not only_pooled(output):
            UNSHARED_MEDIA.add(type(base))  # e.g. Qwen3-VL's deepstack features: the plain forward from now on
            return None
        pooled = output.pooler_output
        output.pooler_output = torch.cat([pooled, pooled]) if isinstance(pooled, torch.Tensor) else (*pooled, *pooled)
        encoded[modality] = output
        pixel_keys.append(pixel_key)
    if not encoded:
        return None
    return {**{k: v for k, v in inputs.items() if k not in pixel_keys}, "mm_encoder_outputs": encoded}


def first_halves(encode, inputs: dict[str, Any]) -> dict[str, torch.Tensor] | None:
    """The first half of every batch tensor the encoder takes; None when a half differs from the other, or an
    argument the encoder needs is not in the batch."""
    if encode is None:
        return None
    halves = {}
    for key, parameter in inspect.signature(encode).parameters.items():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL) or key in SEQUENCE_KEYS:
            continue
        value = inputs.get(key)
        if not isinstance(value, torch.Tensor):
            if parameter.default is parameter.empty:
                return None
            continue
        half = value.shape[0] // 2
        if value.shape[0] % 2 or not torch.equal(value[:half], value[half:]):
            return None
        halves[key] = value[:half]
    return halves


def only_pooled(output) -> bool:
    """Whether an encoder output is per-media features only (what the forward merges into the text)."""
    given = {key for key, value in output.items() if value is not None}
    return output.get("pooler_output") is not None and given <= {"pooler_output", "last_hidden_state", "hidden_states"}


class DPOTrainer(VLMTrainer):
    def __init__(
        self,
        *args,
        loss_settings: LossSettings,
        reference: torch.nn.Module | None = None,
        share_media: bool = False,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.loss_settings = loss_settings
        self.reference = None if reference is None else reference.to(self.args.device)
        self.model_accepts_loss_kwargs = False  # a mean over pairs: the Trainer divides by the accumulation steps
        self.metrics: dict[str, list[float]] = defaultdict(list)
        self.eval_metrics: dict[str, float] = {}  # the last evaluation's pair metrics
        # Encoding the media outside the model's own forward would miss ZeRO-3's / FSDP's parameter gathering.
        self.share_media = share_media and not (self.is_deepspeed_enabled or self.is_fsdp_enabled)

    @torch.no_grad()
    def reference_logps(self, inputs: dict[str, Any]) -> PairLogps:
        """The reference's log-probs of the batch: given (precomputed), a frozen copy, or adapters disabled."""
        if "ref_chosen_logps" in inputs:
            return PairLogps(inputs["ref_chosen_logps"], inputs["ref_rejected_logps"], None, None)
        if self.reference is not None:
            return reply_logps(self.reference, inputs, self.share_media)[0]
        model = self.accelerator.unwrap_model(self.model)
        with model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext():
            return reply_logps(self.model, inputs, self.share_media)[0]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        policy, side_logits = reply_logps(model, inputs, self.share_media)
        reference = self.reference_logps(inputs) if self.loss_settings.needs_reference else None
        if reference is not None:  # token counts (IPO's normalisation) are the policy's: the same tokens
            reference.chosen_tokens, reference.rejected_tokens = policy.chosen_tokens, policy.rejected_tokens
        loss, (chosen_rewards, rejected_rewards) = preference_loss(policy, reference, self.loss_settings)
        prefix = "" if model.training else "eval_"
        self.record(prefix, policy, chosen_rewards, rejected_rewards, side_logits)
        return (loss, None) if return_outputs else loss

    def evaluate(self, eval_dataset=None, ignore_keys=None, metric_key_prefix="eval"):
        """The eval loss with the eval_* pair metrics (also in eval_results.json via `save_metrics`)."""
        self.eval_metrics = {}
        metrics = super().evaluate(eval_dataset, ignore_keys, metric_key_prefix)
        return {**metrics, **self.eval_metrics}

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        """Evaluation: the preference loss (and its metrics, logged as eval_*); there are no logits to return."""
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad():
            loss = self.compute_loss(model, inputs)
        return loss.detach(), None, None

    def record(self, prefix: str, policy: PairLogps, chosen_rewards, rejected_rewards, side_logits) -> None:
        """TRL's DPO metrics, averaged over the pairs of all processes."""
        gather = self.accelerator.gather_for_metrics
        chosen_rewards, rejected_rewards = gather(chosen_rewards), gather(rejected_rewards)
        values = {
            "rewards/chosen": chosen_rewards.mean(),
            "rewards/rejected": rejected_rewards.mean(),
            "rewards/margins": (chosen_rewards - rejected_rewards).mean(),
            "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean(),
            "logps/chosen": gather(policy.chosen.detach()).mean(),
            "logps/rejected": gather(policy.rejected.detach()).mean(),
            "logits/chosen": side_logits[0],
            "logits/rejected": side_logits[1],
        }
        for name, value in values.items():
            self.metrics[prefix + name].append(value.item())

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        """The Trainer's log (progress bar, report_to, loss curve) with the pair metrics averaged since the last
        (training ones with the training loss, eval_* ones with the eval loss)."""
        for key, evaluating in (("loss", False), ("eval_loss", True)):
            if key in logs:
                names = [name for name in self.metrics if name.startswith("eval_") == evaluating]
                averages = {name: sum(self.metrics[name]) / len(self.metrics[name]) for name in names}
                logs = {**logs, **averages}
                for name in names:
                    del self.metrics[name]
                if evaluating:
                    self.eval_metrics = averages
        super().log(logs, start_time)

    @torch.no_grad()
    def precompute_reference(self, dataset, collator, batch_size: int) -> torch.Tensor:
        """Every pair's reference log-probs ([N, 2]: chosen, rejected), one pass before training."""
        rows = []
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(dataset), batch_size):
                items = [dataset[i] for i in range(start, min(start + batch_size, len(dataset)))]
                batch = self._prepare_inputs(collator(items))
                reference = self.reference_logps(batch)
                rows.append(torch.stack([reference.chosen, reference.rejected], dim=1).cpu())
        finally:
            self.model.train(was_training)
        return torch.cat(rows)
