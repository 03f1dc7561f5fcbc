"""vlmtune: registry-driven finetuning of vision-language models on Hugging Face transformers.

Start with `vlmtune models` (what can be finetuned) and `vlmtune train --help`; docs/architecture.md shows the
layers, generated from the imports:

    apps       vlmtune/apps/ (cli, validate, preview, webui, demos)
    methods    vlmtune/pipeline.py (the shared run steps), vlmtune/train.py (SFT), vlmtune/grpo/
    serving    vlmtune/serving/ (merge, export, serve, vllm_backend, chat)
    core       vlmtune/core/ (modeling, trainer, distributed, packing, inference, evaluation, outputs)
    registry   vlmtune/supported_models.py, vlmtune/loaders/, family collators, vlmtune/compose/
    collation  vlmtune/collators/{base,alignment,replies}.py: the masking core every family shares
    config     vlmtune/arguments.py: the argument dataclasses and parsers
    data       vlmtune/data/, vlmtune/datasets.py
    bottom     vlmtune/errors.py, vlmtune/progress.py

A module imports only from its own layer or those below (tests/test_layers.py).
"""

__version__ = "0.1.0"
