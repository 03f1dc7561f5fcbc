"""Family details of Gemma 4, Gemma 3n and the GLM-4V families that the registry-wide tests do not show."""

from __future__ import annotations

from tests.conftest import resolved_family
from tests.test_masking import conversation
from vlmtune.datasets import Sample


def collator_of(family_id: str, load_tiny):
    family = resolved_family(family_id)
    _, processor = load_tiny(f"tiny-{family_id}")
    return family.collator(processor, family.reply_end)


def test_gemma4_full_attention_layers_use_their_own_head_size(load_tiny):
    """Gemma 4 keeps per-layer attributes (the global head size) in `per_layer_config`; the tiny model sets them."""
    model, _ = load_tiny("tiny-gemma4")
    text_config = model.config.text_config
    layers = model.model.language_model.layers
    full = [i for i, kind in enumerate(text_config.layer_types) if kind == "full_attention"]
    assert full and all(text_config.per_layer_config[i].head_dim == 32 for i in full)  # released: 512
    for index, layer in enumerate(layers):
        head_dim = text_config.per_layer_config[index].head_dim if index in full else text_config.head_dim
        assert layer.self_attn.head_dim == head_dim
        assert layer.self_attn.q_proj.out_features == text_config.num_attention_heads * head_dim


def test_gemma4_renders_earlier_replies_without_their_thoughts(load_tiny):
    """Released behaviour: assistant text passes through strip_thinking, so history holds only final answers."""
    collator = collator_of("gemma4", load_tiny)
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Hi?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<|channel>thought\nGreet.<channel|>Hello."}]},
    ]
    assert collator.render(messages) == "<bos><|turn>user\nHi?<turn|>\n<|turn>model\nHello.<turn|>\n"
    sample = Sample(conversation("Hi?", "Hello."), source="s")
    assert collator.render(collator.to_messages(sample)).endswith("<|turn>model\nHello.<turn|>\n")


def test_glm4v_writes_text_content_as_strings_and_closes_only_trained_conversations(load_tiny):
    """GLM's template prints system/assistant content verbatim; a trailing "<|user|>" closes the last reply only."""
    collator = collator_of("glm4v", load_tiny)
    sample = Sample(conversation("Hi?", "Hello."), system_prompt="Be brief.", source="s")
    messages = collator.to_messages(sample)
    assert collator.render(messages) == "[gMASK]<sop><|system|>\nBe brief.<|user|>\nHi?<|assistant|>\nHello.<|user|>"
    prompt = collator.render(messages[:-1], add_generation_prompt=True)
    assert prompt == "[gMASK]<sop><|system|>\nBe brief.<|user|>\nHi?<|assistant|>\n"


def test_gemma3n_media_tokens_sit_in_the_models_vision_and_audio_ranges(load_tiny):
    """Gemma 3n embeds ids from vision_config.vocab_offset with embed_vision: the tiny tokenizer must match that."""
    model, processor = load_tiny("tiny-gemma3n")
    config, tokenizer = model.config, processor.tokenizer
    vision_start, audio_start = config.vision_config.vocab_offset, config.audio_config.vocab_offset
    assert vision_start <= tokenizer.image_token_id < audio_start
    assert vision_start <= tokenizer.convert_tokens_to_ids("<end_of_image>") < audio_start
    assert audio_start <= tokenizer.audio_token_id < config.text_config.vocab_size
    assert tokenizer.convert_tokens_to_ids("<start_of_image>") < config.text_config.vocab_size_per_layer_input
    assert tokenizer.convert_tokens_to_ids("<end_of_turn>") < vision_start
