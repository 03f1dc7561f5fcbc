"""Real-scale media, generated (never downloaded, never committed): long videos, truncated files, corrupt images.

    from tests.media_fixtures import write_numbered_video, frame_number, truncate, write_corrupt_image
    path = write_numbered_video(tmp_path / "minute.mp4", seconds=60, width=1280, height=720, fps=30)

Each frame of a numbered video carries its own number as a row of black/white squares (`frame_number` reads it
back, exact despite lossy compression), over a background that moves every frame, so the codec does real work.
Used by the tests and by benchmarks/video_decode.py.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

BITS = 12  # frame numbers up to 4095: a minute at 60 fps


def _square(height: int) -> int:
    return max(4, height // 24)


def numbered_frame(number: int, width: int, height: int, background: np.ndarray | None = None) -> np.ndarray:
    """An RGB frame: a diagonal gradient shifted by `number`, and `number` in binary as squares on the top row.

    `background` is `gradient(width, height)`, passed in when many frames are made (computing it is the slow part).
    """
    base = gradient(width, height) if background is None else background
    pixels = base + np.uint8(4 * number % 256)  # uint8 arithmetic wraps around: the gradient moves
    side = _square(height)
    for bit in range(BITS):
        pixels[:side, bit * side : (bit + 1) * side] = 255 if number >> bit & 1 else 0
    return pixels


def gradient(width: int, height: int) -> np.ndarray:
    ys, xs = np.ogrid[:height, :width]
    grey = ((xs + ys) % 256).astype(np.uint8)
    return np.stack([grey, grey // 2, grey], axis=2)


def frame_number(image) -> int:
    """The number a `numbered_frame` carries (read from a decoded PIL image or array, upright)."""
    pixels = np.asarray(image.convert("L") if hasattr(image, "convert") else image)
    side = _square(pixels.shape[0])
    half = side // 2
    centres = [pixels[half, bit * side + half] for bit in range(BITS)]
    return sum(1 << bit for bit, value in enumerate(centres) if value > 127)


def write_numbered_video(
    path: str | Path,
    seconds: float = 2.0,
    width: int = 64,
    height: int = 48,
    fps: int = 30,
    codec: str = "libx264",
    frame_times: list[float] | None = None,
    rotation: int | None = None,
    gop: int = 60,
    bframes: int = 0,
) -> str:
    """An mp4 (index at the front, as web videos have it) of numbered frames, written with PyAV.

    `frame_times` (seconds) makes a variable-frame-rate video with those presentation times instead of
    `seconds * fps` evenly spaced frames; `rotation` stores display-rotation metadata (degrees counterclockwise)
    as phones do, the pixels stay as written. `gop`: frames between keyframes (2 s at 30 fps, as many encoders);
    `bframes`: B-frames between reference frames (frames then leave the decoder in another order than they enter).
    """
    import av

    times = frame_times if frame_times is not None else [i / fps for i in range(round(seconds * fps))]
    time_base = Fraction(1, 90000 if frame_times is not None else fps)
    options = {"movflags": "faststart"} if str(path).endswith(".mp4") else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = stream.codec_context.time_base = time_base
        stream.codec_context.gop_size = gop
        if codec == "libx264":
            stream.codec_context.options = {"preset": "ultrafast", "crf": "32"}
        stream.codec_context.max_b_frames = bframes
        if rotation is not None:
            stream.set_display_rotation(rotation)
        background = gradient(width, height)
        for number, time in enumerate(times):
            pixels = numbered_frame(number, width, height, background)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = round(time / time_base), time_base
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return str(path)


def write_minute_video(path: str | Path) -> str:
    """The real-scale case of issue 11: 60 s of 1280x720 at 30 fps (1800 frames)."""
    return write_numbered_video(path, seconds=60, width=1280, height=720, fps=30)


def truncate(path: str | Path, keep: float = 0.5) -> str:
    """Cut a file to its first `keep` fraction of bytes (a download or copy that stopped half-way)."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: int(len(data) * keep)])
    return str(path)


def write_corrupt_image(path: str | Path) -> str:
    """A file named like an image whose bytes are no image format at all (PIL cannot identify it)."""
    Path(path).write_bytes(b"\x89PNX\r\n" + bytes(range(64)))
    return str(path)
