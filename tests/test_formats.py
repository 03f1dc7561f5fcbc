"""Every data format becomes the same `Sample`; validate and preview report on it; streaming trains from it."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from tests.conftest import digit_png
from vlmtune.apps.cli import main as cli_main
from vlmtune.data.formats import detect_format, load_samples
from vlmtune.datasets import open_image

QUESTION, ANSWER = "Which digit?", "7"


def llava(image="seven.png"):
    return {
        "image": image,
        "system_prompt": "Be brief.",
        "conversations": [{"from": "human", "value": f"<image>\n{QUESTION}"}, {"from": "gpt", "value": ANSWER}],
    }


def sharegpt(image="seven.png"):
    return {
        "images": [image],
        "conversations": [
            {"from": "system", "value": "Be brief."},
            {"from": "user", "value": f"<image>\n{QUESTION}"},
            {"from": "assistant", "value": ANSWER},
        ],
    }


def openai_parts(url="seven.png"):
    return {
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": QUESTION}],
            },
            {"role": "assistant", "content": [{"type": "text", "text": ANSWER}]},
        ]
    }


def openai_placeholders(image="seven.png"):
    return {
        "images": [image],
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": f"<image>\n{QUESTION}"},
            {"role": "assistant", "content": ANSWER},
        ],
    }


@pytest.fixture
def folder(tmp_path):
    digit_png(tmp_path, "seven.png", 7)
    return tmp_path


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def as_tuple(sample):
    turns = [(t.role, t.text) for t in sample.turns]
    return turns, sample.system_prompt, [open_image(i).tobytes() for i in sample.images]


@pytest.mark.parametrize("make", [llava, sharegpt, openai_parts, openai_placeholders])
def test_every_json_format_reads_into_the_same_sample(folder, make):
    expected = as_tuple(load_samples(write_jsonl(folder / "ref.jsonl", [llava()]))[0])
    sample = load_samples(write_jsonl(folder / "d.jsonl", [make()]))[0]
    assert as_tuple(sample) == expected
    assert sample.images == [str(folder / "seven.png")]


def test_formats_are_detected_per_record_and_can_be_forced(folder):
    assert [detect_format(r) for r in (llava(), sharegpt(), openai_parts())] == ["llava", "sharegpt", "openai"]
    mixed = load_samples(write_jsonl(folder / "d.jsonl", [llava(), openai_parts()]))
    assert len(mixed) == 2
    forced = load_samples(write_jsonl(folder / "f.jsonl", [sharegpt()]), data_format="llava")
    assert forced[0].system_prompt == "Be brief."


def test_base64_and_file_urls_are_read(folder):
    payload = base64.b64encode((folder / "seven.png").read_bytes()).decode()
    records = [openai_parts(f"data:image/png;base64,{payload}"), openai_parts(f"file://{folder / 'seven.png'}")]
    embedded, by_url = load_samples(write_jsonl(folder / "d.jsonl", records))
    assert isinstance(embedded.images[0], bytes)
    assert open_image(embedded.images[0]).tobytes() == open_image(by_url.images[0]).tobytes()


def test_videos_in_openai_parts(folder, video):
    record = {
        "messages": [
            {"role": "user", "content": [{"type": "video", "video": video}, {"type": "text", "text": "What?"}]},
            {"role": "assistant", "content": "grey"},
        ]
    }
    sample = load_samples(write_jsonl(folder / "d.jsonl", [record]))[0]
    assert sample.videos == [video] and sample.turns[0].text == "<video>\nWhat?"


def hf_dataset(folder: Path):
    import datasets

    image = open_image(str(folder / "seven.png"))  # in memory, no file name: stored as PNG bytes
    rows = {
        "messages": [openai_placeholders()["messages"], openai_placeholders()["messages"]],
        "images": [[image], [image]],
    }
    features = datasets.Features(
        {
            "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
            "images": datasets.List(datasets.Image()),
        }
    )
    return datasets.Dataset.from_dict(rows, features=features)


def test_hugging_face_dataset_folder_and_parquet_with_image_bytes(folder):
    dataset = hf_dataset(folder)
    dataset.save_to_disk(str(folder / "saved"))
    dataset.to_parquet(str(folder / "rows.parquet"))
    expected = as_tuple(load_samples(write_jsonl(folder / "ref.jsonl", [llava()]))[0])
    for path in (folder / "saved", folder / "rows.parquet"):
        samples = load_samples(path)
        assert len(samples) == 2 and samples[0].source.endswith("row 0")
        assert isinstance(samples[0].images[0], bytes)  # kept encoded: decoded one sample at a time
        assert as_tuple(samples[0]) == expected


def test_a_hub_id_that_is_not_cached_fails_clearly(folder):
    import subprocess
    import sys

    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "-m", "vlmtune.apps.validate", "--data_path", "nobody-here/no-such-dataset-xyz"]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=folder, timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "cannot load it as a Hugging Face dataset" in result.stderr
    assert "a hub id already in the local cache (vlmtune works offline)" in result.stderr


def test_validate_reports_ok_data_and_path_warnings(folder, capsys):
    os.makedirs(folder / "data")
    outside = digit_png(folder, "outside.png", 1)
    os.symlink(outside, folder / "data" / "link.png")
    records = [llava(), llava("link.png"), llava("../seven.png")]
    data_path = write_jsonl(folder / "data" / "d.jsonl", records)
    status = cli_main(["validate", "--data_path", str(data_path), "--image_folder", str(folder / "data")])
    output = capsys.readouterr().out
    assert status == 1  # seven.png is not inside data/ under its plain name
    assert "d.jsonl line 1: field 'image': file not found" in output
    assert "warning: d.jsonl line 2: image link.png resolves to" in output
    assert "warning: d.jsonl line 3: image ../seven.png resolves to" in output
    assert output.strip().endswith("3 sample(s) checked: 2 ok, 1 with errors, 2 warning(s)")


def test_validate_with_a_model_passes_good_data(folder, capsys):
    data_path = write_jsonl(folder / "d.jsonl", [llava(), openai_parts()])
    status = cli_main(["validate", "--data_path", str(data_path), "--model_id", "tiny-qwen2-vl"])
    assert status == 0
    assert capsys.readouterr().out.strip().endswith("2 sample(s) checked: 2 ok, 0 with errors, 0 warning(s)")


def test_preview_json_shows_exactly_what_is_trained(folder, capsys):
    data_path = write_jsonl(folder / "d.jsonl", [llava(), openai_parts()])
    assert cli_main(["preview", "--model_id", "tiny-qwen2-vl", "--data_path", str(data_path), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 2 and lines[0]["input_ids"] == lines[1]["input_ids"]
    first = lines[0]
    assert first["trained_spans"] == [f"{ANSWER}<|im_end|>"]
    trained = [i for i, label in zip(first["input_ids"], first["labels"], strict=True) if label != -100]
    assert trained == [label for label in first["labels"] if label != -100]
    assert first["counts"]["trained"] == 2 and first["counts"]["media"] == 4


def test_preview_text_marks_trained_spans_and_folds_image_tokens(folder, capsys):
    data_path = write_jsonl(folder / "d.jsonl", [llava()])
    assert cli_main(["preview", "--model_id", "tiny-qwen2-vl", "--data_path", str(data_path)]) == 0
    output = capsys.readouterr().out
    assert "[[7<|im_end|>]]" in output and "<|image_pad|>×4" in output
    assert "d.jsonl line 1: 34 tokens, 30 text, 4 media, 2 trained" in output


def test_streaming_training_reads_lazily_and_skips_bad_samples(folder):
    from vlmtune.arguments import parse_args
    from vlmtune.datasets import StreamingSupervisedDataset
    from vlmtune.train import train

    bad = {
        "image": "gone.png",
        "conversations": [{"from": "human", "value": "<image>"}, {"from": "gpt", "value": "1"}],
    }
    data_path = write_jsonl(folder / "d.jsonl", [llava(), bad, llava(), openai_parts()])
    argv = [
        "--model_id=tiny-qwen2-vl",
        f"--data_path={data_path}",
        f"--output_dir={folder / 'out'}",
        "--streaming=true",
        "--skip_bad_samples=true",
        "--max_steps=2",
        "--per_device_train_batch_size=2",
        "--report_to=none",
    ]
    trainer = train(*parse_args(argv))
    assert isinstance(trainer.train_dataset, StreamingSupervisedDataset)
    assert trainer.state.global_step == 2
    assert list(trainer.train_dataset.skipped) == ["d.jsonl line 2"]
    assert (folder / "out" / "adapter_model.safetensors").is_file()
