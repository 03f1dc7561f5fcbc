"""Built-in tiny models: small random models of a family's real HF classes, built offline and cached on disk.

A `tiny-<family>` id is loaded exactly like a hub checkpoint: the family's tiny builder writes the model,
processor and a locally trained tokenizer with `save_pretrained` once, and every later load goes through the
family loader's `from_pretrained`. Nothing is downloaded.

The cache folder is `$VLMTUNE_CACHE/tiny` (default `~/.cache/vlmtune/tiny`); delete it to rebuild.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

TINY_PREFIX = "tiny-"
# Bump when a tiny builder changes, so stale cached checkpoints are rebuilt instead of reused.
TINY_FORMAT_VERSION = "3"  # 2: weights in the released key layout; 3: Gemma tokenizers hold newline runs,
# LLaVA-NeXT-Video 4-pixel patches
# The released Gemma tokenizers (Gemma 2, 3, 3n; PaliGemma) hold one piece per run of 1 to 31 newlines.
GEMMA_NEWLINE_RUNS = 31

_WORDS = (
    "the a an of to in is it that this what which who how why where when you your we our they "
    "image picture photo video frame shown show shows see look describe answer question digit number "
    "zero one two three four five six seven eight nine cat dog red green blue small large left right "
    "helpful assistant user system human please tell me about count there are was were be has have "
    "yes no maybe first second last next before after and or not with for on at by from as"
).split()


def tokenizer_corpus() -> list[str]:
    """A deterministic few hundred lines of chat-like English and digits to train the tiny tokenizers on."""
    lines = []
    for i in range(400):
        words = [_WORDS[(i * 7 + j * 13) % len(_WORDS)] for j in range(3 + i % 9)]
        lines.append(" ".join(words).capitalize() + ("?" if i % 3 == 0 else "."))
        lines.append(f"Which digit is shown in the image? {i % 10}")
        lines.append(f"USER: {words[0]} ASSISTANT: {i} {i * 37 % 1000}\n")
    lines.append("You are a helpful assistant.")
    return lines


def train_tokenizer(
    special_tokens: dict[str, str],
    extra_special_tokens: dict[str, str] | None = None,
    additional_special_tokens: list[str] | None = None,
    add_bos: bool = False,
    vocab_size: int = 800,
    newline_runs: int = 0,
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer in-process and wrap it with the family's special tokens.

    `special_tokens` maps the standard names (`bos_token`, `eos_token`, `pad_token`, `unk_token`) to strings;
    `extra_special_tokens` names family tokens such as `image_token` so that `tokenizer.image_token(_id)` exist;
    `additional_special_tokens` are template markers (e.g. `<|im_start|>`) that must stay single tokens.
    `newline_runs=n` makes "\n" ... "\n" * n vocabulary entries of their own (ordinary, not special, tokens), as
    the released Gemma tokenizers have them (SentencePiece pieces for 1 to 31 newlines); vLLM's Gemma processors
    look them up by text, which a byte-level vocabulary (where "\n" is "Ċ") does not have.
    """
    extra_special_tokens = extra_special_tokens or {}
    markers = list(
        dict.fromkeys([*special_tokens.values(), *extra_special_tokens.values(), *(additional_special_tokens or [])])
    )
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=markers,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(tokenizer_corpus(), trainer=trainer)
    # Longest match first: "\n\n\n" is one token, as in the released tokenizers.
    backend.add_tokens([AddedToken("\n" * run, normalized=False) for run in range(1, newline_runs + 1)])
    if add_bos:
        bos = special_tokens["bos_token"]
        backend.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, backend.token_to_id(bos))]
        )
    else:
        backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        extra_special_tokens=extra_special_tokens,
        additional_special_tokens=additional_special_tokens or [],
        model_max_length=4096,
        **special_tokens,
    )


def tiny_cache_dir() -> Path:
    root = os.environ.get("VLMTUNE_CACHE") or Path.home() / ".cache" / "vlmtune"
    return Path(root) / "tiny"


def ensure_tiny_checkpoint(family_id: str, build: Callable[[Path], None]) -> Path:
    """Return the folder of the cached tiny checkpoint of `family_id`, building it with `build(folder)` once.

    Building writes to a temporary folder that is renamed into place, under a file lock, so that parallel test
    processes and a kill during the build never leave a half-written checkpoint behind.
    """
    cache = tiny_cache_dir()
    target = cache / f"{family_id}-v{TINY_FORMAT_VERSION}"
    if (target / "config.json").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f".{family_id}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / "config.json").exists():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{family_id}-", dir=cache))
        try:
            build(staging)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
