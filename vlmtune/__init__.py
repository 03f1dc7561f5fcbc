"""vlmtune: registry-driven supervised finetuning of vision-language models on Hugging Face transformers.

Start with `python -m vlmtune.supported_models` (what can be finetuned) and `vlmtune train --help`.
"""

__version__ = "0.1.0"
