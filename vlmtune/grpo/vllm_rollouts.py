"""GRPO rollouts sampled by vLLM (`vlmtune grpo --use_vllm`): the same `Rollouts` as the transformers backend,
whether vLLM runs in the training process (`--vllm_mode colocate`) or in `vlmtune rollout-server` (`server`).

    from vlmtune.grpo.vllm_rollouts import generate_completions_vllm, push_weights, rollout_engine
    engine = rollout_engine(model_folder, entry, max_model_len=4096)     # colocate: records processed log-probs
    engine = RolloutClient.connect(host, port, timeout, entry)           # or server mode (grpo/rollout_client.py)
    rollouts = generate_completions_vllm(engine, collator, prompts, settings, seed)
    push_weights(engine, model)                                          # after each optimizer step

vLLM renders nothing itself: each prompt is the family's template rendered as for the transformers backend,
with its images and video frames as vLLM's multimodal data; vLLM expands the media placeholders with the
family's own processor. The processor inputs the training forward needs (`prompt_inputs`) come from
`encode_prompts`, exactly as in `generate_completions`, so the loss sees the same tokens whichever backend
sampled. The log-probs vLLM records are "processed" ones (`logprobs_mode="processed_logprobs"`): log-softmax of
the logits after the media-token bias and division by the temperature (and, with top_p < 1, renormalised over
the nucleus, as TRL's vLLM path records them). They are the log-probs of the distribution sampled from, so they
exceed the training forward's by the media tokens' probability mass (-log(1 - p_media); 3e-3 on the tiny
models' ~1k-token vocabularies, ~0 on a trained model), where the transformers backend records the logits
before its suppression. The loss recomputes its own log-probs in the training forward; these serve the
`sampling/logp_abs_diff` metric and the parity test (tests/test_grpo_vllm.py).
"""

from __future__ import annotations

import torch

from vlmtune.collators.base import VLMCollator
from vlmtune.core.inference import encode_prompts, prompt_text
from vlmtune.datasets import Sample, load_media
from vlmtune.grpo.rollouts import Rollouts, SamplingSettings, completion_mask, stop_token_ids
from vlmtune.serving.vllm_backend import (
    import_vllm,
    media_limits,
    media_token_bias,
    model_impl_of,
    multi_modal_data,
    start_engine,
)
from vlmtune.supported_models import ModelEntry


def sampling_options(collator: VLMCollator, settings: SamplingSettings, seed: int | None = None) -> dict:
    """vLLM's sampling parameters for G completions per prompt, stopping where the transformers backend stops, as
    plain JSON values (the rollout server receives them over HTTP); `seed`: the request's own RNG stream, so a
    resumed run samples as the uninterrupted one (None: vLLM's engine-wide RNG)."""
    return {
        "n": settings.num_generations,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
        "top_k": 0,  # no top-k, whatever the checkpoint's generation_config says (as the transformers backend)
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "max_tokens": settings.max_completion_length,
        "stop_token_ids": stop_token_ids(collator),
        "logprobs": 0,  # the sampled token's log-prob only
        "logit_bias": {str(token): bias for token, bias in (media_token_bias(collator) or {}).items()} or None,
        "seed": seed,
    }


def sampling_params(options: dict):
    """`vllm.SamplingParams` of `sampling_options`' dict (JSON turned the bias's token ids into strings)."""
    vllm = import_vllm()
    bias = options.get("logit_bias")
    return vllm.SamplingParams(**{**options, "logit_bias": {int(t): b for t, b in bias.items()} if bias else None})


def sample_with_engine(llm, requests: list[dict], options: dict, add_bos: bool) -> list[list[tuple[list, list]]]:
    """Per request, its completions as (token ids, the sampled tokens' log-probs): `llm` (a `vllm.LLM`) sampling
    `requests` (prompt text + multi_modal_data) with `sampling_options`. The one call both modes make: in the
    training process (colocate) or in `vlmtune rollout-server` (server)."""
    outputs = llm.generate(
        requests, sampling_params(options), use_tqdm=False, tokenization_kwargs={"add_special_tokens": add_bos}
    )
    sampled = []
    for output in outputs:
        completions = []
        for completion in output.outputs:
            ids = list(completion.token_ids)
            logps = [step[token].logprob for step, token in zip(completion.logprobs, ids, strict=True)]
            completions.append((ids, logps))
        sampled.append(completions)
    return sampled


def reload_engine_weights(llm, weights) -> None:
    """Load full weights (name -> tensor, checkpoint format) into `llm` in place and drop everything computed with
    the old ones.

    `LLM.collective_rpc("reload_weights", ...)` (a public `LLM` method calling the worker's `reload_weights`,
    vLLM's in-place reload) takes weights in the checkpoint's format and redoes what vLLM does after loading a
    checkpoint: on CPU its linear layers keep only a repacked copy, so the model's own `load_weights` alone
    cannot refill them. Then the caches of results of the old weights are dropped, as vLLM's engine says to do
    when weights change: the encoder cache (image features of the old vision tower, on the scheduler's side
    too: `llm.llm_engine.reset_encoder_cache`, which `LLM` itself does not wrap) and the prompts' KV
    (`reset_prefix_cache`)."""
    items = weights.items() if hasattr(weights, "items") else weights
    llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(items), "is_checkpoint_format": True})
    llm.llm_engine.reset_encoder_cache()
    llm.reset_prefix_cache()


class ColocatedEngine:
    """`--vllm_mode colocate`: a `vllm.LLM` in the training process; weights are handed over, not serialized.
    The same two calls as `vlmtune.grpo.rollout_client.RolloutClient` (server mode)."""

    def __init__(self, llm):
        self.llm = llm

    def sample(self, requests: list[dict], options: dict, add_bos: bool) -> list[list[tuple[list, list]]]:
        return sample_with_engine(self.llm, requests, options, add_bos)

    def load_weights(self, weights: dict[str, torch.Tensor]) -> None:
        reload_engine_weights(self.llm, weights)


def rollout_requests(collator: VLMCollator, prompts: list[Sample], media: list) -> tuple[list[dict], bool]:
    """(vLLM's prompt dicts: each prompt rendered as `encode_prompts` renders it, with its media; whether the
    tokenizer adds bos: as in training, no second bos where the template writes one)."""
    requests = []
    for sample, (images, videos) in zip(prompts, media, strict=True):
        text = prompt_text(collator, sample)
        data = multi_modal_data(images, videos)
        requests.append({"prompt": text, "multi_modal_data": data} if data else {"prompt": text})
    return requests, collator.adds_bos(requests[0]["prompt"])


@torch.no_grad()
def generate_completions_vllm(
    engine, collator: VLMCollator, prompts: list[Sample], settings: SamplingSettings, seed: int | None = None
) -> Rollouts:
    """`settings.num_generations` completions per prompt sampled by `engine` (a `ColocatedEngine` from
    `rollout_engine`, or a `RolloutClient` of a rollout server: both record processed log-probs); fields as
    `generate_completions`'; `seed` makes the sampling repeatable (see `sampling_options`)."""
    media = [load_media(sample, num_frames=settings.num_frames) for sample in prompts]
    requests, add_bos = rollout_requests(collator, prompts, media)
    sampled = engine.sample(requests, sampling_options(collator, settings, seed), add_bos)
    completions = [completion for per_prompt in sampled for completion in per_prompt]  # prompt-major, G each
    if len(completions) != len(prompts) * settings.num_generations:
        raise RuntimeError(f"vLLM returned {len(completions)} completions for {len(prompts)} prompts")

    repeated = [prompt for prompt in prompts for _ in range(settings.num_generations)]
    repeated_media = [item for item in media for _ in range(settings.num_generations)]
    tokenizer = collator.tokenizer
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        inputs = dict(encode_prompts(collator, repeated, settings.num_frames, media=repeated_media))
    finally:
        tokenizer.padding_side = padding_side

    length = max(1, max(len(ids) for ids, _ in completions))
    completion_ids = torch.full((len(completions), length), collator.pad_token_id, dtype=torch.long)
    sampling_logps = torch.zeros(len(completions), length)
    within = torch.zeros(len(completions), length, dtype=torch.long)
    for row, (ids, logps) in enumerate(completions):
        completion_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        sampling_logps[row, : len(ids)] = torch.tensor(logps, dtype=torch.float32)
        within[row, : len(ids)] = 1
    # Up to and including the first stop token, and never into the padding (the pad id may be a stop id).
    stop_ids = stop_token_ids(collator)
    up_to_stop, _ = completion_mask(completion_ids, stop_ids)
    mask = up_to_stop * within
    is_stop = torch.isin(completion_ids, torch.tensor(stop_ids)) & within.bool()
    truncated = ~is_stop.any(dim=1)
    texts = tokenizer.batch_decode(
        completion_ids * mask + collator.pad_token_id * (1 - mask), skip_special_tokens=True
    )
    return Rollouts(repeated, inputs, completion_ids, mask, truncated, sampling_logps * mask, texts)


def rollout_engine(model_folder: str, entry: ModelEntry, max_model_len: int, dtype: str = "auto") -> ColocatedEngine:
    """An in-process vLLM engine on a full model folder that records processed log-probs (see the docstring)."""
    return ColocatedEngine(start_rollout_llm(model_folder, entry, max_model_len, dtype))


def start_rollout_llm(model_folder: str, entry: ModelEntry, max_model_len: int, dtype: str = "auto"):
    """The `vllm.LLM` of rollouts (this process): the family's media limits and implementation, processed
    log-probs."""
    return start_engine(
        model_folder,
        max_model_len=max_model_len,
        dtype=dtype,
        limits=media_limits(entry.family),
        model_impl=model_impl_of(entry.family_id),
        logprobs_mode="processed_logprobs",
    )


@torch.no_grad()
def policy_weights(model) -> dict[str, torch.Tensor]:
    """The policy's full weights in the released key layout (what vLLM loads): a PEFT model's LoRA deltas added
    to copies of their base weights and its fully trained modules (`modules_to_save`) in place of the
    originals, without changing the training model; a plain model's parameters as they are."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer
    from transformers.core_model_loading import revert_weight_conversion

    from vlmtune.loaders.released import released_layout

    if not isinstance(model, PeftModel):
        base, state = model, dict(model.state_dict())
    else:
        base, adapter = model.get_base_model(), model.active_adapter
        deltas = {
            f"{name}.weight": layer.get_delta_weight(adapter)
            for name, layer in base.named_modules()
            if isinstance(layer, LoraLayer) and adapter in layer.lora_A
        }
        state = {}
        for name, tensor in base.state_dict().items():
            if "lora_" in name or ".original_module." in name:
                continue
            name = name.replace(".base_layer.", ".").replace(f".modules_to_save.{adapter}.", ".")
            state[name] = tensor + deltas[name].to(tensor.dtype) if name in deltas else tensor
    with released_layout(base):  # the family's whole conversion mapping, as save_released writes
        return revert_weight_conversion(base, state)


def push_weights(engine, model) -> None:
    """Load the policy's current weights (`policy_weights`: LoRA merged, released key layout) into `engine`: a
    `ColocatedEngine` (handed over in this process) or a `RolloutClient` (sent to the rollout server, which loads
    them with the same `reload_engine_weights`). Under DeepSpeed ZeRO-3 the caller gathers the parameters
    first (`vlmtune.core.distributed.gathered_parameters`)."""
    engine.load_weights(policy_weights(model))
