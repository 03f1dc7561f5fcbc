"""Rollouts: G sampled completions per prompt through the family's own template and processor, and the
log-probabilities of those completions in the training forward.

The one entry point a generation backend implements is

    generate_completions(model, collator, prompts, settings) -> Rollouts

`prompts` are `Sample`s that end with a user turn; `Rollouts` holds, per completion (prompt i's G completions are
rows i*G .. i*G+G-1): the processor inputs of its prompt (left padded, every media key), the completion token ids
(right padded), the mask up to and including the stop token, whether it was cut at `max_completion_length`, the
log-probs recorded at sampling time and the decoded text. A vLLM backend returns the same object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vlmtune.collators.base import VLMCollator
from vlmtune.core.inference import encode_prompts
from vlmtune.datasets import Sample, load_media

# Keys of the processor output that run along the tokens: extended over the completion for the training
# forward. Token type ids get the value a trained reply token has (`VLMCollator.reply_token_type_id`); Mllama's
# cross-attention mask repeats its last row, as generation extends it.
TOKEN_TYPE_KEYS = ("token_type_ids", "mm_token_type_ids", "moe_mm_token_type_ids")
REPEATED_KEYS = ("cross_attention_mask",)


@dataclass(frozen=True)
class SamplingSettings:
    num_generations: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    max_completion_length: int = 512
    num_frames: int = 8
    greedy: bool = False  # the most likely tokens instead of samples (evaluation)


@dataclass
class Rollouts:
    prompts: list[Sample]  # one per completion (each prompt repeated num_generations times)
    prompt_inputs: dict[str, torch.Tensor]  # the processor's output for those prompts: ids, masks, media
    completion_ids: torch.Tensor  # [N, T]
    completion_mask: torch.Tensor  # [N, T] 1 up to and including the stop token
    truncated: torch.Tensor  # [N] bool: no stop token within max_completion_length
    sampling_logps: torch.Tensor  # [N, T] log-probs of the sampled tokens (logits / temperature), at sampling
    texts: list[str]  # the completions decoded, special tokens skipped, up to the stop


def stop_token_ids(collator: VLMCollator) -> list[int]:
    """The eos and the family's end-of-turn (`Family.reply_end`, text) as token ids: a reply stops at either."""
    tokenizer = collator.tokenizer
    eos = tokenizer.eos_token_id
    ids = list(eos) if isinstance(eos, list) else [eos] if eos is not None else []
    if collator.reply_end:
        reply_end = tokenizer.encode(collator.reply_end, add_special_tokens=False)
        if len(reply_end) != 1:
            raise ValueError(f"the family's end of turn {collator.reply_end!r} is not one token ({reply_end})")
        ids.append(reply_end[0])
    return sorted(set(ids))


def completion_mask(completion_ids: torch.Tensor, stop_ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(mask up to and including the first stop token, truncated: rows without a stop token)."""
    is_stop = torch.isin(completion_ids, torch.tensor(stop_ids, device=completion_ids.device))
    length = completion_ids.shape[1]
    positions = torch.arange(length, device=completion_ids.device).expand_as(completion_ids)
    first_stop = torch.where(is_stop, positions, length).min(dim=1).values
    mask = (positions <= first_stop.unsqueeze(1)).long()
    return mask, ~is_stop.any(dim=1)


@torch.no_grad()
def generate_completions(model, collator: VLMCollator, prompts: list[Sample], settings: SamplingSettings) -> Rollouts:
    """`settings.num_generations` sampled completions per prompt with `model.generate` (the transformers backend).

    A prompt's media are decoded once; the processor then encodes the prompt once per completion (repeating its
    media tensors), so every family's media tensors line up with their rows without family code. Media tokens
    are never sampled (`suppress_tokens`).
    """
    repeated = [prompt for prompt in prompts for _ in range(settings.num_generations)]
    inputs = encode_rollout_prompts(collator, prompts, settings, model.device)
    tokenizer = collator.tokenizer
    stop_ids = stop_token_ids(collator)
    was_training = model.training
    model.eval()
    try:
        output = model.generate(
            **inputs,
            **({"do_sample": False} if settings.greedy else sampling_options(settings)),
            repetition_penalty=1.0,
            num_beams=1,
            max_new_tokens=settings.max_completion_length,
            eos_token_id=stop_ids,
            pad_token_id=collator.pad_token_id,
            suppress_tokens=sorted(collator.media_token_ids) or None,
            output_logits=True,
            return_dict_in_generate=True,
        )
    finally:
        model.train(was_training)
    prompt_length = inputs["input_ids"].shape[1]
    completion_ids = output.sequences[:, prompt_length:]
    mask, truncated = completion_mask(completion_ids, stop_ids)
    logits = torch.stack(output.logits, dim=1).float() / settings.temperature  # raw logits, [N, T, V]
    sampling_logps = token_logps(logits, completion_ids)
    texts = tokenizer.batch_decode(
        completion_ids * mask + collator.pad_token_id * (1 - mask), skip_special_tokens=True
    )
    return Rollouts(repeated, inputs, completion_ids, mask, truncated, sampling_logps * mask, texts)


def sampling_options(settings: SamplingSettings) -> dict[str, Any]:
    return {
        "do_sample": True,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "top_k": 0,  # explicit: a checkpoint's generation_config (e.g. top_k=1) must not narrow the sampling
        "min_p": None,
    }


def encode_rollout_prompts(
    collator: VLMCollator, prompts: list[Sample], settings: SamplingSettings, device
) -> dict[str, torch.Tensor]:
    """The processor inputs of each prompt repeated `num_generations` times, left padded (media decoded once)."""
    repeated = [prompt for prompt in prompts for _ in range(settings.num_generations)]
    media = [load_media(prompt, num_frames=settings.num_frames) for prompt in prompts]
    repeated_media = [item for item in media for _ in range(settings.num_generations)]
    tokenizer = collator.tokenizer
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        return dict(encode_prompts(collator, repeated, media=repeated_media).to(device))
    finally:
        tokenizer.padding_side = padding_side


def replace_groups(
    collator: VLMCollator, rollouts: Rollouts, groups: list[int], fresh: Rollouts, settings: SamplingSettings
) -> Rollouts:
    """`rollouts` with its groups `groups` (prompt i's G completions) replaced by the groups of `fresh`, in order.
    The completions are re-padded and the prompts encoded again (the media tensors of a family cannot be cut
    by row in general), so the result is what one rollout of the merged prompts would hold."""
    size = settings.num_generations
    rows = [(rollouts, i) for i in range(len(rollouts.prompts))]
    for slot, group in enumerate(groups):
        rows[group * size : (group + 1) * size] = [(fresh, slot * size + k) for k in range(size)]
    length = max(source.completion_ids.shape[1] for source, _ in rows)

    def stacked(name: str, fill) -> torch.Tensor:
        values = [getattr(source, name)[i] for source, i in rows]
        return torch.stack([torch.nn.functional.pad(v, (0, length - v.shape[0]), value=fill) for v in values])

    prompts = [source.prompts[i] for source, i in rows]
    device = rollouts.completion_ids.device
    return Rollouts(
        prompts=prompts,
        prompt_inputs=encode_rollout_prompts(collator, prompts[::size], settings, device),
        completion_ids=stacked("completion_ids", collator.pad_token_id),
        completion_mask=stacked("completion_mask", 0),
        truncated=torch.stack([source.truncated[i] for source, i in rows]),
        sampling_logps=stacked("sampling_logps", 0.0),
        texts=[source.texts[i] for source, i in rows],
    )


def token_logps(logits: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[id] per position, without materialising the whole log-softmax twice."""
    return torch.gather(logits, -1, ids.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)


def training_inputs(rollouts: Rollouts, reply_token_type_id: int = 0) -> dict[str, Any]:
    """Model inputs for prompt + completion: the prompt's processor output with every key that runs along the
    tokens extended over the completion, every media key as it was."""
    prompt = rollouts.prompt_inputs
    completion, mask = rollouts.completion_ids, rollouts.completion_mask
    inputs = dict(prompt)
    inputs["input_ids"] = torch.cat([prompt["input_ids"], completion], dim=1)
    inputs["attention_mask"] = torch.cat([prompt["attention_mask"], mask.to(prompt["attention_mask"].dtype)], dim=1)
    for key in TOKEN_TYPE_KEYS:
        if key in prompt:
            fill = torch.full_like(completion, reply_token_type_id, dtype=prompt[key].dtype)
            inputs[key] = torch.cat([prompt[key], fill], dim=1)
    for key in REPEATED_KEYS:
        if key in prompt:
            last = prompt[key][:, -1:]
            inputs[key] = torch.cat([prompt[key], last.expand(-1, completion.shape[1], *last.shape[2:])], dim=1)
    return inputs


def completion_logps(
    model, inputs: dict[str, Any], completion_length: int, temperature: float, entropy: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs of the last `completion_length` tokens (and their entropies), logits / temperature."""
    logits = model(**inputs, use_cache=False).logits
    logits = logits[:, -completion_length - 1 : -1].float() / temperature
    ids = inputs["input_ids"][:, -completion_length:]
    logps = token_logps(logits, ids)
    entropies = None
    if entropy:
        with torch.no_grad():
            log_probs = torch.log_softmax(logits, dim=-1)
            entropies = -(log_probs.exp() * log_probs).sum(-1)
    return logps, entropies
