"""Shared fixtures: an isolated tiny-model cache, tiny models loaded once per session, digit images, a video."""

from __future__ import annotations

import functools
import os

import numpy as np
import pytest
from PIL import Image

from vlmtune.core.modeling import checkpoint_path
from vlmtune.supported_models import Family, ModelEntry, get_model


@pytest.fixture(scope="session", autouse=True)
def isolated_tiny_cache(tmp_path_factory):
    """Build the tiny models afresh for this run, so a stale cache can never hide a builder bug."""
    previous = os.environ.get("VLMTUNE_CACHE")
    os.environ["VLMTUNE_CACHE"] = str(tmp_path_factory.mktemp("vlmtune_cache"))
    yield
    if previous is None:
        os.environ.pop("VLMTUNE_CACHE", None)
    else:
        os.environ["VLMTUNE_CACHE"] = previous


@functools.cache
def _load_tiny(model_id: str):
    entry = get_model(model_id)
    return entry.family.load(checkpoint_path(entry))


@functools.cache
def resolved_entry(model_id: str) -> ModelEntry:
    """The registered entry of `model_id`, a conventional family's derived fields (parts, end-of-turn, what a
    sample may hold) filled in from its checkpoint's files as train does (`checked_entry`); cached per session.
    Tests that read a family's modules / reply_end / capabilities read them here, never from FAMILIES."""
    from vlmtune.core.checkpoint import checked_entry

    entry = get_model(model_id)
    return checked_entry(entry) if entry.family.derived else entry


def resolved_family(family_id: str) -> Family:
    """The family record of `tiny-<family_id>` with its derived fields filled in (see `resolved_entry`)."""
    return resolved_entry(f"tiny-{family_id}").family


@pytest.fixture(scope="session")
def load_tiny(isolated_tiny_cache):
    """load_tiny('tiny-qwen2-vl') -> (model, processor), loaded once per session; do not train this model."""
    return _load_tiny


def digit_png(folder, name: str, digit: int, size: int = 32) -> str:
    """A PNG of one of scikit-learn's bundled handwritten digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    index = int(np.flatnonzero(digits.target == digit)[0])
    pixels = (digits.images[index] / 16.0 * 255).astype(np.uint8)
    path = os.path.join(folder, name)
    Image.fromarray(pixels).resize((size, size), Image.NEAREST).convert("RGB").save(path)
    return path


@pytest.fixture
def images(tmp_path):
    """Two digit images on disk: (path of a 7, path of a 3)."""
    return digit_png(tmp_path, "seven.png", 7), digit_png(tmp_path, "three.png", 3, size=48)


def write_video(path, num_frames: int = 10, size: int = 32) -> str:
    """An mp4 whose frame i is uniformly grey at level 20 * i, encoded offline with PyAV."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=5)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        for i in range(num_frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size, 3), 20 * i, dtype=np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


@pytest.fixture
def video(tmp_path):
    return write_video(tmp_path / "clip.mp4")


def save_tiny_causal_lm(folder):
    """A tiny Qwen2 causal LM (seeded) with a 64-word tokenizer (eos t1, pad t2), saved to `folder` for TRL's
    trainers in the loss-parity tests (TRL loads a model, and with a reference a second copy, from a path).
    Returns the tokenizer."""
    import torch
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    vocab = {f"t{i}": i for i in range(64)}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")), eos_token="t1", pad_token="t2"
    )
    config = Qwen2Config(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        eos_token_id=1,
        pad_token_id=2,
    )
    Qwen2ForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return tokenizer


def run_counting_demo(module: str, output_dir, threads: int) -> str:
    """Run a counting demo (`vlmtune.apps.demo_grpo` / `demo_dpo`) in its own process with `threads` OpenMP
    threads, as `make demo-grpo` / `make demo-dpo` start it; its output, after asserting it exited 0."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, "-m", module, "--output_dir", str(output_dir)]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    return run.stdout
