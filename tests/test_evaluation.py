"""Evaluation during training: eval loss, generation metrics (built in or by import path), files and logs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import digit_png
from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments
from vlmtune.core.evaluation import exact_match, rank_share, resolve_metric, score
from vlmtune.core.inference import generate_replies
from vlmtune.data.formats import load_samples
from vlmtune.train import train


def first_character_hits(predictions: list[str], references: list[str]) -> float:
    """A user metric for the tests (resolved as tests.test_evaluation:first_character_hits)."""
    return sum(p[:1] == r[:1] for p, r in zip(predictions, references, strict=True)) / len(references)


def test_exact_match_ignores_surrounding_whitespace():
    assert exact_match([" 7", "3", "1 "], ["7", "8", "1"]) == {"exact_match": pytest.approx(2 / 3)}


def test_metric_by_import_path_and_clear_errors():
    assert resolve_metric("exact_match") is exact_match
    metric = resolve_metric("tests.test_evaluation:first_character_hits")
    assert score(metric, ["7a", "x"], ["7", "3"]) == {"first_character_hits": 0.5}
    assert score(exact_match, ["7"], ["7"]) == {"exact_match": 1.0}
    with pytest.raises(ValueError, match="exact_match or an import path module:function"):
        resolve_metric("os.system('true')")
    with pytest.raises(ValueError, match="cannot import module 'no_such_module'"):
        resolve_metric("no_such_module:f")
    with pytest.raises(ValueError, match="has no function 'nope'"):
        resolve_metric("tests.test_evaluation:nope")
    with pytest.raises(ValueError, match="--eval_metric must be"):
        TrainingArguments(output_dir="unused", eval_metric="accuracy")


def test_rank_shares_are_equal_and_cover_every_sample():
    for count, world_size in ((7, 2), (8, 4), (1, 3), (10, 3)):
        shares = [rank_share(count, rank, world_size) for rank in range(world_size)]
        assert len({len(share) for share in shares}) == 1  # same number of generate calls on every rank
        assert sorted(set(i for share in shares for i in share)) == list(range(count))


@pytest.fixture
def digit_files(tmp_path):
    def write(name: str, digits: list[int]) -> str:
        records = []
        for i, digit in enumerate(digits):
            image = digit_png(tmp_path, f"{name}{i}.png", digit)
            turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": str(digit)}]
            records.append({"image": image, "conversations": turns})
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(records))
        return str(path)

    return write("train", [0, 1, 2, 3, 4, 5]), write("eval", [6, 7, 8])


def test_training_evaluates_loss_and_metrics_into_logs_and_output_dir(tmp_path, digit_files):
    train_path, eval_path = digit_files
    training_args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        max_steps=4,
        per_device_train_batch_size=3,
        per_device_eval_batch_size=2,
        learning_rate=1e-2,
        logging_steps=1,
        eval_strategy="steps",
        eval_steps=2,
        eval_metric="tests.test_evaluation:first_character_hits",
        eval_max_new_tokens=3,
        use_cpu=True,
        disable_tqdm=True,
        seed=0,
    )
    model_args = ModelArguments(model_id="tiny-qwen2-vl")
    data_args = DataArguments(data_path=train_path, eval_data_path=eval_path, model_max_length=256)
    trainer = train(model_args, data_args, training_args)

    evals = [entry for entry in trainer.state.log_history if "eval_loss" in entry]
    scores = [entry for entry in trainer.state.log_history if "eval_first_character_hits" in entry]
    assert [entry["step"] for entry in evals] == [2, 4, 4]  # steps 2 and 4, then the final evaluation
    assert len(scores) == 3
    results = json.loads((tmp_path / "out" / "eval_results.json").read_text())
    assert results["eval_loss"] == evals[-1]["eval_loss"]

    samples = load_samples(eval_path)
    replies = generate_replies(trainer.model, trainer.data_collator, samples, max_new_tokens=3)
    expected = first_character_hits(replies, [sample.turns[-1].text for sample in samples])
    assert results["eval_first_character_hits"] == pytest.approx(expected)
    assert (tmp_path / "out" / "loss_curve.png").stat().st_size > 0


def test_report_to_defaults_to_none_and_importing_sets_nothing():
    assert TrainingArguments(output_dir="unused").report_to in ([], ["none"], "none")
    code = (
        "import os, json; before = dict(os.environ)\n"
        "import vlmtune.train, vlmtune.core.trainer, vlmtune.serving.chat, vlmtune.serving.merge\n"
        "import vlmtune.core.evaluation, vlmtune.core.distributed\n"
        "print(json.dumps(sorted(set(os.environ.items()) ^ set(before.items()))))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB", "TENSORBOARD"))}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert json.loads(output.stdout) == []


def test_loss_curve_for_every_run_with_a_loss(tmp_path):
    from vlmtune.core.trainer import save_loss_curve

    short_run = [{"eval_loss": 2.0, "step": 3}, {"train_loss": 2.5, "step": 3}]  # fewer steps than logging_steps
    assert save_loss_curve(short_run, tmp_path / "short.png").stat().st_size > 0
    logged = [{"loss": 3.0, "step": 1}, {"loss": 2.0, "step": 2}, {"eval_loss": 2.2, "step": 2}]
    assert save_loss_curve(logged, tmp_path / "logged.png").stat().st_size > 0
    assert save_loss_curve([{"train_runtime": 1.0, "step": 0}], tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


@pytest.mark.parametrize(
    ("logger", "written"),
    [("tensorboard", "out/runs/*/events.out.tfevents.*"), ("wandb", "wandb/offline-run-*/run-*.wandb")],
)
def test_report_to_a_logger_writes_its_files(logger, written, tmp_path, digit_files, monkeypatch):
    pytest.importorskip(logger)  # optional loggers, not vlmtune dependencies
    monkeypatch.setenv("WANDB_MODE", "offline")  # no network; read by wandb only when the run starts
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    train_path, _ = digit_files
    args = TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=1, use_cpu=True, report_to=logger)
    train(ModelArguments(model_id="tiny-qwen2-vl"), DataArguments(data_path=train_path), args)
    assert list(tmp_path.glob(written))
