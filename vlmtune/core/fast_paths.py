"""Opt-in fast paths, checked before anything loads, and the Qwen-VL pixel cap (`--max_pixels`).

- `--attn_implementation flash_attention_2`: the flash-attn package (CUDA only). With `--packing` it runs
  the variable-length kernels, so packed samples cost no padding and never see each other.
- `--use_liger_kernel` (a transformers flag): Liger's Triton kernels, among them the fused linear
  cross-entropy that never materialises the [tokens, vocabulary] logits (150k columns for Qwen). CUDA only.
- Fast image processors: transformers 5 uses the torchvision-backed image processors whenever torchvision is
  installed (it is pinned in requirements.txt); nothing to switch on.
- `--max_pixels`: Qwen2-VL / Qwen2.5-VL resize every image to at most this many pixels (the processor's
  `size["longest_edge"]`, the released `max_pixels`), so a large photo costs fewer image tokens.

None of the optional packages is in requirements.txt; each check names the package to install.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from vlmtune.errors import ArgumentError

OPTIONAL_PACKAGES = {
    # (flag, value) -> (import name, what to install)
    "flash_attention_2": ("flash_attn", "pip install flash-attn --no-build-isolation (needs CUDA)"),
    "use_liger_kernel": ("liger_kernel", "pip install liger-kernel (needs CUDA and Triton)"),
}


def missing_package_message(option: str) -> str | None:
    """None when the package behind `option` is importable, else what to install."""
    module, install = OPTIONAL_PACKAGES[option]
    if importlib.util.find_spec(module) is not None:
        return None
    return f"{module} is not installed: {install}"


def check_fast_paths(attn_implementation: str | None, use_liger_kernel: bool) -> None:
    """Fail before loading anything when an asked-for fast path's package is missing."""
    problems = []
    if attn_implementation == "flash_attention_2" and (message := missing_package_message("flash_attention_2")):
        problems.append(f"--attn_implementation flash_attention_2: {message}; or use --attn_implementation sdpa")
    if use_liger_kernel and (message := missing_package_message("use_liger_kernel")):
        problems.append(f"--use_liger_kernel: {message}; or leave --use_liger_kernel off")
    if problems:
        raise ArgumentError("\n".join(problems))


def apply_max_pixels(processor: Any, max_pixels: int, family_id: str) -> None:
    """Cap the image size of a Qwen-VL processor at `max_pixels`; other families resize to fixed sizes."""
    image_processor = processor.image_processor
    size = getattr(image_processor, "size", None)
    if not hasattr(image_processor, "merge_size") or getattr(size, "longest_edge", None) is None:
        raise ArgumentError(
            f"--max_pixels applies to the Qwen-VL families (a pixel budget per image); the {family_id} "
            "family's image processor resizes to a fixed size: leave --max_pixels out"
        )
    if max_pixels < size.shortest_edge:
        raise ArgumentError(f"--max_pixels {max_pixels} is below the processor's min_pixels ({size.shortest_edge})")
    size.longest_edge = max_pixels
