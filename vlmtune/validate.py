"""`vlmtune validate`: read every sample and report every problem at once, before any GPU time is spent.

    vlmtune validate --data_path train.jsonl                 # format, fields, roles, files, images, videos
    vlmtune validate --data_path train.jsonl --model_id qwen2-vl-2b-instruct --model_max_length 2048
        # ... and what the model's processor makes of each sample: does it fit without cutting image tokens,
        # is anything left to train? (loads the processor only, never the weights)

Each problem names the sample (index, or line for JSONL), the field and the reason; the last line counts them.
The exit status is 1 when any sample has an error (warnings do not count), 0 otherwise. Training runs the same
checks (without the processor pass) before it loads the model, and refuses to start on errors unless
`--skip_bad_samples` is given.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from vlmtune.arguments import DataArguments, DataclassParser
from vlmtune.datasets import (
    BadSample,
    DataError,
    ImageRef,
    Sample,
    check_sample,
    encode_with_media,
    image_problem,
)
from vlmtune.formats import ReadOptions, iter_samples, read_options
from vlmtune.progress import progress
from vlmtune.supported_models import Family
from vlmtune.video import video_problem


@dataclass
class Report:
    """What checking a data source found: the good samples, the errors and warnings, each naming its sample."""

    data_path: str
    checked: int = 0
    samples: list[Sample] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.data_path}: {self.checked} sample(s) checked: {len(self.samples)} ok, "
            f"{len(self.errors)} with errors, {len(self.warnings)} warning(s)"
        )


def data_options(data_path: str, data_args: DataArguments) -> ReadOptions:
    return read_options(
        data_path,
        data_args.image_folder,
        data_args.video_folder,
        data_args.user_key,
        data_args.assistant_key,
        data_args.data_format,
    )


def check_data(
    data_path: str,
    options: ReadOptions,
    family: Family | None = None,
    decode_media: bool = True,
    encode: Callable[[Sample, list, list], object] | None = None,
    num_frames: int = 8,
    reward_columns: tuple[str, ...] | None = None,
) -> Report:
    """Check every record: its fields, roles, placeholders and files, the family's capabilities, the media.

    `decode_media=False` reads only image headers, and of a video its first frame and whether every frame its
    header promises is in the file (the quick check before training); otherwise images are decoded, and so is
    every video frame that `num_frames` sampling will pick.
    `encode` (a collator's `encode`) also runs the processor on each sample, which finds samples that cannot
    fit `model_max_length` without cutting media tokens or that keep nothing to train. A long run shows its
    progress on stderr (vlmtune.progress).
    `reward_columns` (GRPO data): a prompt may end with a user turn, and each named column must exist
    (`vlmtune.grpo.data.check_reward_columns`).
    """
    report = Report(str(data_path))
    media = MediaChecks()
    what = f"checking {Path(data_path).name}" + (" with the processor" if encode else "")
    for _, sample in progress(iter_samples(data_path, options), count_records(data_path), what):
        report.checked += 1
        try:
            if isinstance(sample, DataError):
                raise sample
            check_family(sample, family, needs_reply=reward_columns is None)
            if reward_columns is not None:
                from vlmtune.grpo.data import check_reward_columns

                check_reward_columns(sample, reward_columns)
            if encode is None:
                media.check(sample, decode_media, num_frames)
            else:
                encode_sample(sample, encode, family.to_load_image if family else True, num_frames, media)
        except DataError as error:
            report.errors.append(str(error))
            continue
        report.warnings += path_warnings(sample, options, media.real_path)
        report.samples.append(sample)
    if report.checked == 0:
        report.errors.append(f"{data_path}: no samples")
    return report


def count_records(data_path: str | Path) -> int | None:
    """How many records a .jsonl or .json file holds, for the progress estimate; None when not known cheaply."""
    path = Path(data_path)
    if not path.is_file():
        return None
    if path.suffix == ".jsonl":
        with path.open("rb") as lines:
            return sum(1 for line in lines if line.strip())
    if path.suffix == ".json" and path.stat().st_size <= 256 * 2**20:  # parsed twice: only while that is cheap
        try:
            records = json.loads(path.read_bytes())
        except ValueError:
            return None  # the reader names the problem
        return len(records) if isinstance(records, list) else None
    return None


def encode_sample(sample: Sample, encode: Callable, load_images: bool, num_frames: int, media: MediaChecks) -> None:
    """Run the processor on a sample, decoding its media once (no separate decoding check first; where the
    family's processor opens image paths itself, they are checked first): a file that fails to load, or media the
    processor refuses, is a DataError naming the sample, the file and the reason."""
    if not load_images:
        media.check(sample, decode=True, num_frames=num_frames)
    try:
        encode_with_media(encode, sample, load_images, num_frames)
    except BadSample as error:
        raise DataError(str(error)) from None


def check_family(sample: Sample, family: Family | None, needs_reply: bool = True) -> None:
    if family is None:
        check_sample(sample, needs_reply=needs_reply)
    else:
        check_sample(
            sample,
            multi_image=family.multi_image,
            video=family.video,
            system_prompt=family.system_prompt,
            multi_turn=family.multi_turn,
            system_prompt_with_images=family.system_prompt_with_images,
            needs_reply=needs_reply,
        )


class MediaChecks:
    """The media checks of one pass over a data source. A file that many samples share (a few hundred images
    behind thousands of samples is common) is checked, and its path resolved, once per pass."""

    def __init__(self):
        self.problems: dict[tuple[str, str, bool, int], str | None] = {}
        self.real_paths: dict[str, str] = {}

    def check(self, sample: Sample, decode: bool, num_frames: int = 8) -> None:
        """Raise DataError naming the sample's first unusable image or video."""
        for index, image in enumerate(sample.images):
            problem = self.problem("image", image, decode, num_frames)
            if problem:
                raise DataError(f"{sample.source}: image {index}: {problem}")
        for index, path in enumerate(sample.videos):
            problem = self.problem("video", path, decode, num_frames)
            if problem:
                raise DataError(f"{sample.source}: video {index}: {problem}")

    def problem(self, kind: str, media: ImageRef, decode: bool, num_frames: int) -> str | None:
        if not isinstance(media, str):  # embedded bytes or an image object: one sample's own
            return image_problem(media, decode=decode)
        key = (kind, media, decode, num_frames)
        if key not in self.problems:
            if kind == "image":
                self.problems[key] = image_problem(media, decode=decode)
            else:
                self.problems[key] = video_problem(media, num_frames, decode=decode)
        return self.problems[key]

    def real_path(self, path: str) -> str:
        if path not in self.real_paths:
            self.real_paths[path] = os.path.realpath(path)
        return self.real_paths[path]


def path_warnings(
    sample: Sample, options: ReadOptions, real_path: Callable[[str], str] = os.path.realpath
) -> list[str]:
    """Relative media paths that lead outside their folder through '..' or a symlink: reported, not followed
    silently (an absolute path in the data is taken as meant)."""
    warnings = []
    media = (("image", sample.images, options.image_folder), ("video", sample.videos, options.video_folder))
    for kind, paths, folder in media:
        root = real_path(str(folder))
        for path in paths:
            if not isinstance(path, str) or not path.startswith(str(folder) + os.sep):
                continue
            real = real_path(path)
            if os.path.commonpath([root, real]) != root:
                warnings.append(
                    f"{sample.source}: {kind} {os.path.relpath(path, folder)} resolves to {real}, outside the "
                    f"{kind} folder {folder} (through '..' or a symlink); check that this is meant"
                )
    return warnings


# --- the command ------------------------------------------------------------------------------------------


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
        metadata={"help": "sft, or grpo: prompts may end with a user turn and --reward_columns must exist."},
    )
    reward_columns: list[str] = field(
        default_factory=lambda: ["solution"],
        metadata={
            "help": "With --task grpo: the columns the rewards read (a final assistant turn counts as 'solution')."
        },
    )


def collator_for(model_id: str, local_path: str | None, data_args: DataArguments, trust_remote_code: bool = False):
    """The family and collator of a registered model, with its processor only (no weights are loaded)."""
    from vlmtune.modeling import load_processor
    from vlmtune.supported_models import get_model

    entry = get_model(model_id)
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
    if args.task not in ("sft", "grpo"):
        from vlmtune.arguments import ArgumentError

        raise ArgumentError(f"--task must be sft or grpo, got {args.task!r}")
    reward_columns = tuple(args.reward_columns) if args.task == "grpo" else None
    family, encode = None, None
    if args.model_id:
        family, collator = collator_for(args.model_id, args.model_local_path, data_args, args.trust_remote_code)
        encode = collator.encode
    paths = [data_args.data_path] + ([data_args.eval_data_path] if data_args.eval_data_path else [])
    failed = False
    for data_path in paths:
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
    from vlmtune.cli import main as cli_main

    sys.exit(cli_main(["validate", *sys.argv[1:]]))
