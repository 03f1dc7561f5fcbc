"""`vlmtune check`: what vlmtune derives from a checkpoint's own files, and whether each check passes, in seconds.

    vlmtune check tiny-qwen2-vl                                   # a registered id (its record against its files)
    vlmtune check /data/checkpoints/my-vlm                        # a folder: everything derived by convention
    vlmtune check /data/checkpoints/my-vlm --model_id qwen2-vl-7b-instruct   # a folder against a family's record

Reads the config, processor, chat template and generation config (never the weights; the model is built on the
meta device) and prints the derived facts (model type, stop tokens, media tokens, parts, end-of-turn) and one
pass/FAIL line per check (files, parts, each capability, replies, end-of-turn). Exit status 1 when a check fails.
`vlmtune train`, `grpo` and `validate --model_id` run the same checks before they load anything else.
"""

from __future__ import annotations

import sys
from pathlib import Path

from vlmtune.arguments import CommandParser
from vlmtune.errors import ArgumentError, UnknownNameError


def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(
        prog="vlmtune check",
        description="Derive and check what a checkpoint's own files say (no weights are read).",
    )
    parser.add_argument("model", help="A registered model id (vlmtune models) or a checkpoint folder.")
    parser.add_argument(
        "--model_id", default=None, help="Check a folder against this registered model's family record."
    )
    parser.add_argument("--trust_remote_code", action="store_true", help="Run processor code from the checkpoint.")
    args = parser.parse_args(argv)

    from vlmtune.core.checkpoint import check_checkpoint
    from vlmtune.core.modeling import checkpoint_path
    from vlmtune.supported_models import MODELS, get_model

    if args.model_id and not Path(args.model).is_dir():
        raise ArgumentError(f"with --model_id, {args.model!r} must be a checkpoint folder (it is not a folder)")
    if args.model in MODELS or args.model_id:
        entry = get_model(args.model_id or args.model)
        path = checkpoint_path(entry, args.model if args.model_id else None)
        family, label = entry.family, f"{entry.model_id} ({entry.family_id} record)"
    elif Path(args.model).is_dir():
        path, family, label = args.model, None, "no record: everything derived by convention"
    else:
        get_model(args.model)  # an unknown id: the one-line error with close matches
        raise UnknownNameError(f"{args.model!r} is neither a registered model id nor a folder")
    print(f"checking {path} ({label})")
    report = check_checkpoint(path, family, args.trust_remote_code)
    print("\n".join(report.lines()))
    print(f"{len(report.checks) - len(report.failures)} of {len(report.checks)} checks passed")
    return 1 if report.failures else 0


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["check", *sys.argv[1:]]))
