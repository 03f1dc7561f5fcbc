"""GRPO rollouts sampled by vLLM give the training forward the log-probs vLLM recorded (make test-vllm).

Runs with the separate vLLM environment's Python (scripts/setup_vllm_venv.sh), one engine at a time, in this
process, fp32 on CPU. At step 0 the engine and the trained model hold the same weights, so the log-probs of each
vLLM-sampled completion computed by GRPOTrainer's training forward (`training_inputs` + `completion_logps`) must
equal the ones vLLM reported while sampling: a misplaced image, a prompt rendered or tokenized differently, a
wrong stop or a temperature applied differently all break it.
"""

from __future__ import annotations

import copy
import gc
from contextlib import contextmanager

import pytest
import torch

from tests.grpo_vllm_helpers import TOLERANCE, check_rollouts, digit_prompts, logp_differences
from tests.test_grpo import PLUGIN, grpo_argv
from vlmtune.arguments import ModelArguments
from vlmtune.core.modeling import checkpoint_path, set_trainable
from vlmtune.core.outputs import load_for_inference
from vlmtune.grpo.arguments import parse_grpo_args
from vlmtune.grpo.rollouts import (
    SamplingSettings,
    completion_logps,
    training_inputs,
)
from vlmtune.grpo.run import grpo

pytestmark = pytest.mark.vllm
vllm = pytest.importorskip("vllm")

from vlmtune.grpo.vllm_rollouts import generate_completions_vllm, push_weights, rollout_engine  # noqa: E402

FAMILIES = ["qwen2-vl", "llava-1.5"]  # llava-1.5: its transformers key layout differs from the released one


def tiny(family_id: str):
    # The entry checked against its files: a conventional family's parts and end-of-turn are derived there.
    model, processor, entry = load_for_inference(f"tiny-{family_id}")
    collator = entry.family.collator(processor, entry.family.reply_end, 1024)
    return entry, model.float().eval(), collator


@contextmanager
def engine(entry):
    llm = rollout_engine(checkpoint_path(entry), entry, max_model_len=1024, dtype="float32")
    try:
        yield llm
    finally:
        del llm
        gc.collect()


SETTINGS = SamplingSettings(num_generations=3, temperature=0.9, max_completion_length=8)


@pytest.mark.parametrize("family_id", FAMILIES)
def test_vllm_sampled_completions_get_the_vllm_logps_in_the_training_forward(family_id, tmp_path):
    entry, model, collator = tiny(family_id)
    prompts = digit_prompts(tmp_path)
    with engine(entry) as llm:
        rollouts = generate_completions_vllm(llm, collator, prompts, SETTINGS)
    check_rollouts(rollouts, collator, len(prompts), SETTINGS)
    difference, with_media = logp_differences(model, collator, rollouts, SETTINGS.temperature)
    print(
        f"{family_id}: max |logp - vLLM logp| = {difference.max():.2e} (media removed), {with_media.max():.2e} (not)"
    )
    assert difference.max() <= TOLERANCE


@pytest.mark.parametrize(("family_id", "llm_mode"), [(f, "lora") for f in FAMILIES] + [("qwen2-vl", "full")])
def test_after_an_optimizer_step_the_pushed_weights_sample_as_the_updated_model(family_id, llm_mode, tmp_path):
    """LoRA + the projector trained fully (vlmtune's default; a PEFT model) or full finetuning, one AdamW step on
    the sampled completions' likelihood, `push_weights`: the engine's log-probs are then the updated model's."""
    entry, model, collator = tiny(family_id)
    before = copy.deepcopy(model)
    arguments = ModelArguments(model_id=entry.model_id, llm_mode=llm_mode)
    model = set_trainable(model, entry.family.modules, arguments, False)
    assert hasattr(model, "peft_config") == (llm_mode == "lora")
    prompts = digit_prompts(tmp_path)
    with engine(entry) as llm:
        rollouts = generate_completions_vllm(llm, collator, prompts, SETTINGS)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-2)
        model.train()
        inputs = training_inputs(rollouts, collator.reply_token_type_id)
        logps, _ = completion_logps(model, inputs, rollouts.completion_ids.shape[1], SETTINGS.temperature)
        (-(logps * rollouts.completion_mask).sum()).backward()
        optimizer.step()
        model.eval()
        push_weights(llm, model)
        pushed = generate_completions_vllm(llm, collator, prompts, SETTINGS)
    check_rollouts(pushed, collator, len(prompts), SETTINGS)
    difference, _ = logp_differences(model, collator, pushed, SETTINGS.temperature)
    stale, _ = logp_differences(before, collator, pushed, SETTINGS.temperature)
    print(f"{family_id} ({llm_mode}) step: max |logp - vLLM| {difference.max():.2e}, old weights {stale.max():.2e}")
    assert difference.max() <= TOLERANCE
    assert stale.max() > 100 * TOLERANCE, "the step did not change the log-probs; the test would be empty"


def test_grpo_use_vllm_trains_two_steps_with_the_engine_sampling(tmp_path):
    """`vlmtune grpo --use_vllm` on tiny-qwen2-vl: the engine samples every rollout, holds the weights of each
    optimizer step (pushed before steps 0 and 1), and the trained parameters change."""
    (tmp_path / "rewards.py").write_text(PLUGIN)
    argv = grpo_argv(tmp_path, "--use_vllm", "true", "--vllm_max_model_len", "1024", "--reward_funcs", "even_tokens")
    trainer = grpo(*parse_grpo_args(argv))
    assert trainer.llm is not None and trainer.pushed_step == 1
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert len(history) == 2
    # Training forward vs vLLM's log-probs, mean per token: the media tokens' mass (see TOLERANCE) and nothing else.
    assert all(entry["sampling/logp_abs_diff"] < 1e-2 for entry in history)
    rows = (tmp_path / "out" / "completions.jsonl").read_text().splitlines()
    assert len(rows) == 2 * 2 * 4  # two steps of two prompts with four completions each
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


def test_use_vllm_refuses_a_family_vllm_does_not_implement_in_one_line(tmp_path, capsys):
    from vlmtune.apps import cli

    (tmp_path / "rewards.py").write_text(PLUGIN)
    argv = grpo_argv(tmp_path, "--use_vllm", "true", "--model_id", "tiny-llama-3.2-vision")
    assert cli.main(["grpo", *argv]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert errors == [
        "vlmtune grpo: error: --use_vllm: vLLM does not implement llama-3.2-vision (docs/serving.md); drop --use_vllm"
    ]
