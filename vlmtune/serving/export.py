"""`vlmtune export --for vllm`: write the form of a training output that vLLM serves.

    vlmtune export --for vllm output/my-lora-run output/my-run-vllm
    vlmtune serve output/my-run-vllm

vLLM accepts LoRA adapters whose fully trained modules (`modules_to_save`) are only a classifier/score head.
vlmtune trains the projector fully by default (and the vision tower with --vision_mode full), so such an
adapter alone is not servable: it is merged into its base (`vlmtune merge`, the released key layout). An
adapter without fully trained modules is copied as it is: vLLM serves it on its base (`--lora-modules`).
A full or merged output needs no export: vLLM loads it as it is.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from vlmtune.arguments import CommandParser
from vlmtune.core.outputs import ADAPTER_CONFIG, DTYPE_CHOICES, is_adapter
from vlmtune.errors import ArgumentError
from vlmtune.serving.merge import merge

TARGETS = ("vllm",)
# The only modules_to_save vLLM 0.32 takes next to a LoRA adapter (vllm/lora: classification heads).
VLLM_SAVED_MODULES = {"classifier", "score"}


def fully_trained_modules(adapter_dir: str | Path) -> list[str]:
    """The modules an adapter output saves whole (trained fully next to LoRA), from its adapter_config.json."""
    config = json.loads((Path(adapter_dir) / ADAPTER_CONFIG).read_text())
    return list(config.get("modules_to_save") or [])


def vllm_note(adapter_dir: str | Path) -> str | None:
    """Why an adapter output alone is not servable by vLLM and what to do, or None when vLLM takes it."""
    modules = [m for m in fully_trained_modules(adapter_dir) if m.rpartition(".")[2] not in VLLM_SAVED_MODULES]
    if not modules:
        return None
    return (
        f"the adapter in {adapter_dir} alone is not servable by vLLM: it holds fully trained modules {modules} "
        "(vLLM takes only LoRA weights); write a servable model with "
        f"`vlmtune export --for vllm {adapter_dir} OUTPUT` (a merged checkpoint), or train with "
        "--train_projector false (and --vision_mode frozen/lora) for an adapter vLLM serves on its base"
    )


def export_for_vllm(
    output: str | Path, target_dir: str | Path, base: str | None = None, dtype: str = "auto"
) -> tuple[Path, str]:
    """Write the servable form of `output` to `target_dir`; -> (folder, 'merged' or 'adapter')."""
    output, target_dir = Path(output), Path(target_dir)
    if not is_adapter(output):
        if not (output / "config.json").is_file():
            raise ArgumentError(f"{output} holds neither an adapter ({ADAPTER_CONFIG}) nor a model (config.json)")
        raise ArgumentError(
            f"{output} holds no adapter ({ADAPTER_CONFIG}): a full or merged output is servable as it is "
            f"(vlmtune serve {output})"
        )
    if target_dir.exists() and any(target_dir.iterdir()):  # either form: never mixed into an older folder
        raise ArgumentError(f"{target_dir} exists and is not empty; pass a new folder")
    if vllm_note(output) is not None:
        return merge(output, target_dir, base=base, dtype=dtype), "merged"
    shutil.copytree(output, target_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("checkpoint-*"))
    return target_dir, "adapter"


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="vlmtune export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--for", dest="target", choices=TARGETS, required=True, help="The server to export for.")
    parser.add_argument("output", help="A vlmtune train output folder (LoRA/QLoRA adapter).")
    parser.add_argument("target_dir", help="New folder for the servable model.")
    parser.add_argument("--base", help="Base checkpoint of the adapter (default: the one it was trained from).")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help="Dtype of a merged model.")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    folder, form = export_for_vllm(args.output, args.target_dir, args.base, args.dtype)
    how = "a merged checkpoint" if form == "merged" else "a LoRA adapter vLLM serves on its base"
    print(f"{folder}: {how}; serve it with: vlmtune serve {folder}")
    return 0


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["export", *sys.argv[1:]]))
