"""Peak memory and time of video decoding on a generated minute of 720p/30fps (issue 11's case).

    python benchmarks/video_decode.py                 # decode_video at 8 and 32 frames, and one video epoch
    python benchmarks/video_decode.py --old           # also the decode-every-frame version it replaced (~7 GB!)

Each row runs in its own subprocess, so that its peak RSS (`resource.getrusage(...).ru_maxrss`) is its own:
- `decode_video N`: one `decode_video(path, N)` of the 60 s 1280x720 video (tests/media_fixtures.py writes it);
- `decode_video 8, no seek`: the same, decoding every frame in order (`SEEK_AHEAD_SECONDS` set to infinity in
  that subprocess), to show what seeking gains (32 picks of a minute are 2 s apart: that row never seeks);
- `old N`: the previous decoder (every frame to an image, then N kept), kept here for comparison only;
- `epoch`: 20 video samples (the same minute, 8 frames each) through `LazySupervisedDataset` and tiny-qwen2-vl's
  collator, one pass, as a training epoch reads them.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def old_decode_video(path: str, num_frames: int):
    """The decoder before issue 11: every frame became an image, then `num_frames` were kept."""
    import av
    import numpy as np

    with av.open(path) as container:
        frames = [frame.to_image() for frame in container.decode(video=0)]
    picks = np.linspace(0, len(frames) - 1, num=num_frames).round().astype(int).tolist()
    return [frames[i] for i in picks]


def epoch(path: str) -> None:
    from vlmtune.apps.validate import collator_for
    from vlmtune.arguments import DataArguments
    from vlmtune.datasets import LazySupervisedDataset, Sample, Turn

    family, collator = collator_for("tiny-qwen2-vl", None, DataArguments(data_path=path))
    samples = [
        Sample([Turn("user", "<video>\nWhat happens?"), Turn("assistant", "a gradient moves")], videos=[path])
        for _ in range(20)
    ]
    dataset = LazySupervisedDataset(samples, collator.encode, family.to_load_image, num_frames=8)
    for index in range(len(dataset)):
        dataset[index]
    assert not dataset.skipped, dataset.skipped


def child(row: str, path: str) -> None:
    import av  # noqa: F401 (imported before the floor is read, as every row imports it)

    import vlmtune.data.video as video  # no torch: the decoder's own memory (the epoch row imports the rest)

    floor_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    start = time.perf_counter()
    if row.endswith("no seek"):
        video.SEEK_AHEAD_SECONDS = float("inf")
    if row.startswith("decode_video"):
        video.decode_video(path, int(row.split()[1].rstrip(",")))
    elif row.startswith("old"):
        old_decode_video(path, int(row.split()[1]))
    elif row == "epoch":
        epoch(path)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"row": row, "seconds": seconds, "peak_rss_mb": peak_mb, "floor_mb": floor_mb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--old", action="store_true", help="Also run the old decoder (needs ~7 GB of memory).")
    parser.add_argument("--child", nargs=2, metavar=("ROW", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(*args.child)
    from tests.media_fixtures import write_minute_video

    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        path = write_minute_video(Path(folder) / "minute.mp4")
        size_mb = Path(path).stat().st_size / 2**20
        print(f"wrote 60 s of 1280x720 at 30 fps ({size_mb:.1f} MB) in {time.perf_counter() - start:.1f} s")
        rows = ["decode_video 8", "decode_video 8, no seek", "decode_video 32", "epoch"]
        rows += ["old 8", "old 32"] if args.old else []
        # The floor is the process after its imports, before the row's work: vlmtune.data.video (PIL, numpy, PyAV; no
        # torch) for the decode rows; the epoch row imports torch, transformers and the collator on top.
        print("| row | wall time (s) | peak RSS (MB) | floor: after imports (MB) | peak minus floor (MB) |")
        print("|---|---:|---:|---:|---:|")
        for row in rows:
            result = subprocess.run(
                [sys.executable, __file__, "--child", row, path], capture_output=True, text=True, check=True
            )
            measured = json.loads(result.stdout.splitlines()[-1])
            peak, floor = measured["peak_rss_mb"], measured["floor_mb"]
            print(f"| {row} | {measured['seconds']:.2f} | {peak:.0f} | {floor:.0f} | {peak - floor:.0f} |")


if __name__ == "__main__":
    main()
