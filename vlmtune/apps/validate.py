"""`vlmtune validate`: read every sample and report every problem at once, before any GPU time is spent.

    vlmtune validate --data_path train.jsonl                 # format, fields, roles, files, images, videos
    vlmtune validate --data_path pairs.jsonl --task dpo      # preference pairs: both replies, one line a problem
    vlmtune validate --data_path train.jsonl --model_id qwen2-vl-2b-instruct --model_max_length 2048
        # ... and what the model's processor makes of each sample: does it fit without cutting image tokens,
        # is anything left to train? (loads the processor only, never the weights; first the checks of the
        # checkpoint's own files that `vlmtune check` shows: template, parts, tokens)

Each problem names the sample (index, or line for JSONL), the field and the reason; the last line counts them.
The exit status is 1 when any sample has an error (warnings do not count), 0 otherwise. Training runs the same
checks (without the processor pass) before it loads the model, and refuses to start on errors unless
`--skip_bad_samples` is given.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from vlmtune.arguments import DataArguments, DataclassParser
from vlmtune.data.checks import Report, check_data, data_options
from vlmtune.errors import ArgumentError


@dataclass
class ValidateArguments:
    model_id: str | None = field(
        default=None,
        metadata={"help": "Also check each sample against this model's processor and model_max_length."},
    )
    model_local_path: str | None = field(
        default=None, metadata={"help": "Load the processor from this local folder instead of the registered path."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Run processor code from the checkpoint."})
    task: str = field(
        default="sft",
        metadata={
            "help": "sft; grpo: prompts may end with a user turn and --reward_columns must exist; dpo: preference "
            "pairs (prompt + chosen + rejected; docs/dpo.md)."
        },
    )
    reward_columns: list[str] = field(
        default_factory=lambda: ["solution"],
        metadata={
            "help": "With --task grpo: the columns the rewards read (a final assistant turn counts as 'solution')."
        },
    )


def collator_for(
    model_id: str,
    local_path: str | None,
    data_args: DataArguments,
    trust_remote_code: bool = False,
    check: bool = False,
):
    """The family and collator of a registered model (its derived fields filled in after the checks of its
    checkpoint's own files, `vlmtune check`, where its record leaves them to the files), with its processor only."""
    from vlmtune.core.checkpoint import checked_entry
    from vlmtune.core.modeling import load_processor
    from vlmtune.supported_models import get_model

    entry = get_model(model_id)
    if check or entry.family.derived:
        entry = checked_entry(entry, local_path, trust_remote_code)
    processor = load_processor(entry, local_path, trust_remote_code)
    family = entry.family
    collator = family.collator(processor, family.reply_end, data_args.model_max_length, data_args.pad_to_multiple_of)
    return family, collator


def print_report(report: Report, stream=None) -> None:
    stream = stream or sys.stdout
    for error in report.errors:
        print(f"error: {error}", file=stream)
    for warning in report.warnings:
        print(f"warning: {warning}", file=stream)
    print(report.summary(), file=stream)


def main(argv: list[str] | None = None) -> int:
    parser = DataclassParser(
        (DataArguments, ValidateArguments),
        prog="vlmtune validate",
        description="Check a data file and report every problem at once.",
    )
    data_args, args = parser.parse_args_into_dataclasses(args=argv)
    if args.task not in ("sft", "grpo", "dpo"):
        raise ArgumentError(f"--task must be sft, grpo or dpo, got {args.task!r}")
    reward_columns = tuple(args.reward_columns) if args.task == "grpo" else None
    family, encode = None, None
    if args.model_id:
        family, collator = collator_for(
            args.model_id, args.model_local_path, data_args, args.trust_remote_code, check=True
        )
        encode = collator.encode
    paths = [data_args.data_path] + ([data_args.eval_data_path] if data_args.eval_data_path else [])
    failed = False
    for data_path in paths:
        if args.task == "dpo":
            from vlmtune.dpo.data import check_pairs

            options = data_options(data_path, data_args)
            report = check_pairs(data_path, options, family, encode=encode, num_frames=data_args.num_frames)
            print_report(report)
            failed = failed or bool(report.errors)
            continue
        report = check_data(
            data_path,
            data_options(data_path, data_args),
            family,
            encode=None if reward_columns is not None else encode,  # a prompt has no reply to encode
            num_frames=data_args.num_frames,
            reward_columns=reward_columns,
        )
        print_report(report)
        failed = failed or bool(report.errors)
    return 1 if failed else 0


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["validate", *sys.argv[1:]]))
