"""`vlmtune merge`: fold a LoRA adapter output into its base model and save a standalone HF checkpoint.

    vlmtune merge output/my-lora-run output/my-lora-run-merged
    vlmtune merge output/my-lora-run merged --base /models/Qwen2-VL-2B-Instruct    # base from a local folder
    vlmtune merge output/my-lora-run merged --dtype bfloat16                          # instead of the base's dtype

The merged folder holds `config.json`, `model.safetensors` (sharded when large), `generation_config.json`, the
processor with its chat template, and the run's `vlmtune_args.yaml`; the weights are in the key layout of the
family's released checkpoints (vlmtune/loaders/released.py), so it loads with the family's plain
`from_pretrained`, with `vlmtune chat`, and in vLLM (`vlmtune serve`). Parts trained fully next to the adapter (by
default the projector) are merged in too. The base is loaded unquantized, so a QLoRA adapter merges into
full-precision weights.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path

from vlmtune.arguments import CommandParser
from vlmtune.core.outputs import ADAPTER_CONFIG, ARGS_FILE, DTYPE_CHOICES, entry_of, is_adapter, load_adapter_model
from vlmtune.errors import ArgumentError
from vlmtune.loaders.released import save_released

logger = logging.getLogger("vlmtune")


def merge(
    adapter_dir: str | Path,
    output_dir: str | Path,
    model_id: str | None = None,
    base: str | None = None,
    dtype: str = "auto",
    max_shard_size: str = "5GB",
) -> Path:
    """Merge the adapter in `adapter_dir` into its base; `dtype="auto"` keeps the dtype the base is stored in."""
    adapter_dir, output_dir = Path(adapter_dir), Path(output_dir)
    if not adapter_dir.is_dir():
        raise ArgumentError(f"{adapter_dir}: no such folder")
    if not is_adapter(adapter_dir):
        full = (adapter_dir / "config.json").is_file()
        what = "it holds a full model already (nothing to merge)" if full else "it holds no model at all"
        raise ArgumentError(
            f"{adapter_dir} holds no LoRA adapter (no {ADAPTER_CONFIG}); {what}. Pass the output folder "
            "of a LoRA or QLoRA run (vlmtune train with --llm_mode lora or --vision_mode lora)."
        )
    if output_dir.resolve() == adapter_dir.resolve():
        raise ArgumentError("write the merged model to a new folder, not into the adapter's folder")
    entry = entry_of(adapter_dir, model_id)
    model, processor = load_adapter_model(adapter_dir, entry, base, dtype=dtype)
    merged = model.merge_and_unload()
    logger.info("merged %s into %s (%s); saving to %s", adapter_dir, entry.model_id, merged.dtype, output_dir)
    save_released(merged, output_dir, max_shard_size)  # in the released key layout: vLLM loads it
    processor.save_pretrained(str(output_dir))
    if (adapter_dir / ARGS_FILE).is_file():
        shutil.copy(adapter_dir / ARGS_FILE, output_dir / ARGS_FILE)  # names the family for `vlmtune chat`
    return output_dir


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="vlmtune merge", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("adapter_dir", help="Output folder of a LoRA/QLoRA run (holds adapter_config.json).")
    parser.add_argument("output_dir", help="New folder for the merged standalone checkpoint.")
    parser.add_argument(
        "--model_id", help="Registered id the adapter was trained from (default: read from its vlmtune_args.yaml)."
    )
    parser.add_argument(
        "--base", help="Base checkpoint (hub id or folder); default: the run's --model_local_path or registered path."
    )
    parser.add_argument(
        "--dtype", choices=DTYPE_CHOICES, default="auto", help="Dtype of the merged weights (auto: the base's)."
    )
    parser.add_argument("--max_shard_size", default="5GB", help="Largest safetensors shard, e.g. 5GB.")
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    args = build_parser().parse_args(argv)
    output = merge(args.adapter_dir, args.output_dir, args.model_id, args.base, args.dtype, args.max_shard_size)
    print(f"merged checkpoint: {output}")
    return 0


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["merge", *sys.argv[1:]]))
