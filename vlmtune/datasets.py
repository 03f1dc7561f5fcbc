"""The internal sample, its up-front checks, media loading, and the lazy datasets that feed the Trainer.

    from vlmtune.formats import load_samples            # every data format becomes a list of `Sample`s
    dataset = LazySupervisedDataset(samples, collator.encode)

Every data format (LLaVA, ShareGPT, OpenAI messages, Hugging Face datasets; see vlmtune/formats.py) is read into
`Sample`. Images are paths, encoded bytes or PIL images, and are opened only when a sample is read.
`TO_LOAD_IMAGE` says per family whether the dataset opens images (PIL) or hands their paths on.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

logger = logging.getLogger(__name__)

IMAGE_PLACEHOLDER = "<image>"
VIDEO_PLACEHOLDER = "<video>"
USER, ASSISTANT = "user", "assistant"


class DataError(ValueError):
    """A problem with the data, reported before any model is loaded; the message names sample and field."""


class BadSample(ValueError):
    """A sample that cannot be trained on (e.g. it cannot fit `model_max_length`); names the sample."""


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


class _ToLoadImage(Mapping):
    """The TO_LOAD_IMAGE table, read live from the family records (vlmtune.supported_models)."""

    def _families(self):
        from vlmtune.supported_models import FAMILIES

        return FAMILIES

    def __getitem__(self, family_id: str) -> bool:
        return self._families()[family_id].to_load_image

    def __iter__(self) -> Iterator[str]:
        return iter(self._families())

    def __len__(self) -> int:
        return len(self._families())


TO_LOAD_IMAGE: Mapping[str, bool] = _ToLoadImage()


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
    """An RGB image from a path, encoded bytes or an image object."""
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with open_image_file(image) as opened:
        return opened.convert("RGB")


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
        name = image if isinstance(image, str) else "embedded image"
        return f"{name}: not a readable image ({type(error).__name__}: {error})"
    return None


def video_problem(path: str) -> str | None:
    """Why a video cannot be decoded (empty, no video stream, no frame), or None; decodes the first frame only."""
    if os.path.getsize(path) == 0:
        return f"{path}: empty file (0 bytes)"
    import av  # optional dependency: only video samples need it

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return f"{path}: has no video stream"
            next(container.decode(video=0))
    except StopIteration:
        return f"{path}: no video frames could be decoded"
    except Exception as error:  # PyAV raises its own error types per codec and container
        return f"{path}: not a decodable video ({type(error).__name__}: {error})"
    return None


class DecodedVideo(list):
    """The frames sampled from one video (a plain list of PIL images to every processor) and where they came from.

    `fps` is the file's frame rate (None when the container does not say) and `indices` the numbers of the sampled
    frames: processors that write frame timestamps into the prompt (Qwen3-VL, Qwen3.5) compute them from both.
    """

    def __init__(self, frames: list[Image.Image], fps: float | None, indices: list[int]):
        super().__init__(frames)
        self.fps = fps
        self.indices = indices


def decode_video(path: str, num_frames: int) -> DecodedVideo:
    """Exactly `num_frames` frames sampled evenly over the whole video (a short one repeats frames), via PyAV.

    Always the same count, so that families which stack videos per batch ([videos, frames, ...]) can batch them.
    """
    import av  # optional dependency: only video samples need it

    with av.open(path) as container:
        rate = container.streams.video[0].average_rate
        frames = [frame.to_image() for frame in container.decode(video=0)]
    if not frames:
        raise BadSample(f"{path}: no video frames could be decoded")
    picks = np.linspace(0, len(frames) - 1, num=num_frames).round().astype(int).tolist()
    return DecodedVideo([frames[i] for i in picks], float(rate) if rate else None, picks)


def load_media(sample: Sample, load_images: bool = True, num_frames: int = 8) -> tuple[list, list]:
    """A sample's images (opened, or paths handed on where the family's processor opens them) and videos."""
    images = [open_image(i) if load_images or not isinstance(i, str) else i for i in sample.images]
    videos = [decode_video(path, num_frames) for path in sample.videos]
    return images, videos


# --- the datasets ------------------------------------------------------------------------------------------


class LazySupervisedDataset(torch.utils.data.Dataset):
    """Samples are kept as text; images and videos are opened, and the sample encoded, only when it is read.

    `encode(sample, images, videos)` is the family collator's `encode`. A sample that fails there (too long to
    fit without cutting image tokens, nothing left to train, an image that cannot be read) is replaced by the next
    good sample, logged and counted in `skipped`: a batch is never short and a run never crashes half-way on one
    sample. (The checks before training, `vlmtune validate`, find such samples up front.)
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
        self.skipped: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def encode_sample(self, index: int) -> dict[str, torch.Tensor]:
        sample = self.samples[index]
        return self.encode(sample, *load_media(sample, self.load_images, self.num_frames))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        for offset in range(len(self.samples)):
            candidate = (index + offset) % len(self.samples)
            try:
                return self.encode_sample(candidate)
            except (BadSample, OSError) as error:
                if candidate not in self.skipped:
                    self.skipped[candidate] = str(error)
                    logger.warning("skipping bad sample (%d so far): %s", len(self.skipped), error)
        raise BadSample("every sample of the dataset is bad; see the warnings above")


class StreamingSupervisedDataset(torch.utils.data.IterableDataset):
    """Samples read lazily from a source larger than memory, each checked and encoded as it streams by.

    `read()` starts a fresh pass: it yields a `Sample`, or the DataError that names a record's problem. A bad
    sample is logged, counted in `skipped` and passed over: a run never crashes half-way on one sample. The
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
        self.skipped: dict[str, str] = {}

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for sample in self.read():
            try:
                if isinstance(sample, DataError):
                    raise sample
                self.check(sample)
                yield self.encode(sample, *load_media(sample, self.load_images, self.num_frames))
            except (DataError, BadSample, OSError) as error:
                self.skipped[getattr(sample, "source", str(error))] = str(error)
                logger.warning("skipping bad sample (%d so far): %s", len(self.skipped), error)
