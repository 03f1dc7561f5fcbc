"""Video frames for training and inference, in memory and time bounded by the number of frames, not the video's
length: the frame numbers are picked first (`pick_frames`) and only the picked frames become images.

    from vlmtune.data.video import decode_video, video_problem
    frames = decode_video("clip.mp4", num_frames=8)     # a DecodedVideo: 8 PIL images, .fps, .indices
    video_problem("clip.mp4", num_frames=8)            # None, or why the file cannot be used (truncated, ...)

PyAV is an optional dependency, imported when a video is opened. This module imports no torch, so a process that
only decodes video stays small (benchmarks/video_decode.py).
"""

from __future__ import annotations

import contextlib
import os
from fractions import Fraction

import numpy as np
from PIL import Image

from vlmtune.errors import BadSample


def video_problem(path: str, num_frames: int = 8, decode: bool = True) -> str | None:
    """Why a video cannot be used (empty, no video stream, truncated, damaged), or None.

    Decodes every frame that `decode_video(path, num_frames)` would pick, through the same code, without turning
    them into images: a file cut short is found whichever of its frames the sampler needs. `decode=False` (the
    quick check before training) decodes the first frame only, and checks that every frame the header promises is
    in the file from the index (MP4/MOV: the header alone), or by reading the packets (other containers).
    """
    if os.path.getsize(path) == 0:
        return f"{path}: empty file (0 bytes)"
    try:
        if decode:
            sample_frames(path, num_frames, to_image=False)
        else:
            with _open_video(path) as (container, stream):
                _check_packets(container, stream, path)
    except BadSample as error:
        return str(error)
    return None


class DecodedVideo(list):
    """The frames sampled from one video (a plain list of PIL images to every processor) and where they came from.

    `fps` is the file's average frame rate (None when the container does not say) and `indices` the numbers of
    the sampled frames: frame `k` is the one nearest to `indices[k] / fps` seconds into the video (in a constant-rate
    video, frame number `indices[k]`; in a variable-rate one, by its timestamp). Processors that write
    frame timestamps into the prompt (Qwen3-VL, Qwen3.5, SmolVLM2) compute them from both.
    """

    def __init__(self, frames: list[Image.Image], fps: float | None, indices: list[int]):
        super().__init__(frames)
        self.fps = fps
        self.indices = indices


def decode_video(path: str, num_frames: int) -> DecodedVideo:
    """Exactly `num_frames` frames sampled evenly over the whole video (a short one repeats frames), via PyAV.

    Always the same count, so that families which stack videos per batch ([videos, frames, ...]) can batch them.
    Memory is O(num_frames) whatever the video's length: the frame numbers are picked first (`pick_frames`) and
    only the picked frames become images, upright as a player shows them (rotation metadata applied). A file
    that cannot be decoded, or ends before a picked frame, raises BadSample naming it.
    """
    return sample_frames(path, num_frames, to_image=True)


def pick_frames(total: int, num_frames: int) -> list[int]:
    """`num_frames` frame numbers spread evenly from the first frame to the last (repeated when total is less)."""
    return np.linspace(0, total - 1, num=num_frames).round().astype(int).tolist()


# Seek (to the keyframe before a pick) rather than decode through, when the next pick is this many seconds ahead:
# decoding from a keyframe costs at most one group of pictures (typically 1-10 s), decoding through costs the gap.
SEEK_AHEAD_SECONDS = 4.0


def sample_frames(path: str, num_frames: int, to_image: bool = True) -> DecodedVideo:
    """`decode_video`'s work; `to_image=False` decodes the same frames without converting them (`video_problem`)."""
    with _open_video(path) as (container, stream):
        return _sample_stream(container, stream, path, num_frames, to_image)


@contextlib.contextmanager
def _open_video(path: str):
    """(container, first video stream) of a file; any PyAV error inside becomes a BadSample naming the file."""
    import av  # optional dependency: only video samples need it

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise BadSample(f"{path}: has no video stream")
            stream = container.streams.video[0]
            # Two decoding threads (frame and slice): about 2x faster on 2 cores (benchmarks/video_decode.py); not
            # one per core, which would oversubscribe the cores when several dataloader workers decode at once.
            stream.thread_type, stream.codec_context.thread_count = "AUTO", 2
            yield container, stream
    except BadSample:
        raise
    except Exception as error:  # PyAV raises its own error types per codec and container (not OSErrors)
        raise BadSample(f"{path}: not a decodable video ({type(error).__name__}: {error})") from None


def _check_packets(container, stream, path: str) -> None:
    """Every frame the header promises is in the file: where the index lists every frame (MP4, MOV), each frame's
    bytes must lie within the file's size (nothing more is read); otherwise the packets are read and counted."""
    total, _ = _frame_count(container, stream)
    entries = stream.index_entries
    if len(entries) >= total:
        size = os.path.getsize(path)
        packets = sum(1 for entry in entries if entry.pos + entry.size <= size)
    else:
        packets = sum(1 for packet in container.demux(stream) if packet.size)
    if packets < total - _end_tolerance(total):
        raise BadSample(f"{path}: holds {packets} of the {total} frames its header promises (the file is truncated)")
    container.seek(0)
    if next(container.decode(stream), None) is None:
        raise BadSample(f"{path}: no video frames could be decoded")


def _end_tolerance(total: int) -> float:
    """How many frames a stream may end short of its header's count (or estimate) without being called truncated:
    estimates from the duration are off by a frame or two, and a variable-rate video's last frame may be long."""
    return max(2, total / 50)


def _frame_count(container, stream) -> tuple[int, bool]:
    """The stream's frame count and whether it is exact: the header's count, else duration x average rate,
    else the number of packets (one frame each, for video), counted without decoding."""
    if stream.frames:
        return stream.frames, True
    rate = stream.average_rate
    if rate and stream.duration and stream.time_base:
        return max(1, round(float(stream.duration * stream.time_base * rate))), False
    if rate and container.duration:
        return max(1, round(container.duration / 1_000_000 * float(rate))), False
    count = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0)
    return count, True


class _Picker:
    """Walks decoded frames in order and keeps, for each picked frame number, the frame nearest to it."""

    def __init__(self, picks: list[int], to_image: bool):
        self.picks = picks
        self.to_image = to_image
        self.chosen: list = []
        self.previous: tuple[float, object] | None = None  # (position, frame) of the last frame seen
        self.last_kept: tuple[object, object] | None = None  # (a frame, its image): a repeat is not converted again

    @property
    def done(self) -> bool:
        return len(self.chosen) == len(self.picks)

    @property
    def next_pick(self) -> int:
        return self.picks[len(self.chosen)]

    def see(self, position: float, frame) -> None:
        """A decoded frame at `position` (its time x fps: its frame number in a constant-rate video)."""
        while not self.done and position >= self.next_pick:
            nearer_previous = self.previous and self.next_pick - self.previous[0] < position - self.next_pick
            self.keep(self.previous[1] if nearer_previous else frame)
        self.previous = (position, frame)

    def keep(self, frame) -> None:
        if self.last_kept is None or self.last_kept[0] is not frame:
            self.last_kept = (frame, upright_image(frame) if self.to_image else None)
        self.chosen.append(self.last_kept[1])


# PyAV's `frame.rotation`: the display matrix's counterclockwise rotation in degrees, in [-180, 180].
UPRIGHT = {
    90: Image.Transpose.ROTATE_90,
    -90: Image.Transpose.ROTATE_270,
    180: Image.Transpose.ROTATE_180,
    -180: Image.Transpose.ROTATE_180,
}


def upright_image(frame) -> Image.Image:
    """The frame as an RGB image, rotated as the file's display matrix says (phones store portrait video so);
    flips in the matrix, which PyAV does not report, are not applied."""
    image = frame.to_image()
    rotation = frame.rotation
    return image.transpose(UPRIGHT[rotation]) if rotation in UPRIGHT else image


def _sample_stream(container, stream, path: str, num_frames: int, to_image: bool) -> DecodedVideo:
    """Decode forward through the stream, keeping the frames nearest the picks; seek when the next pick is far."""
    rate = stream.average_rate
    fps = float(rate) if rate else None
    total, exact = _frame_count(container, stream)
    if total < 1:
        raise BadSample(f"{path}: no video frames could be decoded")
    picks = pick_frames(total, num_frames)
    picker = _Picker(sorted(set(picks)), to_image)
    timed = fps is not None and stream.time_base is not None
    start = stream.start_time if stream.start_time is not None else 0
    seek_gap = SEEK_AHEAD_SECONDS * fps if timed else float("inf")
    count, position, sought = 0, None, None  # frames decoded, the last one's position, the pick last sought
    while not picker.done:
        if position is not None:  # far ahead: jump to the keyframe before the pick, not decode every frame to it
            sought = picker.next_pick
            container.seek(start + int(Fraction(sought) / rate / stream.time_base), stream=stream)
        stopped_early = False
        for frame in container.decode(stream):
            count += 1
            # A frame's position is its time x the average rate: its frame number in a constant-rate video, and
            # its time counted in average frames in a variable-rate one (counted in decoding order without times).
            timed_frame = timed and frame.pts is not None
            position = float((frame.pts - start) * stream.time_base * rate) if timed_frame else count - 1
            picker.see(position, frame)
            if picker.done:
                break
            if picker.next_pick - position > seek_gap and picker.next_pick != sought:
                stopped_early = True
                break
        if not stopped_early:
            break
    if not picker.done:
        # The stream ended first: fine within a frame or two of its end (the last frame of a variable-rate video
        # may last longer than average), else the file is cut short.
        whole = sought is None and count >= total - 1 and exact  # decoded from the start, every frame there
        if picker.previous is None or (not whole and picker.next_pick - picker.previous[0] > _end_tolerance(total)):
            reached = "no frame" if picker.previous is None else f"frame {round(picker.previous[0])}"
            raise BadSample(
                f"{path}: decoding ended at {reached} of {total} (the file is truncated or damaged; frame "
                f"{picker.next_pick} is needed)"
            )
        while not picker.done:
            picker.keep(picker.previous[1])
    by_pick = dict(zip(picker.picks, picker.chosen, strict=True))
    return DecodedVideo([by_pick[i] for i in picks] if to_image else [], fps, picks)
