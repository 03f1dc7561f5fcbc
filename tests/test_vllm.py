"""What vlmtune trains loads and answers in vLLM with transformers' greedy tokens (make test-vllm).

Runs with the separate vLLM environment's Python (scripts/setup_vllm_venv.sh), one engine at a time, in
this process: per family, a few LoRA steps on the tiny model, `vlmtune merge`, then the merged folder in
vLLM and in transformers on a prompt with an image.
"""

from __future__ import annotations

import gc
import json

import pytest
import torch

from tests.conftest import digit_png
from tests.test_train import run
from vlmtune.datasets import Sample, Turn
from vlmtune.inference import prompt_of
from vlmtune.merge import merge
from vlmtune.outputs import load_for_inference

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm")

from vlmtune.vllm_backend import start_engine, vllm_generate  # noqa: E402  (after the importorskip)

NEW_TOKENS = 8
# Families vLLM 0.32 implements natively whose tiny models it runs; the rest are listed in README with reasons.
VLLM_FAMILIES = ["llava-1.5", "qwen2-vl", "qwen2.5-vl"]


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


def image_question(image: str) -> Sample:
    return Sample([Turn("user", "<image>\nWhich digit?"), Turn("assistant", "")], images=[image])


@torch.no_grad()
def hf_greedy_ids(model, collator, sample: Sample, new_tokens: int = NEW_TOKENS) -> list[int]:
    """transformers' greedy continuation of one sample, as token ids (the prompt as vlmtune chat builds it)."""
    prompt, images, videos = prompt_of(collator, sample)
    inputs = collator.run_processor(**collator.processor_inputs(prompt, images, videos))
    model.eval()
    output = model.generate(**inputs, max_new_tokens=new_tokens, do_sample=False)
    return output[0, inputs["input_ids"].shape[1] :].tolist()


def engine_ids(folder, collator, sample: Sample, **engine_kwargs) -> list[int]:
    llm = start_engine(folder, max_model_len=1024, dtype="float32", **engine_kwargs)
    try:
        return vllm_generate(llm, collator, [sample], NEW_TOKENS)[0].token_ids
    finally:
        del llm
        gc.collect()


@pytest.mark.parametrize("family_id", VLLM_FAMILIES)
def test_merged_lora_output_answers_in_vllm_as_in_transformers(family_id, digits, tmp_path):
    _, adapter = run(tmp_path, digits, f"tiny-{family_id}", max_steps=2, batch_size=2, learning_rate=1e-3)
    merged = merge(adapter, tmp_path / "merged")
    model, processor, entry = load_for_inference(str(merged))
    collator = entry.family.collator(processor, entry.family.reply_end)
    sample = image_question(str(digits.parent / "d2.png"))
    expected = hf_greedy_ids(model, collator, sample)
    assert len(expected) >= 2
    assert engine_ids(merged, collator, sample) == expected
