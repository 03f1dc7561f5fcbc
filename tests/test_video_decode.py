"""decode_video picks documented frame numbers and returns exactly those frames, whatever the file's shape.

Every video here is a numbered video (tests/media_fixtures.py): each frame carries its own number, so the test
reads back which frame was really returned. Picks are `round(linspace(0, total - 1, num_frames))`.
"""

from __future__ import annotations

import re

import pytest
from PIL import Image

from tests.media_fixtures import frame_number, truncate, write_minute_video, write_numbered_video
from vlmtune.data.video import decode_video, pick_frames, video_problem
from vlmtune.errors import BadSample

# The two ways a file cut short ends (tests/test_bad_media.py uses it too).
CUT_SHORT = (
    r"{path}: (decoding ended at frame \d+ of {total} \(the file is truncated or damaged; frame \d+ is needed\)"
    r"|not a decodable video \(InvalidDataError: \[Errno 1094995529\] Invalid data found when processing input: "
    r"'avcodec_\w+\(\)'\))"
)


def numbers(video) -> list[int]:
    return [frame_number(image) for image in video]


def test_a_normal_video_gives_the_evenly_spread_frames_and_its_frame_rate(tmp_path):
    path = write_numbered_video(tmp_path / "v.mp4", seconds=2, fps=30)  # 60 frames
    video = decode_video(path, 8)
    assert video.indices == [0, 8, 17, 25, 34, 42, 51, 59]
    assert numbers(video) == video.indices
    assert video.fps == 30.0
    assert video[0].size == (64, 48) and video[0].mode == "RGB"


def test_a_minute_long_video_seeks_and_still_returns_exactly_the_picked_frames(tmp_path):
    path = write_numbered_video(tmp_path / "minute.mp4", seconds=60, fps=30)  # 1800 frames of 64 x 48
    video = decode_video(path, 8)
    assert video.indices == [0, 257, 514, 771, 1028, 1285, 1542, 1799]
    assert numbers(video) == video.indices
    assert numbers(decode_video(path, 3)) == [0, 900, 1799]


def test_b_frames_reordered_by_the_decoder_still_give_the_picked_frames(tmp_path):
    import av

    path = write_numbered_video(tmp_path / "b.mp4", seconds=30, fps=30, bframes=3)  # 900 frames, seeks too
    with av.open(path) as container:
        assert any(frame.pict_type == av.video.frame.PictureType.B for frame in container.decode(video=0))
    video = decode_video(path, 8)
    assert video.indices == [0, 128, 257, 385, 514, 642, 771, 899]
    assert numbers(video) == video.indices


def test_a_video_shorter_than_num_frames_repeats_frames_to_keep_the_count(tmp_path):
    path = write_numbered_video(tmp_path / "short.mp4", seconds=0.2, fps=30)  # 6 frames
    video = decode_video(path, 8)
    assert video.indices == [0, 1, 1, 2, 3, 4, 4, 5]
    assert numbers(video) == [0, 1, 1, 2, 3, 4, 4, 5]


def test_a_variable_rate_video_is_sampled_by_time(tmp_path):
    # 10 frames over 1.5 s: the average rate is 10 / 1.5 = 6.67 fps. Pick k is the frame nearest to
    # indices[k] / fps seconds: 0 s, 0.3 s (frame 3 at 0.2 s), 0.6 s (frame 4), 1.05 s (frame 7 at 1.2 s), 1.35 s.
    times = [0, 0.1, 0.15, 0.2, 0.6, 0.7, 0.75, 1.2, 1.3, 1.4]
    path = write_numbered_video(tmp_path / "vfr.mp4", frame_times=times, fps=10)
    video = decode_video(path, 5)
    assert video.indices == [0, 2, 4, 7, 9]
    assert video.fps == pytest.approx(20 / 3)
    assert numbers(video) == [0, 3, 4, 7, 9]


def test_a_container_without_a_frame_count_is_sampled_from_duration_times_rate(tmp_path):
    import av

    path = write_numbered_video(tmp_path / "v.mkv", seconds=2, fps=30)  # Matroska stores no frame count
    with av.open(path) as container:
        assert container.streams.video[0].frames == 0
    video = decode_video(path, 8)
    assert video.indices == [0, 8, 17, 25, 34, 42, 51, 59]
    assert numbers(video) == video.indices


@pytest.mark.parametrize(
    ("rotation", "back"),
    [(90, Image.Transpose.ROTATE_270), (-90, Image.Transpose.ROTATE_90), (180, Image.Transpose.ROTATE_180)],
)
def test_rotation_metadata_turns_the_frames_as_a_player_shows_them(tmp_path, rotation, back):
    path = write_numbered_video(tmp_path / "phone.mp4", seconds=0.5, rotation=rotation)  # stored 64 x 48
    video = decode_video(path, 4)
    assert video[0].size == ((48, 64) if rotation != 180 else (64, 48))
    assert [frame_number(image.transpose(back)) for image in video] == [0, 5, 9, 14]


def test_a_truncated_video_is_found_by_the_checks_and_refused_by_decode_video(tmp_path):
    # Half the bytes of a 4 s video (index at the front). Decoding in order, the decoder either stops at the
    # half-cut packet (InvalidDataError) or passes it and runs out of frames, depending on its threads' timing.
    path = truncate(write_numbered_video(tmp_path / "cut.mp4", seconds=4, fps=30))
    assert re.fullmatch(CUT_SHORT.format(path=re.escape(path), total=120), video_problem(path, 8))
    assert (
        video_problem(path, 8, decode=False) == f"{path}: holds 55 of the 120 frames its header promises (the "
        "file is truncated)"
    )
    with pytest.raises(BadSample, match=CUT_SHORT.format(path=re.escape(path), total=120)):
        decode_video(path, 8)
    # Half of a minute: seeking past the cut finds no frame where the index promised one.
    path = truncate(write_numbered_video(tmp_path / "minute.mp4", seconds=60, fps=30))
    ended = f"{path}: decoding ended at frame 771 of 1800 (the file is truncated or damaged; frame 1028 is needed)"
    assert video_problem(path, 8) == ended
    with pytest.raises(BadSample) as error:
        decode_video(path, 8)
    assert str(error.value) == ended
    # Matroska has no per-frame index: the quick check reads and counts the packets.
    path = truncate(write_numbered_video(tmp_path / "cut.mkv", seconds=4, fps=30))
    expected = f"{path}: holds 58 of the 120 frames its header promises (the file is truncated)"
    assert video_problem(path, 8, decode=False) == expected
    assert video_problem(write_numbered_video(tmp_path / "whole.mp4", seconds=4), 8) is None
    assert video_problem(write_numbered_video(tmp_path / "whole.mp4", seconds=4), 8, decode=False) is None


def test_pick_frames_is_the_documented_spread():
    assert pick_frames(10, 4) == [0, 3, 6, 9]
    assert pick_frames(1, 3) == [0, 0, 0]


@pytest.mark.slow
def test_the_real_scale_minute_of_720p_gives_its_frames(tmp_path):
    """The issue's case at full size (writing it takes 10-30 s on 2 cores): benchmarks/video_decode.py measures it."""
    video = decode_video(write_minute_video(tmp_path / "minute.mp4"), 8)
    assert numbers(video) == video.indices == [0, 257, 514, 771, 1028, 1285, 1542, 1799]
    assert video[0].size == (1280, 720)
