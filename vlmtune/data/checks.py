"""Checks of a data source before any model loads: every record's fields, roles, placeholders and files, the
family's capabilities, the media (headers, or every frame the sampler will pick), and optionally what the
processor makes of each sample. `vlmtune validate` prints them; `train`, `grpo` and `dpo` run them first.

    from vlmtune.data.checks import check_data, data_options
    report = check_data("train.jsonl", data_options("train.jsonl", data_args), family)
    report.errors, report.warnings, report.samples

The data layer: imports the bottom layer (errors, progress), the other data modules and vlmtune.arguments only
for the `DataArguments` type; a family is seen through `Capabilities`, the fields the checks read.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from vlmtune.data.formats import ReadOptions, iter_samples, read_options
from vlmtune.data.video import video_problem
from vlmtune.datasets import ASSISTANT, ImageRef, Sample, check_sample, encode_with_media, image_problem
from vlmtune.errors import BadSample, DataError
from vlmtune.progress import progress

if TYPE_CHECKING:
    from vlmtune.arguments import DataArguments


class Capabilities(Protocol):
    """What a family record (vlmtune.supported_models.Family) tells the checks about the samples it takes."""

    multi_image: bool
    video: bool
    system_prompt: bool
    multi_turn: bool
    system_prompt_with_images: bool
    to_load_image: bool


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
    family: Capabilities | None = None,
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
    (`check_reward_columns`).
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


def check_family(sample: Sample, family: Capabilities | None, needs_reply: bool = True) -> None:
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


# --- GRPO prompts: a conversation whose final assistant turn becomes the reward's `solution` ---


def to_prompt(sample: Sample) -> Sample:
    """The sample without its final assistant turn; that turn's text is kept as `solution` when none is given."""
    if not sample.turns or sample.turns[-1].role != ASSISTANT:
        return sample
    extra = dict(sample.extra)
    extra.setdefault("solution", sample.turns[-1].text)
    return dataclasses.replace(sample, turns=sample.turns[:-1], extra=extra)


def check_reward_columns(sample: Sample, columns: tuple[str, ...] | list[str]) -> None:
    """Every column a reward reads must exist (a final assistant turn stands in for `solution`)."""
    prompt = to_prompt(sample)
    if not prompt.turns:
        raise DataError(f"{sample.source}: no user turn is left as the prompt")
    missing = [column for column in columns if column not in prompt.extra]
    if missing:
        raise DataError(
            f"{sample.source}: no column {', '.join(map(repr, missing))} for the rewards (add it to the record, or "
            "end the conversation with the expected assistant reply, which becomes 'solution')"
        )
