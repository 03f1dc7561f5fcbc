"""`vlmtune export --for vllm` and `vlmtune serve`'s command line, without vLLM (tests/test_vllm.py runs it)."""

from __future__ import annotations

import argparse
import json
import logging

import pytest

from tests.conftest import digit_png
from tests.test_released_layout import saved_keys
from tests.test_train import run
from vlmtune.apps.cli import main as cli_main
from vlmtune.errors import ArgumentError
from vlmtune.serving.export import export_for_vllm, vllm_note
from vlmtune.serving.serve import build_parser, server_command


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits")
    turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": "3"}]
    path = folder / "train.json"
    path.write_text(json.dumps([{"image": digit_png(folder, "d3.png", 3), "conversations": turns}] * 2))
    return path


@pytest.fixture(scope="module")
def default_lora(tmp_path_factory, digits):
    """A LoRA run with the defaults: the projector trained fully next to the adapter."""
    folder = tmp_path_factory.mktemp("default_lora")
    return run(folder, digits, "tiny-llava-1.5", max_steps=1, batch_size=2, output_dir=folder)[1]


@pytest.fixture(scope="module")
def lora_only(tmp_path_factory, digits):
    folder = tmp_path_factory.mktemp("lora_only")
    return run(folder, digits, "tiny-llava-1.5", max_steps=1, batch_size=2, output_dir=folder, train_projector=False)[
        1
    ]


def serve_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


def test_training_says_when_the_adapter_alone_is_not_servable_by_vllm(tmp_path, digits, caplog):
    with caplog.at_level(logging.WARNING, logger="vlmtune"):
        output = run(tmp_path, digits, "tiny-llava-1.5", max_steps=1, batch_size=2)[1]
    assert vllm_note(output) in caplog.text
    assert "['model.multi_modal_projector']" in vllm_note(output)
    assert "vlmtune export --for vllm" in vllm_note(output)


def test_export_merges_an_adapter_with_fully_trained_modules(default_lora, tmp_path, capsys):
    assert cli_main(["export", "--for", "vllm", str(default_lora), str(tmp_path / "served")]) == 0
    assert "a merged checkpoint" in capsys.readouterr().out
    assert "vision_tower.vision_model.post_layernorm.weight" in saved_keys(tmp_path / "served")  # released layout
    assert not (tmp_path / "served" / "adapter_config.json").exists()


def test_export_copies_an_adapter_vllm_takes(lora_only, tmp_path):
    assert vllm_note(lora_only) is None
    folder, form = export_for_vllm(lora_only, tmp_path / "served")
    assert form == "adapter"
    assert (folder / "adapter_config.json").read_text() == (lora_only / "adapter_config.json").read_text()
    assert (folder / "vlmtune_args.yaml").exists()


@pytest.mark.parametrize("form", ["merged", "adapter"])
def test_export_refuses_a_folder_that_is_not_empty_in_either_form(form, default_lora, lora_only, tmp_path, capsys):
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "old.txt").write_text("an older export")
    source = default_lora if form == "merged" else lora_only
    assert cli_main(["export", "--for", "vllm", str(source), str(tmp_path / "served")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"vlmtune export: error: {tmp_path / 'served'} exists and is not empty; pass a new folder"
    )
    assert [path.name for path in (tmp_path / "served").iterdir()] == ["old.txt"]


def test_export_refuses_a_full_model(tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "config.json").write_text("{}")
    assert cli_main(["export", "--for", "vllm", str(tmp_path / "full"), str(tmp_path / "x")]) == 2
    assert "servable as it is" in capsys.readouterr().err


def test_serve_command_for_a_merged_output(default_lora, tmp_path):
    merged, _ = export_for_vllm(default_lora, tmp_path / "merged")
    command = server_command(serve_args(str(merged), "--port", "8123"))
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(command)
    assert f"--model {merged} --served-model-name vlmtune" in joined
    assert "--host 127.0.0.1 --port 8123" in joined
    assert "--chat-template" in command and "--enable-lora" not in command


def test_serve_command_for_an_adapter_on_its_base(lora_only):
    command = " ".join(server_command(serve_args(str(lora_only))))
    assert f"--lora-modules vlmtune={lora_only}" in command
    assert "--enable-lora --max-lora-rank 8" in command


def test_serve_refuses_an_adapter_vllm_cannot_take(default_lora):
    with pytest.raises(ArgumentError, match="not servable by vLLM"):
        server_command(serve_args(str(default_lora)))


def test_serve_without_vllm_says_how_to_install_it(lora_only, capsys):
    try:
        import vllm  # noqa: F401
    except ImportError:
        assert cli_main(["serve", str(lora_only)]) == 2
        assert "scripts/setup_vllm_venv.sh" in capsys.readouterr().err
    else:
        pytest.skip("vLLM is installed here")


def test_chat_batch_mode_scores_the_predictions_with_an_eval_metric(digits, tmp_path, capsys):
    out = tmp_path / "predictions.jsonl"
    argv = ["tiny-llava-1.5", "--data_path", str(digits), "--output", str(out), "--max_new_tokens", "2"]
    assert cli_main(["chat", *argv, "--eval_metric", "exact_match"]) == 0
    predictions = [json.loads(line)["prediction"] for line in out.read_text().splitlines()]
    expected = sum(p.strip() == "3" for p in predictions) / len(predictions)
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"exact_match": expected}
    assert cli_main(["chat", *argv, "--eval_metric", "nonsense"]) == 2
    assert "--eval_metric must be exact_match or an import path" in capsys.readouterr().err
