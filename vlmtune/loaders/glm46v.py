"""The GLM-V generation after GLM-4.1V, on GLM-4.1V's tiny pieces (vlmtune/loaders/glm4v.py):

- GLM-4.6V (`Glm46VForConditionalGeneration`, model type glm46v): https://huggingface.co/zai-org/GLM-4.6V (MoE) and
  zai-org/GLM-4.6V-Flash; its own processor classes, GLM-4.1V's model layout;
- GLM-4.5V (`Glm4vMoeForConditionalGeneration`, glm4v_moe): https://huggingface.co/zai-org/GLM-4.5V, a MoE language
  model behind GLM-4.1V's vision tower, GLM-4.1V's processor;
- GLM-5.3-Flash (`Glm5NextForConditionalGeneration`, glm5_next): https://huggingface.co/zai-org/GLM-5.3-Flash, KDA
  linear-attention layers interleaved with MLA layers whose keys a sparse indexer selects (DSA), hyper-connection
  residual streams, MoE feed-forward layers; its own processor classes.

Templates: no copy of these checkpoints' released chat templates was found (searched 2026-12-07: public code, issues
and pages; for GLM-5.3-Flash public code pins its chat_template.jinja by SHA-256, and the one copy read is another
revision). The families are registered by convention: a real checkpoint's own template is read at load, and its
replies and capabilities are checked there (`vlmtune check`), so what trains is that template. The tiny models carry
a stand-in, labelled as such: GLM-4.1V-9B-Thinking's released template (the outside copy in glm4v.py).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    Glm4vMoeConfig,
    Glm4vMoeForConditionalGeneration,
    Glm5NextConfig,
    Glm5NextForConditionalGeneration,
    Glm5NextImageProcessor,
    Glm5NextProcessor,
    Glm5NextVideoProcessor,
    Glm46VConfig,
    Glm46VForConditionalGeneration,
    Glm46VImageProcessor,
    Glm46VProcessor,
    Glm46VVideoProcessor,
)

from vlmtune.loaders.base import save_tiny, tiny_text_config
from vlmtune.loaders.glm4v import TINY_ROPE, tiny_config_kwargs, tiny_processor

# Small MoE sizes: 4 routed experts (2 per token) and a shared one; the first layer dense, as released.
TINY_MOE = {"moe_intermediate_size": 64, "n_routed_experts": 4, "num_experts_per_tok": 2, "n_shared_experts": 1}
# GLM-5.3-Flash's layer kinds on 2 layers (one KDA linear-attention layer, one MLA layer with the DSA indexer; one
# dense, one MoE feed-forward), small MLA ranks (no RoPE on the DSA layers, as the config requires), 2
# hyper-connection streams. The indexer's budget (index_topk) stays above the tests' sequence lengths, as the released
# 2048 is above most samples': every key is then attended. Below it a cached decode and a full forward select keys
# differently (measured with a budget of 8: GRPO's sampling and training log-probs 0.04 apart).
TINY_TEXT_GLM5 = {
    **TINY_MOE,
    "num_attention_heads": 2,
    "num_key_value_heads": 2,
    "layer_types": ["linear_attention", "indexed_attention"],
    "mlp_layer_types": ["dense", "sparse"],
    "indexer_types": ["full", "full"],
    "kv_lora_rank": 32,
    "q_lora_rank": 64,
    "qk_rope_head_dim": 0,
    "qk_nope_head_dim": 32,
    "v_head_dim": 32,
    "index_topk": 256,
    "index_head_dim": 32,
    "index_n_heads": 2,
    "index_kpool": 4,
    "linear_head_dim": 32,
    "linear_num_heads": 2,
    "hc_mult": 2,
    "hc_sinkhorn_iters": 3,
}
STOP_TOKENS = ["<|user|>", "<|observation|>"]  # with the eos, as GLM-4.1V's released generation config


def save(folder: Path, model_class: type, config, processor) -> None:
    torch.manual_seed(0)
    model = model_class(config)
    save_tiny(folder, model, processor, stop_tokens=[processor.tokenizer.eos_token, *STOP_TOKENS])


def build_tiny(folder: Path) -> None:
    """GLM-4.6V: GLM-4.1V's sizes in the glm46v classes."""
    processor = tiny_processor(Glm46VProcessor, Glm46VImageProcessor, Glm46VVideoProcessor)
    tokenizer = processor.tokenizer
    config = Glm46VConfig(
        text_config=tiny_text_config(tokenizer, head_dim=32, rope_parameters=TINY_ROPE),
        **tiny_config_kwargs(tokenizer),
    )
    save(folder, Glm46VForConditionalGeneration, config, processor)


def build_tiny_moe(folder: Path) -> None:
    """GLM-4.5V: GLM-4.1V's sizes with a small MoE language model."""
    processor = tiny_processor()
    tokenizer = processor.tokenizer
    config = Glm4vMoeConfig(
        text_config=tiny_text_config(tokenizer, head_dim=32, rope_parameters=TINY_ROPE, **TINY_MOE),
        **tiny_config_kwargs(tokenizer),
    )
    save(folder, Glm4vMoeForConditionalGeneration, config, processor)


def build_tiny_glm5(folder: Path) -> None:
    """GLM-5.3-Flash: GLM-4.1V's vision sizes (plus its projector's width), the text layer kinds above."""
    processor = tiny_processor(Glm5NextProcessor, Glm5NextImageProcessor, Glm5NextVideoProcessor)
    tokenizer = processor.tokenizer
    vision = tiny_config_kwargs(tokenizer)
    vision["vision_config"]["projection_intermediate_size"] = 128
    config = Glm5NextConfig(text_config=tiny_text_config(tokenizer, **TINY_TEXT_GLM5), **vision)
    save(folder, Glm5NextForConditionalGeneration, config, processor)
