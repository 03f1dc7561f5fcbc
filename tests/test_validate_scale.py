"""`vlmtune validate` at real scale: a generated 10,000-sample dataset, progress on stderr, media decoded once.

The time per 10,000 samples is measured by benchmarks/validate_scale.py (docs/benchmarks.md), not here.
"""

from __future__ import annotations

import io
import json
import re
from itertools import count

import pytest

from tests.conftest import digit_png
from tests.scale_data import write_llava_dataset
from vlmtune.apps.cli import main as cli_main
from vlmtune.data import checks
from vlmtune.data.checks import count_records
from vlmtune.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_prints_a_line_every_so_often_without_a_terminal():
    stream, ticks = io.StringIO(), count(step=1.0)  # each look at the clock: 1 s later
    items = list(
        progress(range(10), total=10, desc="checking d.jsonl", every=3, stream=stream, clock=lambda: next(ticks))
    )
    assert items == list(range(10))
    assert stream.getvalue().splitlines() == [
        "checking d.jsonl: 3/10 samples (30%), 1 samples/s, about 7 s left",
        "checking d.jsonl: 6/10 samples (60%), 1 samples/s, about 4 s left",
        "checking d.jsonl: 9/10 samples (90%), 1 samples/s, about 1 s left",
    ]


def test_progress_line_without_a_total_and_in_minutes():
    stream, ticks = io.StringIO(), count(step=100.0)
    list(progress(range(2), total=None, desc="x", unit="row", every=1, stream=stream, clock=lambda: next(ticks)))
    assert stream.getvalue().splitlines() == ["x: 1 rows, 0 rows/s", "x: 2 rows, 0 rows/s"]
    stream, ticks = io.StringIO(), count()
    list(progress(range(4000), total=100_000, desc="x", every=1.0, stream=stream, clock=lambda: next(ticks) / 1000))
    assert stream.getvalue().splitlines()[0] == "x: 1,000/100,000 samples (1%), 1,000 samples/s, about 1 min 39 s left"


def test_progress_is_a_bar_with_rate_and_estimate_on_a_terminal():
    stream = Terminal()
    assert list(progress(range(5), total=5, desc="checking d.jsonl", delay=0, stream=stream)) == list(range(5))
    last = stream.getvalue().replace("\r", "\n").strip().splitlines()[-1]
    assert re.match(r"checking d\.jsonl: 100%\|[#█]+\| 5/5 \[00:00<00:00, .* sample/s\]", last), last


def test_count_records(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"a": 1}\n\n{"a": 2}\n')
    (tmp_path / "b.json").write_text("[{}, {}, {}]")
    (tmp_path / "c.json").write_text("[{},")
    assert [count_records(tmp_path / name) for name in ("a.jsonl", "b.json", "c.json", "none.json")] == [
        2,
        3,
        None,
        None,
    ]


def test_validate_ten_thousand_samples_names_each_bad_one(tmp_path, capsys):
    data = write_llava_dataset(tmp_path, count=10_000, num_images=200)
    (tmp_path / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # a shared, corrupt image
    bad = [
        {
            "image": "images/broken.png",
            "conversations": [{"from": "human", "value": "<image>?"}, {"from": "gpt", "value": "7"}],
        },
        {
            "image": "images/missing.png",
            "conversations": [{"from": "human", "value": "<image>?"}, {"from": "gpt", "value": "7"}],
        },
        {
            "image": "images/broken.png",
            "conversations": [{"from": "human", "value": "<image>?"}, {"from": "gpt", "value": "8"}],
        },
    ]
    with data.open("a") as file:
        file.writelines(json.dumps(record) + "\n" for record in bad)
    assert cli_main(["validate", "--data_path", str(data)]) == 1
    lines = capsys.readouterr().out.splitlines()
    broken = f"{tmp_path}/images/broken.png: not a readable image"
    assert [line.split(" (")[0] for line in lines[:-1]] == [
        f"error: data.jsonl line 10001: image 0: {broken}",
        f"error: data.jsonl line 10002: field 'image': file not found: {tmp_path}/images/missing.png",
        f"error: data.jsonl line 10003: image 0: {broken}",
    ]
    assert lines[-1] == f"{data}: 10003 sample(s) checked: 10000 ok, 3 with errors, 0 warning(s)"


@pytest.fixture
def digits_with_a_truncated_image(tmp_path):
    seven = digit_png(tmp_path, "seven.png", 7)
    whole = open(seven, "rb").read()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])
    record = {
        "image": "seven.png",
        "conversations": [{"from": "human", "value": "<image>Which?"}, {"from": "gpt", "value": "7"}],
    }
    records = [record] * 3 + [{**record, "image": "cut.png"}]
    (tmp_path / "data.json").write_text(json.dumps(records))
    return tmp_path / "data.json"


def test_validate_with_a_model_decodes_each_image_once_and_still_names_a_bad_one(
    digits_with_a_truncated_image, capsys, monkeypatch
):
    checked = []
    monkeypatch.setattr(checks, "image_problem", lambda image, decode: checked.append(image) or None)
    argv = ["validate", "--data_path", str(digits_with_a_truncated_image), "--model_id", "tiny-qwen2-vl"]
    assert cli_main(argv) == 1
    output = capsys.readouterr().out.splitlines()
    # every image is decoded once, by the processor pass (no separate check first), and the truncated one is
    # still named with the reason by the loading itself
    assert checked == []
    cut = digits_with_a_truncated_image.parent / "cut.png"
    assert output[0].startswith(f"error: data.json sample 3: image 0: {cut}: not a readable image (OSError:")
    assert output[-1].endswith("4 sample(s) checked: 3 ok, 1 with errors, 0 warning(s)")


def test_validate_without_a_model_checks_a_shared_image_once(digits_with_a_truncated_image, capsys, monkeypatch):
    checked = []
    original = checks.image_problem
    monkeypatch.setattr(
        checks, "image_problem", lambda image, decode: checked.append(image) or original(image, decode=decode)
    )
    assert cli_main(["validate", "--data_path", str(digits_with_a_truncated_image)]) == 1
    output = capsys.readouterr().out.splitlines()
    assert sorted(checked) == sorted(
        str(digits_with_a_truncated_image.parent / name) for name in ("seven.png", "cut.png")
    )
    cut = digits_with_a_truncated_image.parent / "cut.png"
    assert output[0].startswith(f"error: data.json sample 3: image 0: {cut}: not a readable image (OSError")
