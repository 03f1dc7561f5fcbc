"""Mistral Large 4 (`MistralLarge4ForConditionalGeneration` + `PixtralProcessor`), the transformers type of
https://huggingface.co/mistralai/Mistral-Large-4-1T-A52B.

The LLaVA layout (`model.vision_tower`, `model.multi_modal_projector` with Mistral 3's patch merger,
`model.language_model`) on a language model with MLA attention, a sparse-attention token indexer on every layer and
MoE feed-forward layers; the vision tower is Mistral Small 3.1's Pixtral tower (transformers' config says so), and
the processor is PixtralProcessor, as for Mistral 3: each `[IMG]` becomes rows of `[IMG]` separated by
`[IMG_BREAK]`, the last one `[IMG_END]`.

No copy of Mistral Large 4's own chat template was found (searched 2026-12-07: mistral-common keeps one template
per tokenizer version without the per-model default system prompt, and neither the checkpoint's tokenizer version
nor its system prompt was found). The tiny model therefore carries a clearly labelled stand-in: the template of
its nearest released sibling whose copy was found, Mistral Small 3.1's (vlmtune/loaders/mistral3.py). A real
checkpoint trains with its own template: the family record derives the end-of-turn, parts and capabilities from
the checkpoint's files and checks them before any weight is read (`vlmtune check mistral-large-4`).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import MistralLarge4Config, MistralLarge4ForConditionalGeneration, MistralLarge4TextConfig

from vlmtune.loaders.base import save_tiny, tiny_text_config
from vlmtune.loaders.mistral3 import (
    CHAT_TEMPLATE,
    tiny_mistral_tokenizer,
    tiny_pixtral_processor,
    tiny_pixtral_vision_config,
)

# Stand-in template (see above): Mistral Small 3.1's, with its default system prompt.
STAND_IN_TEMPLATE = CHAT_TEMPLATE

# Two layers as the released stack begins: the first dense, the second MoE (4 experts, 2 per token, one shared);
# MLA with a small latent rank; the indexer (2 heads of 16) keeps the released 2048 tokens, more than any test row,
# so attention is dense there as for a real model's short rows. With a top-k shorter than the rows (8 tried) a
# padded batch's log-probs differ from each row's alone (0.05 nats, tests/test_dpo_logps.py): the indexer's choice
# sees the padding; rows longer than 2048 tokens in a padded batch would meet that too.
TINY_TEXT = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "moe_intermediate_size": 64,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
    "n_routed_experts": 4,
    "num_experts_per_tok": 2,
    "n_shared_experts": 1,
    "kv_lora_rank": 32,
    "qk_rope_head_dim": 16,
    "qk_nope_head_dim": 16,
    "v_head_dim": 32,
    "index_topk": 2048,
    "index_head_dim": 16,
    "index_n_heads": 2,
    "first_k_dense_replace": 1,
    "max_position_embeddings": 512 * 2048,  # as released: YaRN's factor 2048 over a 512-token window
}


def build_tiny(folder: Path) -> None:
    tokenizer = tiny_mistral_tokenizer()
    text = {**tiny_text_config(tokenizer), **TINY_TEXT}
    config = MistralLarge4Config(
        text_config=MistralLarge4TextConfig(**text),
        vision_config=tiny_pixtral_vision_config(),
        image_token_index=tokenizer.image_token_id,
        spatial_merge_size=2,
        vision_feature_layer=-1,
        multimodal_projector_bias=False,
    )
    torch.manual_seed(0)
    model = MistralLarge4ForConditionalGeneration(config)
    save_tiny(folder, model, tiny_pixtral_processor(tokenizer, 2, STAND_IN_TEMPLATE))
