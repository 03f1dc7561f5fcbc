"""Reading LLaVA-style data: formats, paths, up-front checks with precise messages, video frames, bad samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import write_video
from vlmtune.data.formats import load_samples
from vlmtune.data.video import decode_video
from vlmtune.datasets import TO_LOAD_IMAGE, LazySupervisedDataset
from vlmtune.errors import BadSample, DataError
from vlmtune.supported_models import FAMILIES


def record(image=None, turns=("<image>\nWhich digit?", "7"), **extra):
    conversations = [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(turns)]
    return {**({"image": image} if image is not None else {}), "conversations": conversations, **extra}


def write_json(path, records):
    path.write_text(json.dumps(records))
    return path


def test_reads_json_and_jsonl_with_relative_paths(tmp_path, images):
    folder = tmp_path / "imgs"
    folder.mkdir()
    (folder / "a.png").write_bytes(open(images[0], "rb").read())
    records = [
        record("a.png"),
        record(["a.png", "a.png"], turns=("<image><image>", "two")),
        record(turns=("hi", "yo")),
    ]
    as_json = load_samples(write_json(tmp_path / "d.json", records), image_folder=folder)
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in records) + "\n\n")
    as_jsonl = load_samples(tmp_path / "d.jsonl", image_folder=folder)
    assert [s.images for s in as_json] == [s.images for s in as_jsonl]
    assert as_json[0].images == [str(folder / "a.png")]
    assert len(as_json[1].images) == 2 and as_json[2].images == []
    assert as_jsonl[1].source == "d.jsonl line 2"


def test_custom_role_keys_and_system_prompt(tmp_path):
    data = [
        {
            "system_prompt": "Be terse.",
            "conversations": [{"from": "user", "value": "hi"}, {"from": "bot", "value": "yo"}],
        }
    ]
    sample = load_samples(write_json(tmp_path / "d.json", data), user_key="user", assistant_key="bot")[0]
    assert sample.system_prompt == "Be terse." and [t.role for t in sample.turns] == ["user", "assistant"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            record("x.png", turns=("Which digit?", "7")),
            r"d.json sample 0: 0 <image> placeholder\(s\) .* 1 file\(s\) in field 'image'",
        ),
        (record(None), r"sample 0: 1 <image> placeholder\(s\) .* 0 file\(s\)"),
        (record("missing.png"), r"sample 0: field 'image': file not found: .*missing.png"),
        (record(turns=("hi",)), "sample 0: the last turn must be the assistant's"),
        (record(turns=("hi", "yo", "again", "ok", "more")), "the last turn must be the assistant's"),
        (
            {"conversations": [{"from": "gpt", "value": "yo"}, {"from": "human", "value": "hi"}]},
            r"conversations\[0\] must be a user turn",
        ),
        (
            {"conversations": [{"from": "robot", "value": "yo"}]},
            r"conversations\[0\]: 'from' must be 'human' or 'gpt', got 'robot'",
        ),
        (record(turns=("hi", "  ")), r"conversations\[1\]: 'value' must be a non-empty string"),
        ({"conversations": []}, "field 'conversations' must be a non-empty list"),
        (record(turns=("hi", "yo"), system_prompt=3), "field 'system_prompt' must be a non-empty string"),
        (record(5, turns=("hi", "yo")), "field 'image': each image must be a path"),
        ([1, 2], "a sample must be a JSON object"),
    ],
)
def test_bad_samples_are_reported_with_sample_and_field(tmp_path, bad, message):
    with pytest.raises(DataError, match=message):
        load_samples(write_json(tmp_path / "d.json", [bad]))


def test_all_problems_are_reported_together(tmp_path):
    data = [record(turns=("hi", "yo")), record("nope.png"), record(turns=("hi",))]
    with pytest.raises(DataError, match="2 problem") as error:
        load_samples(write_json(tmp_path / "d.json", data))
    assert "sample 1" in str(error.value) and "sample 2" in str(error.value)


def test_bad_jsonl_line_is_named(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps(record(turns=("a", "b"))) + "\n{not json\n")
    with pytest.raises(DataError, match="d.jsonl line 2: not valid JSON"):
        load_samples(path)


def test_json_must_be_a_list(tmp_path):
    with pytest.raises(DataError, match="expected a JSON list"):
        load_samples(write_json(tmp_path / "d.json", {"conversations": []}))


def test_family_capabilities_are_checked(tmp_path, video):
    from vlmtune.datasets import check_sample

    data = [record(turns=("<video>\nwhat?", "ok"), video=video)]
    with pytest.raises(DataError, match="does not take video"):
        load_samples(write_json(tmp_path / "d.json", data), check=lambda s: check_sample(s, video=False))


def test_video_frames_are_sampled_evenly(tmp_path):
    path = write_video(tmp_path / "v.mp4", num_frames=10)
    frames = decode_video(path, num_frames=4)
    levels = [int(np.asarray(frame).mean()) for frame in frames]
    assert len(frames) == 4
    assert levels == sorted(levels) and levels[0] < 15 and levels[-1] > 160  # first and last frames included
    assert len(decode_video(path, num_frames=16)) == 16  # a short video repeats frames: one count per batch


def test_decoded_video_knows_its_frame_rate_and_sampled_frame_numbers(tmp_path):
    frames = decode_video(write_video(tmp_path / "v.mp4", num_frames=10), num_frames=4)  # written at 5 fps
    assert frames.fps == 5.0 and frames.indices == [0, 3, 6, 9]
    assert isinstance(frames, list)  # still a plain list of frames to every processor


def test_to_load_image_table_covers_every_family():
    assert set(TO_LOAD_IMAGE) == set(FAMILIES)
    assert all(isinstance(TO_LOAD_IMAGE[f], bool) for f in FAMILIES)


def test_a_bad_sample_met_during_training_is_skipped_and_counted_never_a_crash(tmp_path):
    samples = load_samples(write_json(tmp_path / "d.json", [record(turns=("a", "b")), record(turns=("c", "d"))]))

    def encode(sample, images, videos):
        if sample.turns[0].text == "a":
            raise BadSample(f"{sample.source}: too long")
        return {"text": sample.turns[0].text}

    dataset = LazySupervisedDataset(samples, encode)
    assert dataset[0] == {"text": "c"} and dataset[1] == {"text": "c"}
    assert dataset.skipped == {0: "d.json sample 0: too long"}
    with pytest.raises(BadSample, match="every sample of the dataset is bad"):
        LazySupervisedDataset(samples[:1], encode)[0]
