"""Bad media never crash a run: a truncated mp4 and a corrupt image are refused up front (or skipped with
`--skip_bad_samples`), and media that turn bad after the checks are skipped and counted during training.

Runs the real command line in-process (`vlmtune.apps.cli.main`), as tests/test_bad_inputs.py does.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

from transformers import TrainerCallback

from tests.conftest import digit_png
from tests.media_fixtures import truncate, write_corrupt_image, write_numbered_video
from tests.test_video_decode import CUT_SHORT
from vlmtune.apps.cli import main as cli_main


def record(media: str, key: str = "image") -> dict:
    placeholder = "<image>" if key == "image" else "<video>"
    turns = [{"from": "human", "value": f"{placeholder}\nWhat is shown?"}, {"from": "gpt", "value": "a digit"}]
    return {key: media, "conversations": turns}


def bad_media_data(folder: Path) -> Path:
    """Four samples: a good image, a truncated mp4 (60 frames promised), a good video, a corrupt image."""
    digit_png(folder, "seven.png", 7)
    truncate(write_numbered_video(folder / "cut.mp4", seconds=2))
    write_numbered_video(folder / "good.mp4", seconds=2)
    write_corrupt_image(folder / "corrupt.png")
    records = [record("seven.png"), record("cut.mp4", "video"), record("good.mp4", "video"), record("corrupt.png")]
    path = folder / "data.json"
    path.write_text(json.dumps(records))
    return path


def train_argv(data_path: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--model_id=tiny-qwen2-vl",
        f"--data_path={data_path}",
        f"--output_dir={output_dir}",
        "--num_frames=4",
        "--max_steps=2",
        "--per_device_train_batch_size=2",
        "--report_to=none",
        *extra,
    ]


def cut_problem(folder: Path) -> str:
    truncated = "holds 32 of the 60 frames its header promises (the file is truncated)"
    return f"data.json sample 1: video 0: {folder}/cut.mp4: {truncated}"


def corrupt_problem(folder: Path) -> str:
    reason = f"UnidentifiedImageError: cannot identify image file '{folder}/corrupt.png'"
    return f"data.json sample 3: image 0: {folder}/corrupt.png: not a readable image ({reason})"


def test_validate_reports_a_truncated_video_in_one_line_naming_it(tmp_path, capsys):
    data_path = bad_media_data(tmp_path)
    assert cli_main(["validate", "--data_path", str(data_path), "--num_frames", "4"]) == 1
    lines = capsys.readouterr().out.splitlines()
    cut_short = CUT_SHORT.format(path=re.escape(f"{tmp_path}/cut.mp4"), total=60)
    assert re.fullmatch(f"error: data.json sample 1: video 0: {cut_short}", lines[0])
    assert lines[1] == f"error: {corrupt_problem(tmp_path)}"
    assert lines[-1] == f"{data_path}: 4 sample(s) checked: 2 ok, 2 with errors, 0 warning(s)"
    assert len(lines) == 3


def test_train_refuses_a_truncated_video_and_a_corrupt_image_up_front_naming_both(tmp_path, capsys):
    data_path = bad_media_data(tmp_path)
    assert cli_main(["train", *train_argv(data_path, tmp_path / "out")]) == 1
    output = capsys.readouterr()
    assert "Traceback" not in output.out + output.err
    assert output.err.splitlines() == [
        f"vlmtune train: error: 2 problem(s) in {data_path}:",
        f"  {cut_problem(tmp_path)}",
        f"  {corrupt_problem(tmp_path)}",
        "fix them (vlmtune validate --data_path ... lists every problem), or pass --skip_bad_samples to train on the "
        "good samples only",
    ]
    assert not (tmp_path / "out").exists()


def test_train_with_skip_bad_samples_finishes_and_names_both(tmp_path, capsys, caplog):
    caplog.set_level(logging.WARNING)
    data_path = bad_media_data(tmp_path)
    assert cli_main(["train", *train_argv(data_path, tmp_path / "out", "--skip_bad_samples=true")]) == 0
    assert "Traceback" not in capsys.readouterr().err
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    skipped = [w for w in warnings if w.startswith("skipping bad samples (4 checked)")]
    assert skipped == [
        f"skipping bad samples (4 checked): 2 problem(s) in {data_path}:\n  {cut_problem(tmp_path)}\n"
        f"  {corrupt_problem(tmp_path)}"
    ]
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


class BreakMediaAtStart(TrainerCallback):
    """Replaces a video that passed the checks with half of itself, as a copy still being written would be."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):
        truncate(self.path)


def test_media_that_fail_only_during_training_are_skipped_counted_and_summarised(tmp_path, caplog):
    from vlmtune.arguments import parse_args
    from vlmtune.train import train

    caplog.set_level(logging.WARNING)
    digit_png(tmp_path, "seven.png", 7)
    whole = Path(digit_png(tmp_path, "whole.png", 3, size=64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])  # its header reads: it passes the quick check
    write_numbered_video(tmp_path / "later.mp4", seconds=4)
    records = [record("seven.png"), record("cut.png"), record("later.mp4", "video"), record("seven.png")]
    data_path = tmp_path / "data.json"
    data_path.write_text(json.dumps(records))
    argv = train_argv(data_path, tmp_path / "out", "--num_train_epochs=2", "--max_steps=-1")
    trainer = train(*parse_args(argv), callbacks=[BreakMediaAtStart(tmp_path / "later.mp4")])
    assert trainer.state.global_step == 4  # 2 epochs of 2 batches: the bad samples' places filled by good ones
    skipped = trainer.train_dataset.skipped
    assert sorted(skipped) == [1, 2]
    assert skipped[1].startswith(f"data.json sample 1: image 0: {tmp_path}/cut.png: not a readable image (OSError:")
    cut_short = CUT_SHORT.format(path=re.escape(f"{tmp_path}/later.mp4"), total=120)
    assert re.fullmatch(f"data.json sample 2: video 0: {cut_short}", skipped[2])
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum(w.startswith("skipping bad sample (") for w in warnings) == 2  # bad in both epochs, reported once
    assert f"skipped 2 bad sample(s) during training:\n  {skipped[1]}\n  {skipped[2]}" in warnings


def test_preview_names_bad_media_and_shows_the_good_samples(tmp_path, capsys):
    data_path = bad_media_data(tmp_path)
    argv = ["preview", "--model_id", "tiny-qwen2-vl", "--data_path", str(data_path), "--num_samples", "4"]
    assert cli_main([*argv, "--num_frames", "4"]) == 1
    output = capsys.readouterr().out
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    cut_short = CUT_SHORT.format(path=re.escape(f"{tmp_path}/cut.mp4"), total=60)
    assert re.fullmatch(f"error: data.json sample 1: video 0: {cut_short}", errors[0])
    assert errors[1] == f"error: {corrupt_problem(tmp_path)}"
    assert [line.split(":")[0] for line in output.splitlines() if line.startswith("---")] == [
        "--- data.json sample 0",
        "--- data.json sample 2",
    ]


def test_chat_batch_mode_answers_the_good_samples_and_names_the_bad(tmp_path, capsys):
    data_path = bad_media_data(tmp_path)
    out = tmp_path / "predictions.jsonl"
    argv = ["chat", "tiny-qwen2-vl", "--data_path", str(data_path), "--output", str(out), "--max_new_tokens", "2"]
    assert cli_main([*argv, "--num_frames", "4", "--batch_size", "4"]) == 0
    assert capsys.readouterr().out == f"2 predictions written to {out} (2 bad sample(s) skipped)\n"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [isinstance(row["prediction"], str) for row in rows] == [True, False, True, False]
    cut_short = CUT_SHORT.format(path=re.escape(f"{tmp_path}/cut.mp4"), total=60)
    assert re.fullmatch(f"data.json sample 1: video 0: {cut_short}", rows[1]["error"])
    assert rows[3]["error"] == corrupt_problem(tmp_path)
    assert "error" not in rows[0] and "error" not in rows[2]


def test_chat_on_one_truncated_video_ends_in_one_line(tmp_path, capsys):
    cut = truncate(write_numbered_video(tmp_path / "cut.mp4", seconds=2))
    assert cli_main(["chat", "tiny-qwen2-vl", "--video", cut, "--prompt", "What happens?", "--num_frames", "4"]) == 1
    lines = capsys.readouterr().err.splitlines()
    cut_short = CUT_SHORT.format(path=re.escape(cut), total=60)
    assert len(lines) == 1 and re.fullmatch(f"vlmtune chat: error: --prompt: video 0: {cut_short}", lines[0]), lines


def test_evaluation_scores_the_good_samples_only(tmp_path, load_tiny):
    from vlmtune.core.evaluation import exact_match, generation_metrics
    from vlmtune.datasets import Sample, Turn

    model, processor = load_tiny("tiny-qwen2-vl")
    from vlmtune.supported_models import get_model

    family = get_model("tiny-qwen2-vl").family
    collator = family.collator(processor, family.reply_end)
    image = digit_png(tmp_path, "seven.png", 7)
    cut = truncate(write_numbered_video(tmp_path / "cut.mp4", seconds=2))
    good = Sample([Turn("user", "<image>\nWhich digit?"), Turn("assistant", "7")], images=[image], source="s 0")
    bad = Sample([Turn("user", "<video>\nWhat?"), Turn("assistant", "x")], videos=[cut], source="s 1")
    replies_alone = generation_metrics(model, collator, [good], exact_match, 2, 2, 4)
    assert generation_metrics(model, collator, [good, bad], exact_match, 2, 2, 4) == replies_alone
    assert generation_metrics(model, collator, [bad], exact_match, 2, 2, 4) == {}


def test_media_the_processor_refuses_are_skipped_as_bad_samples(tmp_path, load_tiny):
    from PIL import Image

    from vlmtune.datasets import LazySupervisedDataset, Sample, Turn
    from vlmtune.supported_models import get_model

    _, processor = load_tiny("tiny-qwen2-vl")
    family = get_model("tiny-qwen2-vl").family
    collator = family.collator(processor, family.reply_end)
    Image.new("RGB", (2000, 1)).save(tmp_path / "line.png")  # Qwen2-VL's processor refuses such aspect ratios
    turns = [Turn("user", "<image>\nWhich digit?"), Turn("assistant", "7")]
    line = Sample(turns, images=[str(tmp_path / "line.png")], source="s 0")
    good = Sample(turns, images=[digit_png(tmp_path, "seven.png", 7)], source="s 1")
    dataset = LazySupervisedDataset([line, good], collator.encode)
    assert dataset[0]["input_ids"].tolist() == dataset[1]["input_ids"].tolist()  # its place taken by the next
    assert dataset.skipped == {0: "s 0: ValueError: absolute aspect ratio must be smaller than 200, got 2000.0"}


def test_a_bad_sample_met_in_dataloader_workers_is_recorded_once_and_summarised(tmp_path, caplog):
    from vlmtune.arguments import parse_args
    from vlmtune.train import train

    caplog.set_level(logging.WARNING)
    digit_png(tmp_path, "seven.png", 7)
    whole = Path(digit_png(tmp_path, "whole.png", 3, size=64)).read_bytes()
    (tmp_path / "cut.png").write_bytes(whole[: len(whole) // 2])  # passes the quick check, fails when decoded
    records = [record("seven.png"), record("cut.png"), record("seven.png"), record("seven.png")]
    data_path = tmp_path / "data.json"
    data_path.write_text(json.dumps(records))
    argv = train_argv(data_path, tmp_path / "out", "--num_train_epochs=2", "--max_steps=-1")
    trainer = train(*parse_args([*argv, "--dataloader_num_workers=2"]))
    assert trainer.state.global_step == 4
    why = f"data.json sample 1: image 0: {tmp_path}/cut.png: not a readable image (OSError: image file is truncated)"
    assert trainer.train_dataset.skipped == {1: why}  # met in a worker process, known to the training process
    record_lines = Path(trainer.train_dataset.skip_record.path).read_text().splitlines()
    assert len(record_lines) == 1  # two epochs, new workers each time: recorded (and logged) once
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert f"skipped 1 bad sample(s) during training:\n  {why}" in warnings


def test_generation_skips_only_the_sample_the_processor_refuses_in_a_batch(tmp_path, load_tiny):
    from PIL import Image

    from vlmtune.core.inference import generate_replies
    from vlmtune.datasets import Sample, Turn
    from vlmtune.errors import BadSample
    from vlmtune.supported_models import get_model

    model, processor = load_tiny("tiny-qwen2-vl")
    family = get_model("tiny-qwen2-vl").family
    collator = family.collator(processor, family.reply_end)
    Image.new("RGB", (2000, 1)).save(tmp_path / "line.png")
    turns = [Turn("user", "<image>\nWhich digit?"), Turn("assistant", "")]
    line = Sample(turns, images=[str(tmp_path / "line.png")], source="s 0")
    good = Sample(turns, images=[digit_png(tmp_path, "seven.png", 7)], source="s 1")
    refused, answered = generate_replies(model, collator, [line, good], max_new_tokens=2)
    assert isinstance(refused, BadSample)
    assert str(refused) == "s 0: ValueError: absolute aspect ratio must be smaller than 200, got 2000.0"
    assert answered == generate_replies(model, collator, [good], max_new_tokens=2)[0]
