"""Qwen3-VL, Qwen3.5 and Qwen4-Exp specifics: frame timestamps, think blocks, LoRA on fused MoE experts."""

from __future__ import annotations

import logging

import pytest
import torch

from tests.conftest import digit_png, resolved_entry, resolved_family
from tests.test_masking import conversation, encode
from tests.test_train import digits_data, run  # noqa: F401  (a fixture, used as an argument below)
from vlmtune.arguments import ModelArguments
from vlmtune.collators.base import IGNORE_INDEX
from vlmtune.core.modeling import checkpoint_path, expert_parameters, set_trainable
from vlmtune.datasets import Sample
from vlmtune.errors import ArgumentError, BadSample
from vlmtune.loaders.qwen4_exp import LOW, XHIGH
from vlmtune.supported_models import FAMILIES

MOE_FAMILIES = [
    "qwen3-vl-moe",
    "qwen3.5-moe",
    "qwen4-exp",
    "aria",
    "glm4v-moe",
    "glm5-next",
    "mistral-large4",
    "step3.7",
]
MOE_FAMILIES += ["ernie4.5-vl", "inkling2", "minimax-m3"]  # issue 19, batch D
MOE_FAMILIES += ["muse-spark", "qwen3-omni", "dots3-note"]  # issue 19, batch E


def collator_of(family_id, load_tiny):
    _, processor = load_tiny(f"tiny-{family_id}")
    family = resolved_family(family_id)
    return family.collator(processor, family.reply_end)


@pytest.mark.parametrize("family_id", ["qwen3-vl", "qwen3.5"])
def test_video_frames_are_time_stamped_from_the_decoded_frames(family_id, load_tiny, video):
    collator = collator_of(family_id, load_tiny)
    sample = Sample(conversation("<video>\nWhat happens?", "It gets brighter."), videos=[video], source="v")
    text = collator.tokenizer.decode(encode(collator, sample, num_frames=4)["input_ids"])
    # The clip has 10 frames at 5 fps; frames 0, 3, 6, 9 are sampled and stamped per pair: (0+3)/2/5 and (6+9)/2/5.
    assert "<0.3 seconds>" in text and "<1.5 seconds>" in text and "<0.0 seconds>" not in text


@pytest.mark.parametrize("family_id", ["qwen3-vl", "qwen3.5"])
def test_no_default_system_message(family_id, load_tiny):
    collator = collator_of(family_id, load_tiny)
    messages = collator.to_messages(Sample(conversation("Hi?", "Hello.")))
    assert collator.render(messages).startswith("<|im_start|>user\nHi?<|im_end|>\n")


@pytest.mark.parametrize("family_id", ["qwen3.5", "qwen3.5-moe"])
def test_qwen3_5_trains_replies_not_the_think_block(family_id, load_tiny):
    collator = collator_of(family_id, load_tiny)
    sample = Sample(conversation("Hi?", "Hello.", "How are you?", "Fine."), source="s")
    features = encode(collator, sample)
    trained = collator.tokenizer.decode(features["input_ids"][features["labels"] != IGNORE_INDEX])
    assert trained == "Hello.<|im_end|>Fine.<|im_end|>"
    # Inference prompts with the non-thinking generation prompt: the same text that precedes the last reply.
    messages = collator.to_messages(sample)
    prompt = collator.render(messages[:-1], add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert collator.render(messages) == prompt + "Fine.<|im_end|>\n"


def test_qwen3_5_reply_with_a_think_block_is_refused_clearly(load_tiny):
    collator = collator_of("qwen3.5", load_tiny)
    sample = Sample(conversation("Hi?", "<think>greet</think>Hello."), source="s")
    with pytest.raises(BadSample, match="s: the chat template of .* rewrites a reply of this sample"):
        encode(collator, sample)


def test_qwen4_exp_keeps_a_think_block_in_every_turn_and_trains_only_the_replies(load_tiny):
    collator = collator_of("qwen4-exp", load_tiny)
    sample = Sample(conversation("Hi?", "Hello.", "How are you?", "Fine."), source="s")
    features = encode(collator, sample)
    trained = collator.tokenizer.decode(features["input_ids"][features["labels"] != IGNORE_INDEX])
    assert trained == "Hello.<|im_end|>Fine.<|im_end|>"
    messages = collator.to_messages(sample)
    rendered = collator.render(messages)
    assert rendered.count("<|im_start|>assistant\n<think>\n\n</think>\n\n") == 2
    prompt = collator.render(messages[:-1], add_generation_prompt=True)
    assert rendered == prompt + "Fine.<|im_end|>\n"


def test_qwen4_exp_template_writes_the_reasoning_effort_instruction_only_with_thinking_on(load_tiny):
    _, processor = load_tiny("tiny-qwen4-exp")

    def render(system=None, **kwargs):
        messages = [{"role": "user", "content": [{"type": "text", "text": "Hi?"}]}]
        if system:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
        return processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True, **kwargs)

    user = "<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
    assert render() == f"<|im_start|>system\n{XHIGH}<|im_end|>\n{user}<think>\n"
    assert (
        render("Be brief.", reasoning_effort="low")
        == f"<|im_start|>system\n{LOW}\n\nBe brief.<|im_end|>\n{user}<think>\n"
    )
    assert render(reasoning_effort="medium") == f"{user}<think>\n"
    assert render("Be brief.", enable_thinking=False) == (
        f"<|im_start|>system\nBe brief.<|im_end|>\n{user}<think>\n\n</think>\n\n"
    )
    with pytest.raises(Exception, match="Unexpected reasoning effort high"):
        render(reasoning_effort="high")


def lora_model(family_id, lora_dropout):
    entry = resolved_entry(f"tiny-{family_id}")
    model, _ = entry.family.load(checkpoint_path(entry))
    args = ModelArguments(model_id=entry.model_id, lora_dropout=lora_dropout, train_projector=False)
    return set_trainable(model, entry.family.modules, args, gradient_checkpointing=False)


# Where the experts that text tokens route to are not `.mlp.experts.`: ERNIE 4.5 VL has text and vision experts
# (`text_moe` / `vision_moe`); the vision ones take image tokens only.
TEXT_EXPERTS = {"ernie4.5-vl": ".mlp.text_moe.experts."}


@pytest.mark.parametrize("family_id", MOE_FAMILIES)
def test_moe_lora_adapts_the_fused_experts_and_leaves_routers_frozen(family_id):
    model = lora_model(family_id, lora_dropout=0.0)
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in name for name in trainable)
    experts = TEXT_EXPERTS.get(family_id, ".mlp.experts.")
    assert any(experts in name for name in trainable)
    assert not any(".mlp.gate." in name or "shared_expert_gate" in name for name in trainable)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    model(input_ids=ids, labels=ids).loss.backward()
    expert_grads = [p.grad for name, p in model.named_parameters() if experts in name and "lora_B" in name]
    assert expert_grads and all(g is not None and g.abs().sum() > 0 for g in expert_grads)


def test_moe_lora_with_dropout_says_the_experts_get_no_adapters(caplog):
    with caplog.at_level(logging.WARNING, logger="vlmtune.core.modeling"):
        model = lora_model("qwen3-vl-moe", lora_dropout=0.05)
    assert not any(".mlp.experts." in name for name, p in model.named_parameters() if p.requires_grad)
    assert "--lora_dropout 0" in caplog.text


# The outputs of Aria, Mistral Large 4 and Step 3.7 carry no load-balancing loss in transformers (like Llama 4's).
NO_AUX_LOSS = ("aria", "mistral-large4", "step3.7")
NO_AUX_LOSS += ("muse-spark", "dots3-note")  # issue 19, batch E: neither output carries one either
NO_AUX_LOSS += ("inkling2",)  # issue 19, batch D: Inkling2CausalLMOutputWithPast has no aux_loss


@pytest.mark.parametrize("family_id", [family_id for family_id in MOE_FAMILIES if family_id not in NO_AUX_LOSS])
def test_moe_load_balancing_loss_is_kept_when_the_config_asks_for_it(family_id):
    model = lora_model(family_id, lora_dropout=0.0)
    text_config = model.config.text_config
    text_config.output_router_logits = True
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    out = model(input_ids=ids, labels=ids)
    cross_entropy = torch.nn.functional.cross_entropy(out.logits[0, :-1], ids[0, 1:])
    assert out.aux_loss is not None and out.aux_loss > 0
    assert torch.allclose(out.loss, cross_entropy + text_config.router_aux_loss_coef * out.aux_loss, atol=1e-5)


def test_moe_lora_run_with_projector_and_experts_reloads(tmp_path, digits_data):  # noqa: F811
    """The default LoRA run trains the projector too; Qwen3-VL's DeepStack mergers are a ModuleList of projectors."""
    from peft import PeftModel

    trainer, out = run(tmp_path, digits_data, "tiny-qwen3-vl-moe", lora_dropout=0.0)
    trained = [name for name, p in trainer.model.named_parameters() if p.requires_grad]
    assert any("deepstack_merger_list.0.modules_to_save" in name for name in trained)
    assert any(".mlp.experts." in name for name in trained)

    entry = resolved_entry("tiny-qwen3-vl-moe")
    fresh, processor = entry.family.load(checkpoint_path(entry))
    reloaded = PeftModel.from_pretrained(fresh, out)
    collator = entry.family.collator(processor, entry.family.reply_end)
    sample = Sample(conversation("<image>\nWhich digit?", "7"), images=[digit_png(tmp_path, "x.png", 7)], source="x")
    batch = collator([encode(collator, sample)])
    trainer.model.eval()
    reloaded.eval()
    with torch.no_grad():
        assert torch.allclose(trainer.model(**batch).logits, reloaded(**batch).logits, atol=1e-5)


@pytest.mark.parametrize("family_id", sorted(FAMILIES))
def test_only_moe_experts_count_as_expert_parameters(family_id, load_tiny):
    model, _ = load_tiny(f"tiny-{family_id}")
    names = expert_parameters(model, resolved_family(family_id).modules, {"llm", "vision_encoder"})
    assert bool(names) == (family_id in MOE_FAMILIES or family_id == "llama4")
    assert all(".experts." in name for name in names)


def test_glm45v_lora_with_dropout_is_refused_in_one_line_and_without_it_says_what_peft_dropped(caplog):
    """PEFT's transformers-v5 conversion for glm4v_moe maps every `*.gate_proj`/`*.up_proj`/`*.down_proj` LoRA
    target (the dense first layer's MLP and the shared experts too) onto the fused experts' parameters, which take
    no dropout: with dropout, one line saying what to pass; without, a warning naming what got no LoRA."""
    with pytest.raises(ArgumentError, match="pass --lora_dropout 0"):
        lora_model("glm4v-moe", lora_dropout=0.05)
    with caplog.at_level(logging.WARNING, logger="vlmtune.core.modeling"):
        lora_model("glm4v-moe", lora_dropout=0.0)
    assert "PEFT put no LoRA on 6 of the asked linear layers" in caplog.text
