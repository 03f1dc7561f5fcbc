"""The internal sample, its up-front checks, media loading, and the lazy datasets that feed the Trainer.

    from vlmtune.data.formats import load_samples            # every data format becomes a list of `Sample`s
    dataset = LazySupervisedDataset(samples, collator.encode)

Every data format (LLaVA, ShareGPT, OpenAI messages, Hugging Face datasets; see vlmtune/data/formats.py) is read into
`Sample`. Images are paths, encoded bytes or PIL images, and are opened only when a sample is read.
`TO_LOAD_IMAGE` says per family whether the dataset opens images (PIL) or hands their paths on.
Videos are sampled to `num_frames` frames by `decode_video`, which decodes only the frames it picks (memory and
time do not grow with the video's length). A file that cannot be read, and media a processor refuses, become a
`BadSample` naming the sample, the file and the reason: the datasets skip it, log it once and count it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from PIL import Image

from vlmtune.data.video import decode_video
from vlmtune.errors import BadSample, DataError

logger = logging.getLogger(__name__)

IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"
USER, ASSISTANT = "user", "assistant"


# An image as a sample holds it: a file path, the encoded file's bytes, or an opened image.
ImageRef = str | bytes | Image.Image


@dataclass
class Turn:
    role: str  # "user" or "assistant"
    text: str  # with <image>/<video> placeholders in user turns


@dataclass
class Sample:
    """The internal form every data format is read into."""

    turns: list[Turn]
    images: list[ImageRef] = field(default_factory=list)
    videos: list[str] = field(default_factory=list)
    system_prompt: str | None = None
    source: str = ""  # "file.jsonl line 12" / "file.json sample 3": where to look when it is reported
    # The record's other columns (e.g. a `solution` for GRPO rewards), passed through untouched.
    extra: dict[str, Any] = field(default_factory=dict)


# family id -> open images with PIL in the dataset (True) or hand their paths to the processor (False). Filled by
# vlmtune.supported_models.register_family from each family record (the registry sits above the data layer, so
# the record writes here rather than this module reading the registry).
TO_LOAD_IMAGE: dict[str, bool] = {}


def check_sample(
    sample: Sample,
    multi_image: bool = True,
    video: bool = True,
    system_prompt: bool = True,
    multi_turn: bool = True,
    system_prompt_with_images: bool = True,
    needs_reply: bool = True,
) -> None:
    """Raise DataError for what would go wrong later: role order, placeholder counts, missing files.

    The flags are the family's capabilities (`vlmtune.supported_models.Family`); `needs_reply=False` accepts a
    conversation that ends with a user turn (a GRPO prompt).
    """
    source = sample.source
    for number, turn in enumerate(sample.turns):
        expected = USER if number % 2 == 0 else ASSISTANT
        if turn.role != expected:
            raise DataError(
                f"{source}: conversations[{number}] must be a {expected} turn (turns alternate, user first)"
            )
        if turn.role == ASSISTANT and (IMAGE_PLACEHOLDER in turn.text or VIDEO_PLACEHOLDER in turn.text):
            raise DataError(f"{source}: conversations[{number}]: assistant turns cannot hold <image>/<video>")
    if needs_reply and sample.turns[-1].role != ASSISTANT:
        raise DataError(f"{source}: the last turn must be the assistant's (nothing to train on otherwise)")
    for placeholder, files, key in (
        (IMAGE_PLACEHOLDER, sample.images, "image"),
        (VIDEO_PLACEHOLDER, sample.videos, "video"),
    ):
        count = sum(turn.text.count(placeholder) for turn in sample.turns)
        if count != len(files):
            raise DataError(
                f"{source}: {count} {placeholder} placeholder(s) in the conversation but {len(files)} file(s) in "
                f"field {key!r}; put one {placeholder} where each {key} goes"
            )
        for path in files:
            if isinstance(path, str) and not os.path.isfile(path):
                raise DataError(f"{source}: field {key!r}: file not found: {path}")
    if len(sample.images) > 1 and not multi_image:
        raise DataError(f"{source}: {len(sample.images)} images, but this model family takes one image per sample")
    if sample.videos and not video:
        raise DataError(f"{source}: has a video, but this model family does not take video input")
    if sample.system_prompt and not system_prompt:
        raise DataError(f"{source}: has a system_prompt, but this model family's chat template has no system role")
    if len(sample.turns) > 2 and not multi_turn:
        raise DataError(
            f"{source}: field 'conversations' has {len(sample.turns)} turns, but this model family takes one user "
            "turn and one assistant reply per sample (split the conversation into single-turn samples)"
        )
    if sample.system_prompt and sample.images and not system_prompt_with_images:
        raise DataError(
            f"{source}: has a system_prompt and images, but this model family's chat template refuses a system "
            "prompt next to images; put the instruction into the user turn, or drop the system_prompt"
        )


# --- media ------------------------------------------------------------------------------------------------


def open_image_file(image: str | bytes) -> Image.Image:
    """PIL's lazy handle on an image file or its encoded bytes: the header is read, no pixel is decoded yet."""
    return Image.open(io.BytesIO(image) if isinstance(image, bytes) else image)


def open_image(image: ImageRef) -> Image.Image:
    """An RGB image from a path, encoded bytes or an image object; BadSample (naming the file) if it is unreadable."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    try:
        with open_image_file(image) as opened:
            return opened.convert("RGB")
    except Exception as error:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        raise BadSample(f"{_image_name(image)}: not a readable image ({type(error).__name__}: {error})") from None


def _image_name(image: ImageRef) -> str:
    return image if isinstance(image, str) else "embedded image"


def image_problem(image: ImageRef, decode: bool = True) -> str | None:
    """Why an image cannot be used (empty, not an image, corrupt), or None; `decode=False` reads the header only."""
    if isinstance(image, Image.Image):
        return None
    if isinstance(image, str) and os.path.getsize(image) == 0:
        return f"{image}: empty file (0 bytes)"
    try:
        with open_image_file(image) as opened:
            if decode:
                opened.load()
    except Exception as error:  # PIL raises many types (UnidentifiedImageError, OSError, SyntaxError, ...)
        return f"{_image_name(image)}: not a readable image ({type(error).__name__}: {error})"
    return None


def load_media(sample: Sample, load_images: bool = True, num_frames: int = 8) -> tuple[list, list]:
    """A sample's images (opened, or paths handed on where the family's processor opens them) and videos.

    A file that cannot be read raises BadSample naming the sample, the file and the reason.
    """
    images, videos = [], []
    for index, image in enumerate(sample.images):
        try:
            images.append(open_image(image) if load_images or not isinstance(image, str) else image)
        except BadSample as error:
            raise BadSample(f"{sample.source}: image {index}: {error}") from None
    for index, path in enumerate(sample.videos):
        try:
            videos.append(decode_video(path, num_frames))
        except BadSample as error:
            raise BadSample(f"{sample.source}: video {index}: {error}") from None
    return images, videos


def encode_with_media(
    encode: Callable[[Sample, list, list], dict], sample: Sample, load_images: bool = True, num_frames: int = 8
) -> dict:
    """`encode(sample, images, videos)` with the sample's media loaded: a bad file, or media the processor refuses
    (processors raise ValueError, e.g. for an image smaller than their patch; a file removed mid-run raises
    OSError), becomes a BadSample naming the sample and the reason, which every caller skips and counts."""
    try:
        return encode(sample, *load_media(sample, load_images, num_frames))
    except BadSample:
        raise
    except (ValueError, OSError) as error:
        raise BadSample(f"{sample.source}: {type(error).__name__}: {error}") from None


def skipped_summary(skipped: Mapping[object, str], during: str) -> str:
    """One readable list of the samples skipped `during` something (each line: sample, file and reason), in the
    data's order."""
    order = sorted(skipped) if all(isinstance(key, int) for key in skipped) else list(skipped)  # streamed: as met
    lines = "\n".join(f"  {skipped[key]}" for key in order)
    return f"skipped {len(skipped)} bad sample(s) during {during}:\n{lines}"


# --- the datasets ------------------------------------------------------------------------------------------


class SkipRecord:
    """The bad samples met while reading a dataset (sample key -> why), each logged once however many epochs and
    dataloader worker processes meet it. Kept in a small temporary file, because each worker reads its own copy of
    the dataset: the copies append to the file, and the training process lists them all at the end."""

    def __init__(self):
        handle, self.path = tempfile.mkstemp(prefix="vlmtune-skipped-", suffix=".jsonl")
        os.close(handle)
        weakref.finalize(self, _remove_if_owner, self.path, os.getpid())  # not by a worker's copy of the dataset

    def add(self, key: int | str, why: str) -> None:
        known = self.read()
        if key in known:
            return
        with open(self.path, "a", encoding="utf-8") as file:  # one short append: whole lines, even from workers
            file.write(json.dumps([key, why]) + "\n")
        logger.warning("skipping bad sample (%d so far): %s", len(known) + 1, why)

    def read(self) -> dict[int | str, str]:
        with open(self.path, encoding="utf-8") as file:
            return {key: why for key, why in map(json.loads, file)}


def _remove_if_owner(path: str, owner: int) -> None:
    if os.getpid() == owner and os.path.exists(path):
        os.remove(path)


class LazySupervisedDataset(torch.utils.data.Dataset):
    """Samples are kept as text; images and videos are opened, and the sample encoded, only when it is read.

    `encode(sample, images, videos)` is the family collator's `encode`. A sample that fails there (too long to
    fit without cutting image tokens, nothing left to train, an image that cannot be read) is replaced by the next
    good sample, logged once and counted in `skipped` (index -> why, across dataloader workers): a batch is never
    short and a run never crashes half-way on one sample. (The checks before training, `vlmtune validate`, find
    such samples up front.)
    """

    def __init__(
        self,
        samples: list[Sample],
        encode: Callable[[Sample, list, list], dict[str, torch.Tensor]],
        load_images: bool = True,
        num_frames: int = 8,
    ):
        self.samples = samples
        self.encode = encode
        self.load_images = load_images
        self.num_frames = num_frames
        self.skip_record = SkipRecord()

    @property
    def skipped(self) -> dict[int, str]:
        return self.skip_record.read()

    def __len__(self) -> int:
        return len(self.samples)

    def encode_sample(self, index: int) -> dict[str, torch.Tensor]:
        return encode_with_media(self.encode, self.samples[index], self.load_images, self.num_frames)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        for offset in range(len(self.samples)):
            candidate = (index + offset) % len(self.samples)
            try:
                return self.encode_sample(candidate)
            except BadSample as error:
                self.skip_record.add(candidate, str(error))  # a sample bad in every epoch is reported once
        raise BadSample("every sample of the dataset is bad; see the warnings above")


class StreamingSupervisedDataset(torch.utils.data.IterableDataset):
    """Samples read lazily from a source larger than memory, each checked and encoded as it streams by.

    `read()` starts a fresh pass: it yields a `Sample`, or the DataError that names a record's problem. A bad
    sample is logged once, counted in `skipped` (source -> why) and passed over: a run never crashes half-way on
    one sample. The
    Trainer needs `max_steps` with a streaming dataset (it has no length).
    """

    def __init__(
        self,
        read: Callable[[], Iterable[Sample | DataError]],
        encode: Callable[[Sample, list, list], dict[str, torch.Tensor]],
        check: Callable[[Sample], None],
        load_images: bool = True,
        num_frames: int = 8,
    ):
        self.read = read
        self.encode = encode
        self.check = check
        self.load_images = load_images
        self.num_frames = num_frames
        self.skip_record = SkipRecord()

    @property
    def skipped(self) -> dict[str, str]:
        return self.skip_record.read()

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for sample in self.read():
            try:
                if isinstance(sample, DataError):
                    raise sample
                self.check(sample)
                encoded = encode_with_media(self.encode, sample, self.load_images, self.num_frames)
            except (DataError, BadSample) as error:  # a sample bad in every pass is reported once
                self.skip_record.add(getattr(sample, "source", str(error)), str(error))
                continue
            yield encoded
