"""The bad-input suite: every way data and arguments commonly go wrong, each ending in one precise message.

Each case runs the real command line (`vlmtune train` or `vlmtune validate`) in-process and asserts the exit
status, the message, that no traceback is printed, and that `train` leaves no output folder behind.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import digit_png, write_video
from vlmtune.apps.cli import main as cli_main


def conversation(*texts: str) -> list[dict[str, str]]:
    return [{"from": "human" if i % 2 == 0 else "gpt", "value": t} for i, t in enumerate(texts)]


GOOD = {"image": "seven.png", "conversations": conversation("<image>\nWhich digit?", "7")}


def write_records(folder: Path, records, name: str = "data.json") -> Path:
    path = folder / name
    if name.endswith(".jsonl"):
        path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    else:
        path.write_text(json.dumps(records))
    return path


def with_record(record):
    return lambda folder: write_records(folder, [GOOD, record])


def with_text(text: str | bytes, name: str = "data.json"):
    def write(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
        return path

    return write


def with_file(file_name: str, content: bytes, record):
    def write(folder: Path) -> Path:
        (folder / file_name).write_bytes(content)
        return write_records(folder, [record])

    return write


def truncated_png(folder: Path) -> Path:
    whole = Path(digit_png(folder, "whole.png", 3, size=64)).read_bytes()
    (folder / "cut.png").write_bytes(whole[: len(whole) // 2])
    return write_records(folder, [{"image": "cut.png", "conversations": conversation("<image>", "3")}])


def broken_video(folder: Path) -> Path:
    (folder / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    return write_records(folder, [{"video": "clip.mp4", "conversations": conversation("<video>\nWhat?", "x")}])


def video_for_image_only_family(folder: Path) -> Path:
    write_video(folder / "clip.mp4")
    return write_records(folder, [{"video": "clip.mp4", "conversations": conversation("<video>\nWhat?", "x")}])


def openai(*messages, **extra):
    return {"messages": list(messages), **extra}


USER_IMAGE_URL = {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.org/a.png"}}]}
USER_BAD_BASE64 = {"role": "user", "content": [{"type": "image", "image": "data:image/png;base64,@@@"}]}
REPLY = {"role": "assistant", "content": "7"}

# (id, data writer, extra arguments, command, expected exit status, expected message regex)
DATA_CASES = [
    ("missing-file", lambda f: f / "nope.json", [], "train", 1, r"nope.json: data file not found"),
    ("empty-file", with_text(""), [], "train", 1, r"data.json: the data file is empty"),
    ("invalid-json", with_text("[{"), [], "train", 1, r"data.json: not valid JSON"),
    ("not-a-list", with_text('{"conversations": []}'), [], "train", 1, r"expected a JSON list of samples"),
    ("bad-jsonl-line", with_text('{"a": 1}\n{oops\n', "data.jsonl"), [], "train", 1, r"data.jsonl line 2: not valid"),
    ("not-utf8", with_text(b'[{"conversations": "\xff\xfe"}]'), [], "train", 1, r"data.json: not UTF-8 text"),
    ("empty-list", with_text("[]"), [], "train", 1, r"data.json: no samples"),
    ("record-not-object", with_record([1, 2]), [], "train", 1, r"sample 1: a sample must be a JSON object"),
    ("no-conversations", with_record({"image": "seven.png"}), [], "train", 1, r"field 'conversations' must be a"),
    (
        "empty-conversations",
        with_record({"conversations": []}),
        [],
        "train",
        1,
        r"'conversations' must be a non-empty",
    ),
    (
        "unknown-role",
        with_record({"conversations": [{"from": "robot", "value": "hi"}]}),
        [],
        "train",
        1,
        r"sample 1: conversations\[0\]: 'from' must be 'human' or 'gpt', got 'robot'",
    ),
    ("empty-turn", with_record({"conversations": conversation("hi", " ")}), [], "train", 1, r"\[1\]: 'value' must be"),
    (
        "non-string-turn",
        with_record({"conversations": [{"from": "human", "value": 3}, {"from": "gpt", "value": "x"}]}),
        [],
        "train",
        1,
        r"conversations\[0\]: 'value' must be a non-empty string \(got int\)",
    ),
    (
        "assistant-first",
        with_record({"conversations": conversation("x", "y")[::-1]}),
        [],
        "train",
        1,
        r"conversations\[0\] must be a user turn",
    ),
    (
        "odd-number-of-turns",
        with_record({"conversations": conversation("a", "b", "c")}),
        [],
        "train",
        1,
        r"sample 1: the last turn must be the assistant's",
    ),
    (
        "more-placeholders-than-files",
        with_record({"image": "seven.png", "conversations": conversation("<image><image>", "7")}),
        [],
        "train",
        1,
        r"2 <image> placeholder\(s\) in the conversation but 1 file\(s\) in field 'image'",
    ),
    (
        "more-files-than-placeholders",
        with_record({"image": ["seven.png", "seven.png"], "conversations": conversation("<image>", "7")}),
        [],
        "train",
        1,
        r"1 <image> placeholder\(s\) in the conversation but 2 file\(s\)",
    ),
    (
        "image-in-assistant-turn",
        with_record({"image": "seven.png", "conversations": conversation("hi", "<image>")}),
        [],
        "train",
        1,
        r"assistant turns cannot hold <image>/<video>",
    ),
    (
        "missing-image",
        with_record({"image": "gone.png", "conversations": conversation("<image>", "7")}),
        [],
        "train",
        1,
        r"field 'image': file not found: .*gone.png",
    ),
    (
        "zero-size-image",
        with_file("zero.png", b"", {"image": "zero.png", "conversations": conversation("<image>", "7")}),
        [],
        "train",
        1,
        r"image 0: .*zero.png: empty file \(0 bytes\)",
    ),
    (
        "corrupt-image",
        with_file("junk.png", b"hello", {"image": "junk.png", "conversations": conversation("<image>", "7")}),
        [],
        "train",
        1,
        r"image 0: .*junk.png: not a readable image",
    ),
    ("truncated-image", truncated_png, [], "validate", 1, r"cut.png: not a readable image"),
    ("undecodable-video", broken_video, [], "validate", 1, r"video 0: .*clip.mp4: not a decodable video"),
    (
        "video-for-image-only-family",
        video_for_image_only_family,
        ["--model_id", "tiny-llava-1.5"],
        "train",
        1,
        r"has a video, but this model family does not take video input",
    ),
    (
        "typo-in-field-name",
        with_record({"imgae": "seven.png", "conversations": conversation("hi", "7")}),
        [],
        "train",
        1,
        r"sample 1: unknown field 'imgae'; did you mean 'image'\?",
    ),
    (
        "image-given-twice",
        with_record({"image": "seven.png", "images": ["seven.png"], "conversations": conversation("<image>", "7")}),
        [],
        "train",
        1,
        r"both 'image' and 'images' are given",
    ),
    ("image-url", with_record(openai(USER_IMAGE_URL, REPLY)), [], "train", 1, r"is a URL; vlmtune reads local files"),
    ("bad-base64", with_record(openai(USER_BAD_BASE64, REPLY)), [], "train", 1, r"data URL is not valid base64"),
    (
        "unknown-part-type",
        with_record(openai({"role": "user", "content": [{"type": "audio", "audio": "a.wav"}]}, REPLY)),
        [],
        "train",
        1,
        r"messages\[0\].content\[0\]: unknown content part type 'audio'",
    ),
    (
        "openai-unknown-role",
        with_record(openai({"role": "tool", "content": "x"}, REPLY)),
        [],
        "train",
        1,
        r"messages\[0\]: 'role' must be 'user' or 'assistant' \(or 'system' first\), got 'tool'",
    ),
    (
        "messages-read-as-llava",
        with_record(openai({"role": "user", "content": "hi"}, REPLY)),
        ["--data_format", "llava"],
        "train",
        1,
        r"has 'messages', not 'conversations': read it with --data_format openai",
    ),
    (
        "too-long-for-model-max-length",
        with_record({"image": "seven.png", "conversations": conversation("<image>\n" + "word " * 40, "7")}),
        ["--model_id", "tiny-qwen2-vl", "--model_max_length", "16"],
        "validate",
        1,
        r"sample 1: .* tokens after image/video expansion; model_max_length=16 would cut its image/video tokens",
    ),
    (
        "nothing-left-to-train",
        with_record({"conversations": conversation("word " * 60, "7")}),
        ["--model_id", "tiny-qwen2-vl", "--model_max_length", "32"],
        "validate",
        1,
        r"sample 1: no assistant token is left to train on within model_max_length=32",
    ),
]

ARGUMENT_CASES = [
    ("unknown-model", ["--model_id", "tiny-qwen2-vll"], 2, r"unknown model id 'tiny-qwen2-vll'; did you mean"),
    ("lora-rank-zero", ["--lora_r", "0"], 2, r"--lora_r and --lora_alpha must be positive"),
    ("lora-dropout-one", ["--lora_dropout", "1"], 2, r"--lora_dropout must be in \[0, 1\)"),
    ("num-frames-zero", ["--num_frames", "0"], 2, r"--num_frames must be at least 1"),
    ("max-length-tiny", ["--model_max_length", "4"], 2, r"--model_max_length must be at least 16"),
    ("bad-data-format", ["--data_format", "csv"], 2, r"--data_format must be one of auto, llava, sharegpt, openai"),
    ("qlora-full", ["--use_qlora", "true", "--llm_mode", "full"], 2, r"--use_qlora needs --llm_mode lora"),
    ("negative-projector-lr", ["--projector_lr", "-1"], 2, r"--projector_lr must be positive"),
    ("streaming-without-max-steps", ["--streaming", "true"], 2, r"--streaming needs --max_steps"),
    ("missing-config", ["--config", "nope.yaml"], 2, r"--config nope.yaml: file not found"),
    (
        "packing-unverified-family",
        ["--model_id", "tiny-gemma3", "--packing", "true"],
        2,
        r"--packing is not supported for the gemma3 family",
    ),
    (
        "max-pixels-fixed-size-family",
        ["--model_id", "tiny-llava-1.5", "--max_pixels", "50000"],
        2,
        r"--max_pixels applies to the Qwen-VL families",
    ),
]


@pytest.fixture
def folder(tmp_path):
    digit_png(tmp_path, "seven.png", 7)
    return tmp_path


def run_cli(command: str, argv: list[str], capsys) -> tuple[int, str]:
    status = cli_main([command, *argv])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def train_argv(data_path: Path, output_dir: Path, extra: list[str]) -> list[str]:
    model = [] if "--model_id" in extra else ["--model_id", "tiny-qwen2-vl"]
    return [*model, "--data_path", str(data_path), "--output_dir", str(output_dir), *extra]


@pytest.mark.parametrize(
    ("writer", "extra", "command", "status", "message"),
    [case[1:] for case in DATA_CASES],
    ids=[case[0] for case in DATA_CASES],
)
def test_bad_data_fails_with_a_precise_message(folder, capsys, writer, extra, command, status, message):
    data_path = writer(folder)
    output_dir = folder / "out"
    if command == "train":
        argv = train_argv(data_path, output_dir, extra)
    else:
        argv = ["--data_path", str(data_path), *extra]
    code, output = run_cli(command, argv, capsys)
    assert code == status, output
    assert "Traceback" not in output
    assert re.search(message, output), output
    assert not output_dir.exists()


@pytest.mark.parametrize(
    ("extra", "status", "message"), [case[1:] for case in ARGUMENT_CASES], ids=[case[0] for case in ARGUMENT_CASES]
)
def test_bad_arguments_fail_before_anything_is_read(folder, capsys, monkeypatch, extra, status, message):
    monkeypatch.chdir(folder)
    data_path = write_records(folder, [GOOD])
    output_dir = folder / "out"
    code, output = run_cli("train", train_argv(data_path, output_dir, extra), capsys)
    assert code == status, output
    assert "Traceback" not in output
    assert re.search(message, output), output
    assert not output_dir.exists()


def test_the_suite_covers_at_least_thirty_distinct_bad_inputs():
    ids = [case[0] for case in DATA_CASES + ARGUMENT_CASES]
    assert len(set(ids)) == len(ids) >= 30
