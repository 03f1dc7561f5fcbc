"""The web UI's logic without a browser: the generated form, its YAML round trip, checks before launch, runs
(lock, detached process, status from the files, crash line, stop), the log parsing and the chat sample."""

from __future__ import annotations

import dataclasses
import html
import json
import os
import sys
import time

import pytest

from tests.test_export_serve import default_lora, digits  # noqa: F401  (fixtures, for `lora_output`)
from vlmtune.apps.webui import forms, runs
from vlmtune.arguments import DataArguments, ModelArguments, parse_args, yaml_to_argv


@pytest.fixture(autouse=True)
def workspace_root(tmp_path_factory, monkeypatch):
    """The web UI's workspace root (`vlmtune webui --root`) for these tests: pytest's temporary folder, which
    holds every file they name (tests/test_webui_security.py checks the confinement itself)."""
    from vlmtune.apps.webui import workspace

    monkeypatch.setattr(workspace, "ROOT", str(tmp_path_factory.getbasetemp()))


VALUES = {
    "model_id": "tiny-qwen2-vl",
    "model_local_path": "",
    "data_path": "data/train.json",
    "eval_data_path": None,
    "output_dir": "out dir",
    "llm_mode": "full",
    "train_projector": False,
    "lora_r": 8.0,  # the default, as a browser's number box returns it
    "num_train_epochs": 3,  # the default 3.0
    "learning_rate": 0.02,
    "save_strategy": "no",  # the default, a string YAML would read as false unless quoted
    "eval_steps": "",
}  # in the form's order (forms.ALL_FIELDS), as the page passes them


def test_form_fields_come_from_the_argument_dataclasses():
    fields = {field.name: field for field in forms.form_fields(forms.ALL_FIELDS)}
    assert set(fields) == set(forms.ALL_FIELDS)
    for cls in (ModelArguments, DataArguments):
        for spec in dataclasses.fields(cls):
            if spec.name in fields:
                assert fields[spec.name].help == spec.metadata["help"]
    assert fields["model_id"] == forms.FormField("model_id", "text", None, fields["model_id"].help, required=True)
    assert (fields["llm_mode"].kind, fields["llm_mode"].default) == ("choice", "lora")
    assert fields["llm_mode"].choices == ("lora", "full", "frozen")
    assert (fields["train_projector"].kind, fields["train_projector"].default) == ("bool", True)
    assert (fields["lora_r"].kind, fields["lora_r"].default) == ("int", 8)
    assert (fields["learning_rate"].kind, fields["learning_rate"].default) == ("float", 5e-05)
    assert (fields["eval_steps"].kind, fields["eval_steps"].default) == ("float", None)
    assert fields["eval_strategy"].choices == ("no", "steps", "epoch")


def test_form_values_become_the_command_line_words_and_a_yaml_that_round_trips(tmp_path):
    argv = forms.form_argv(VALUES)
    assert argv == [
        "--model_id", "tiny-qwen2-vl", "--data_path", "data/train.json", "--output_dir", "out dir",
        "--llm_mode", "full", "--train_projector", "false", "--learning_rate", "0.02",
    ]  # fmt: skip
    assert forms.shell_command(argv) == (
        "vlmtune train --model_id tiny-qwen2-vl --data_path data/train.json --output_dir 'out dir' "
        "--llm_mode full --train_projector false --learning_rate 0.02"
    )
    config = tmp_path / "run.yaml"
    config.write_text(forms.to_yaml(VALUES))
    assert yaml_to_argv(str(config)) == argv
    assert parse_args(["--config", str(config)]) == parse_args(argv)
    # ... and back into the form: every field, the ones not in the YAML at their defaults.
    values, extra = forms.values_from_words(forms.from_yaml(config.read_text()), forms.ALL_FIELDS)
    assert extra == []
    assert forms.form_argv(values) == argv
    assert values["lora_r"] == 8 and values["train_projector"] is False and values["num_train_epochs"] == 3.0


def test_yaml_arguments_without_a_field_become_extra_words_and_unknown_ones_are_refused():
    values, extra = forms.values_from_words(forms.from_yaml("lora_r: 4\nweight_decay: 0.1\n"), forms.ALL_FIELDS)
    assert values["lora_r"] == 4 and extra == ["--weight_decay", "0.1"]
    with pytest.raises(forms.ArgumentError, match="unknown argument.*: lora_rank"):
        forms.from_yaml("lora_rank: 4")
    with pytest.raises(forms.ArgumentError, match="expected a mapping"):
        forms.from_yaml("- 1")


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["--lora_r", "0"], "vlmtune train: error: --lora_r and --lora_alpha must be positive"),
        (["--llm_mode", "bogus"], "vlmtune train: error: argument --llm_mode/--llm-mode: invalid choice: 'bogus'"),
        (["--use_qlora", "true", "--llm_mode", "full"], "vlmtune train: error: --use_qlora needs --llm_mode lora"),
    ],
)
def test_invalid_fields_are_refused_with_the_clis_message(words, message):
    problem = forms.check_argv(["--model_id", "tiny-qwen2-vl", "--data_path", "x.json", *words])
    assert problem is not None and message in problem


def test_an_unknown_model_and_a_missing_data_path_are_refused():
    assert forms.check_argv(["--model_id", "tiny-qwen2-vl", "--data_path", "x.json"]) is None
    assert "unknown model id 'tiny-qwen2'" in forms.check_argv(["--model_id", "tiny-qwen2", "--data_path", "x"])
    assert "the following arguments are required: --data_path" in forms.check_argv(["--model_id", "tiny-qwen2-vl"])


LOG = (
    "Loading weights: 100%|##########| 58/58 [00:00<00:00, 900it/s]\n"
    "\r  0%|          | 0/4 [00:00<?, ?it/s]\r 25%|##5       | 1/4 [00:00<00:01,  2.0it/s]"
    "\r                    \r{'loss': '2.5', 'grad_norm': '3.1', 'learning_rate': '0.02', 'epoch': '0.5'}\n"
    "\r 25%|##5       | 1/4 [00:00<00:01,  2.0it/s]\r 50%|#####     | 2/4 [00:01<00:01,  2.0it/s]"
    "\r  0%|          | 0/2 [00:00<?, ?it/s]\r100%|##########| 2/2 [00:00<00:00, 9.0it/s]"
    "\r{'eval_loss': '2.25', 'eval_runtime': '0.1', 'epoch': '1'}\n"
    "\r{'loss': '1.75', 'grad_norm': '2', 'learning_rate': '0.01', 'epoch': '1'}\n"
    "\r 75%|#######5  | 3/4 [00:01<00:00,  2.0it/s]"
)


def test_progress_and_losses_are_read_from_the_trainers_log():
    bar, points = runs.progress_and_losses(LOG)
    assert bar.groups() == ("3", "4", "00:01", "00:00")  # the training bar, not the weights' or the eval's
    assert points == [
        {"epoch": 0.5, "value": 2.5, "series": "loss"},
        {"epoch": 1.0, "value": 2.25, "series": "eval_loss"},
        {"epoch": 1.0, "value": 1.75, "series": "loss"},
    ]


def test_the_last_error_line_of_a_crash():
    assert runs.last_error(["x", "vlmtune train: error: --lora_r must be positive", ""]) == (
        "vlmtune train: error: --lora_r must be positive"
    )
    traceback = ["Traceback (most recent call last):", '  File "a.py", line 1', "    f()", "    ^^^", "KeyError: 'k'"]
    assert runs.last_error(["step 1", *traceback, ""]) == "KeyError: 'k'"


def fake_python(tmp_path, seconds: float) -> str:
    """A stand-in for the interpreter: a run that sleeps, so that locking and stopping are tested quickly."""
    script = tmp_path / "python"
    script.write_text(f"#!/bin/sh\necho fake run $@\nsleep {seconds}\n")
    script.chmod(0o755)
    return str(script)


def test_one_run_per_folder_found_again_by_a_new_server_and_stopped(tmp_path, monkeypatch):
    output = tmp_path / "out"
    argv = ["--model_id", "tiny-qwen2-vl", "--data_path", "x.json", "--output_dir", str(output)]
    python = fake_python(tmp_path, 60)
    run = runs.start_run(argv, python=python)
    try:
        assert runs.run_status(output).state == "running"
        with pytest.raises(runs.RunRefused, match=f"a run is already going in {output} \\(pid {run['pid']}"):
            runs.start_run(argv, python=python)
        # A new server (the page reopened after a restart) knows the run from its files only.
        monkeypatch.setattr(runs, "_children", {})
        status = runs.run_status(output)
        assert (status.state, status.message.split(",")[0]) == ("running", f"running (pid {run['pid']}")
        assert json.loads((output / runs.RUN_FILE).read_text())["argv"] == argv
        assert runs.stop_run(output) == f"stopped the run in {output} (pid {run['pid']})"
        for _ in range(50):
            if runs.run_status(output).state != "running":
                break
            time.sleep(0.1)
        assert runs.run_status(output).state == "stopped"
    finally:
        try:
            os.killpg(run["pid"], 9)
        except ProcessLookupError:
            pass


def test_a_crashed_run_shows_the_clis_error_line(tmp_path):
    output = tmp_path / "out"
    argv = ["--model_id", "tiny-qwen2-vl", "--data_path", str(tmp_path / "none.json"), "--output_dir", str(output)]
    runs.start_run(argv, python=sys.executable)
    for _ in range(600):
        status = runs.run_status(output)
        if status.state != "running":
            break
        time.sleep(0.1)
    assert status.state == "failed"
    assert status.message.startswith("failed (exit status 1): vlmtune train: error: ")
    assert "none.json" in status.message


def test_a_chat_turn_becomes_the_sample_vlmtune_chat_would_ask():
    from vlmtune.apps.webui.chat_tab import conversation_sample, user_turn

    answer = {"role": "assistant", "text": "3", "images": [], "videos": []}
    history = [user_turn("Which digit?", "a.png", None), answer, user_turn("Sure?", "b.png", None)]
    sample = conversation_sample(history)
    assert [(turn.role, turn.text) for turn in sample.turns] == [
        ("user", "<image>\nWhich digit?"),
        ("assistant", "3"),
        ("user", "<image>\nSure?"),
        ("assistant", ""),
    ]
    assert sample.images == ["a.png", "b.png"] and sample.videos == []


def test_the_preview_marks_the_trained_spans_in_html(tmp_path):
    from tests.conftest import digit_png
    from vlmtune.apps.webui.app import preview_html

    turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": "7 & <b>"}]
    data = tmp_path / "train.json"
    data.write_text(json.dumps([{"image": digit_png(tmp_path, "d7.png", 7), "conversations": turns}]))
    page = preview_html("tiny-qwen2-vl", str(data), "", 2048, 3)
    assert '<mark class="trained">7 &amp; &lt;b&gt;&lt;|im_end|&gt;</mark>' in page
    assert '<span class="media">&lt;|image_pad|&gt;×4</span>' in page
    assert f"<h4>{data.name} sample 0: 39 tokens, 35 text, 4 media, 8 trained</h4>" in page


def test_webui_refuses_a_serve_python_that_is_not_a_program(capsys, tmp_path):
    from vlmtune.apps.cli import main

    assert main(["webui", "--serve_python", str(tmp_path / "python")]) == 2
    assert (
        capsys.readouterr().err
        == f"vlmtune webui: error: --serve_python {tmp_path / 'python'}: not an executable file\n"
    )


def test_webui_without_gradio_names_the_extra(capsys, monkeypatch):
    from vlmtune.apps.cli import main

    monkeypatch.setitem(sys.modules, "gradio", None)  # import gradio fails as if it were not installed
    assert main(["webui"]) == 2
    assert capsys.readouterr().err == "vlmtune webui: error: the web UI needs gradio: pip install 'vlmtune[webui]'\n"


def test_start_refuses_invalid_fields_before_anything_runs(tmp_path):
    from vlmtune.apps.webui.train_tab import TRAIN, apply_yaml, start

    values, _ = forms.values_from_words({"model_id": "tiny-qwen2-vl", "data_path": "x.json"}, forms.ALL_FIELDS)
    values.update(output_dir=str(tmp_path / "out"), lora_r=0)
    message = start(TRAIN, False, *(values[name] for name in forms.ALL_FIELDS), "")
    assert message == "**Not started:** vlmtune train: error: --lora_r and --lora_alpha must be positive"
    assert not (tmp_path / "out").exists()
    assert start(TRAIN, False, *(values[name] for name in forms.ALL_FIELDS), "--bogus 1").startswith(
        "**Not started:** vlmtune train: error: "
    )
    # The YAML view fills the form: fields by name, other arguments into "more arguments".
    filled = apply_yaml(TRAIN, "lora_r: 4\nweight_decay: 0.1\n", *([None] * len(TRAIN.inputs)))
    assert dict(zip(TRAIN.inputs, filled[:-1], strict=True))["lora_r"] == 4
    assert filled[-2:] == ("--weight_decay 0.1", "YAML applied to the form.")


def test_an_upload_of_a_data_file_and_its_images_lands_in_one_folder(tmp_path):
    from tests.conftest import digit_png
    from vlmtune.apps.webui.app import uploaded_data

    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()  # gradio keeps each uploaded file in its own folder
    image = digit_png(tmp_path / "a", "d1.png", 1)
    data = tmp_path / "b" / "train.json"
    data.write_text(json.dumps([{"image": "d1.png", "conversations": []}]))
    path = uploaded_data([image, str(data)])
    assert path.endswith("/train.json") and os.path.isfile(os.path.join(os.path.dirname(path), "d1.png"))
    assert uploaded_data(None) == ""


# --- GRPO and Compose tabs -------------------------------------------------------------------------------------


def grpo_values(**changes) -> list:
    """The GRPO tab's field values (forms.GRPO_FIELDS order) as the page passes them: defaults, then `changes`."""
    values, _ = forms.values_from_words({}, forms.GRPO_FIELDS, "grpo")
    values.update(changes)
    return [values[name] for name in forms.GRPO_FIELDS]


def test_grpo_form_fields_come_from_the_grpo_dataclasses(tmp_path):
    from vlmtune.arguments import TrainingArguments
    from vlmtune.grpo.arguments import GRPOArguments, parse_grpo_args

    fields = {field.name: field for field in forms.form_fields(forms.GRPO_FIELDS, "grpo")}
    assert list(fields) == forms.GRPO_FIELDS
    checked = 0
    for cls in (ModelArguments, DataArguments, GRPOArguments):
        for spec in dataclasses.fields(cls):
            if spec.name in fields:
                default = spec.default
                if default is dataclasses.MISSING:  # a list's default_factory, or none: a required argument
                    default = None if spec.default_factory is dataclasses.MISSING else spec.default_factory()
                assert (fields[spec.name].help, fields[spec.name].default) == (spec.metadata["help"], default)
                checked += 1
    assert checked == 10  # all but output_dir, learning_rate, max_steps, per_device_train_batch_size (HF's)
    assert fields["learning_rate"].default == TrainingArguments.learning_rate == 5e-05
    assert (fields["reward_funcs"].kind, fields["reward_funcs"].default) == ("list", ["format", "accuracy"])
    assert (fields["reward_weights"].kind, fields["reward_weights"].item) == ("list", "float")
    assert (fields["num_generations"].kind, fields["num_generations"].default) == ("int", 8)
    assert (fields["loss_type"].kind, fields["loss_type"].default) == ("text", "dapo")
    # The form's values as command-line words and a --config YAML that `vlmtune grpo` parses the same way.
    values = dict(zip(forms.GRPO_FIELDS, grpo_values(), strict=True))
    assert values["reward_funcs"] == "format accuracy" and values["reward_weights"] == ""
    values.update(model_id="tiny-qwen2-vl", data_path="p.jsonl", reward_funcs="accuracy  length", beta=0.04)
    values.update(reward_weights="1 0.5", num_generations=4.0)
    argv = forms.form_argv(values, "grpo")
    assert argv == [
        "--model_id", "tiny-qwen2-vl", "--data_path", "p.jsonl", "--reward_funcs", "accuracy", "length",
        "--reward_weights", "1.0", "0.5", "--num_generations", "4", "--beta", "0.04",
    ]  # fmt: skip
    config = tmp_path / "grpo.yaml"
    config.write_text(forms.to_yaml(values, "grpo"))
    assert "reward_weights:\n- 1.0\n- 0.5\n" in config.read_text()
    assert parse_grpo_args(["--config", str(config)]) == parse_grpo_args(argv)
    # ... and back: from the YAML, and from the command line a run recorded (how a reopened page fills the form).
    for words in (forms.from_yaml(config.read_text(), "grpo"), forms.argv_words(argv)):
        back, extra = forms.values_from_words(words, forms.GRPO_FIELDS, "grpo")
        assert extra == [] and forms.form_argv(back, "grpo") == argv


@pytest.mark.parametrize(
    ("changes", "line"),
    [
        ({"loss_type": "ppo"}, "--loss_type must be one of grpo, dr_grpo, dapo, bnpo, cispo, sapo, got 'ppo'"),
        ({"reward_funcs": "accuracy nope"}, "--reward_funcs: unknown reward 'nope'"),
    ],
)
def test_a_bad_grpo_value_is_refused_with_the_clis_message(tmp_path, capsys, changes, line):
    from vlmtune.apps.cli import main
    from vlmtune.apps.webui.train_tab import GRPO, full_argv, start

    output = tmp_path / "out"
    values = (*grpo_values(model_id="tiny-qwen2-vl", data_path="p.jsonl", output_dir=str(output), **changes), "")
    message = start(GRPO, False, *values)
    assert not output.exists()
    assert main(["grpo", *full_argv(GRPO, values)]) == 2
    cli_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line in cli_line and message == f"**Not started:** {cli_line}"


def test_a_tiny_grpo_run_through_the_tab_ends_with_a_reward_curve(tmp_path):
    from tests.test_grpo import PLUGIN, clevr_count_data
    from vlmtune.apps.webui.train_tab import GRPO, STARTED, restore_last_run, start

    (tmp_path / "rewards.py").write_text(PLUGIN)  # even_tokens: a reward that varies within a group
    output = tmp_path / "out"
    values = grpo_values(
        model_id="tiny-qwen2-vl",
        data_path=clevr_count_data(tmp_path),
        output_dir=str(output),
        reward_funcs="even_tokens length",
        num_generations=2,
        max_completion_length=4,
        max_steps=2,
        per_device_train_batch_size=2,
    )
    extra = f"--reward_plugin {tmp_path / 'rewards.py'} --logging_steps 1 --log_completions_steps 1 --use_cpu true"
    message = start(GRPO, False, *values, extra)
    assert message.startswith("Started `vlmtune grpo --model_id tiny-qwen2-vl --data_path ")
    try:
        for _ in range(3000):
            status = runs.run_status(output)
            if status.state != "running":
                break
            time.sleep(0.1)
    finally:
        if runs.run_status(output).state == "running":
            runs.stop_run(output)
    assert (status.state, status.progress.split(",")[0]) == ("finished", "step 2/2"), status.message
    # The curve: each step's loss and mean reward; the reward is the mean over the step's completions, which the
    # run wrote with their rewards (2 prompts of the 4 per step, 2 completions each).
    rows = [json.loads(line) for line in (output / "completions.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [0] * 4 + [1] * 4
    rewards = [sum(row["reward"] for row in rows if row["step"] == step) / 4 for step in (0, 1)]
    assert [(point["epoch"], point["series"]) for point in status.losses] == [
        (0.5, "loss"), (0.5, "reward"), (1.0, "loss"), (1.0, "reward"),
    ]  # fmt: skip
    assert [point["value"] for point in status.losses[1::2]] == pytest.approx(rewards, abs=1e-3)
    assert (output / "adapter_model.safetensors").is_file()
    # Reopening the page fills the GRPO form again from the run's recorded command line.
    assert STARTED["grpo"][-1] == str(output)
    restored = restore_last_run(GRPO)
    assert list(restored[:-1]) == values and restored[-1] == extra


def test_compose_through_its_tab_and_the_model_tab_offers_the_folder(tmp_path, monkeypatch):
    from vlmtune.apps.webui.app import compose_model, composed_folders, output_model_id
    from vlmtune.apps.webui.forms import COMPOSE_FIELDS

    monkeypatch.chdir(tmp_path)  # the folder the UI runs in: composed folders directly in it are offered too
    values, _ = forms.values_from_words({}, COMPOSE_FIELDS, "compose")
    values.update(vision="tiny-siglip", llm="tiny-qwen3", output_dir=str(tmp_path / "made"))
    log, offered = compose_model(*(values[name] for name in COMPOSE_FIELDS))
    assert log.startswith(
        f"$ vlmtune compose --vision tiny-siglip --llm tiny-qwen3 --output_dir {tmp_path / 'made'}\n"
    )
    assert log.endswith("(exit status 0)")
    assert offered["choices"] == [str(tmp_path / "made")] == composed_folders(tmp_path)
    assert output_model_id(str(tmp_path / "made")) == (
        "llava-composed",
        f"{tmp_path / 'made'}: an output of llava-composed",
    )
    (tmp_path / "plain").mkdir()  # a folder that is not a composed model is not offered
    assert composed_folders(tmp_path) == [str(tmp_path / "made")]
    # A failed compose (a part that does not exist) offers nothing new and shows the command's one-line error.
    values.update(llm="tiny-nothing", output_dir=str(tmp_path / "bad"))
    log, offered = compose_model(*(values[name] for name in COMPOSE_FIELDS))
    assert "vlmtune compose: error: " in log and log.endswith("(exit status 2)")
    assert offered["choices"] == [str(tmp_path / "made")]


# --- Serve tab -------------------------------------------------------------------------------------------------


def serve_values(output, **changes) -> list:
    """The Serve tab's field values (forms.SERVE_FIELDS order) as the page passes them: defaults, then `changes`."""
    values, _ = forms.values_from_words({}, forms.SERVE_FIELDS, "serve")
    values.update(output=str(output), **changes)
    return [values[name] for name in forms.SERVE_FIELDS]


def cli_error(capsys, argv: list[str]) -> str:
    """The one line `vlmtune <argv>` prints on stderr when it exits with status 2 (in this process)."""
    from vlmtune.apps.cli import main

    capsys.readouterr()
    assert main(argv) == 2
    return capsys.readouterr().err.strip()


@pytest.fixture(scope="module")
def lora_output(request):
    """tests/test_export_serve.py's one-step tiny-llava-1.5 LoRA run with the defaults: the projector trained
    fully next to the adapter, so vLLM does not take the adapter alone."""
    return request.getfixturevalue("default_lora")


def test_serve_form_fields_come_from_serves_parser():
    from vlmtune.serving.serve import build_parser

    actions = [action for action in build_parser()._actions if action.dest != "help"]
    fields = forms.form_fields(forms.SERVE_FIELDS, "serve")
    assert [field.name for field in fields] == [action.dest for action in actions]  # every argument has a field
    for field, action in zip(fields, actions, strict=True):
        assert (field.default, field.help, field.positional) == (
            action.default,
            action.help,
            not action.option_strings,
        )
    assert fields[0] == forms.FormField("output", "text", None, actions[0].help, required=True, positional=True)
    assert [(field.kind, field.default) for field in fields[1:4]] == [
        ("text", "127.0.0.1"),
        ("int", 8000),
        ("int", 4096),
    ]
    # The folder is serve's positional argument, first; a number box's 8123.0 is the port 8123.
    argv = forms.form_argv(dict(zip(forms.SERVE_FIELDS, serve_values("out dir", port=8123.0), strict=True)), "serve")
    assert argv == ["out dir", "--port", "8123"]
    assert forms.shell_command(argv, "serve") == "vlmtune serve 'out dir' --port 8123"
    assert vars(build_parser().parse_args(argv)) == {
        **vars(build_parser().parse_args(["x"])),
        "output": "out dir",
        "port": 8123,
    }


def test_serve_refuses_bad_words_before_launch_with_the_clis_line(lora_output, tmp_path, capsys):
    from vlmtune.apps.webui.serve_tab import SERVER_FOLDER, start_server

    missing = tmp_path / "missing"
    for argv in ([str(lora_output), "--bogus", "1"], [str(missing)], [str(lora_output)]):
        assert forms.check_argv(argv, "serve") == cli_error(capsys, ["serve", *argv])
    line = cli_error(capsys, ["serve", str(lora_output)])
    assert "alone is not servable by vLLM" in line and f"vlmtune export --for vllm {lora_output} OUTPUT" in line
    assert start_server(*serve_values(lora_output)) == f"**Not started:** {line}"
    assert start_server(*serve_values(missing)) == f"**Not started:** {cli_error(capsys, ['serve', str(missing)])}"
    assert not (lora_output / SERVER_FOLDER).exists() and not missing.exists()


def wait_for_server(output, seconds: float = 120) -> tuple[str, str, str]:
    """The Serve tab's state, URL and log tail for `output` once the server answers (a URL) or has ended."""
    from vlmtune.apps.webui.serve_tab import server_status

    for _ in range(int(seconds * 10)):
        shown = server_status(str(output))
        if shown[1] or 'data-state="running"' not in shown[0]:
            break
        time.sleep(0.1)
    return shown


def test_export_through_the_tab_then_start_without_vllm_shows_the_clis_line(lora_output, tmp_path, capsys):
    from vlmtune.apps.webui.serve_tab import export_for_serving, server_status, start_server

    served = tmp_path / "served"
    log, folder = export_for_serving(f" {lora_output} ", str(served))
    assert log.startswith(f"$ vlmtune export --for vllm {lora_output} {served}\n{served}: a merged checkpoint; ")
    assert log.endswith("(exit status 0)") and folder == {"__type__": "update", "value": str(served)}
    assert (served / "config.json").is_file() and not (served / "adapter_config.json").exists()
    try:
        import vllm  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("vLLM is installed here: the tab's start would serve (make test-vllm checks that)")
    assert server_status(str(served))[0].endswith(f">no server started from the web UI for {served}</span>")
    message = start_server(*serve_values(served))
    assert message.startswith(f"Started `vlmtune serve {served}` (pid ")
    state, url, tail = wait_for_server(served)
    line = cli_error(capsys, ["serve", str(served)])
    assert line.startswith("vlmtune serve: error: vLLM is not importable from this Python. ")
    assert state == f'<span id="serve-state" data-state="failed">failed (exit status 2): {html.escape(line)}</span>'
    assert url == "" and tail.splitlines()[-1] == line


FAKE_SERVER = """#!{python}
# Stands in for `python -m vlmtune serve OUTPUT --port PORT`: an OpenAI-style /v1/models, nothing else.
import http.server, json, sys

class Models(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({{"data": [{{"id": "vlmtune"}}]}}).encode() if self.path == "/v1/models" else b""
        self.send_response(200 if body else 404)
        self.end_headers()
        self.wfile.write(body)

print("fake server", *sys.argv[1:], flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])), Models).serve_forever()
"""


def test_a_server_shows_its_url_once_it_answers_is_one_per_folder_and_stops(lora_output, tmp_path):
    import socket

    from vlmtune.apps.webui.serve_tab import last_served, server_folder, server_status, start_server
    from vlmtune.serving.export import export_for_vllm

    served, _ = export_for_vllm(lora_output, tmp_path / "served")
    python = tmp_path / "python"
    python.write_text(FAKE_SERVER.format(python=sys.executable))
    python.chmod(0o755)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    key = tmp_path / "key"
    key.write_text("a-key\n")
    key.chmod(0o600)  # beyond loopback only with a key (tests/test_webui_security.py)
    values = serve_values(served, host="0.0.0.0", port=float(port), api_key_file=str(key))
    message = start_server(*values, python=str(python))
    run = runs.read_run(server_folder(str(served)))
    try:
        assert message == (
            f"Started `vlmtune serve {served} --host 0.0.0.0 --port {port} --api_key_file {key}` (pid {run['pid']}), "
            f"log in `{served / 'webui_serve' / 'webui_run.log'}`."
        )
        state, url, tail = wait_for_server(served)
        assert url == f"http://127.0.0.1:{port}/v1"
        assert state.startswith(f'<span id="serve-state" data-state="running">serving vlmtune at {url} (running (pid ')
        assert tail.splitlines()[0] == (
            f"fake server -m vlmtune serve {served} --host 0.0.0.0 --port {port} --api_key_file {key}"
        )
        refused = start_server(*values, python=str(python))
        assert refused.startswith(f"**Not started:** a run is already going in {served / 'webui_serve'} (pid ")
        assert refused.endswith("stop it first, or choose another output folder")
        assert last_served() == str(served)  # a reopened page shows this server
        assert (
            runs.stop_run(server_folder(str(served)))
            == f"stopped the run in {served / 'webui_serve'} (pid {run['pid']})"
        )
        assert server_status(str(served))[:2] == ('<span id="serve-state" data-state="stopped">stopped</span>', "")
    finally:
        try:
            os.killpg(run["pid"], 9)
        except ProcessLookupError:
            pass


@pytest.mark.vllm
def test_the_tabs_start_really_serves_with_the_vllm_python(lora_output, tmp_path):
    """Start as with `vlmtune webui --serve_python` pointing at vLLM's venv (make test-vllm; ~50 s on 2 busy cores)."""
    import socket
    import urllib.request

    from vlmtune.apps.webui.serve_tab import server_folder, start_server
    from vlmtune.serving.export import export_for_vllm
    from vlmtune.serving.vllm_backend import VLLM_VENV

    python = f"{os.environ.get('VLLM_VENV', VLLM_VENV)}/bin/python"  # make test-vllm passes its VLLM_VENV
    if not os.path.isfile(python):
        pytest.skip(f"no {python} (scripts/setup_vllm_venv.sh)")
    served, _ = export_for_vllm(lora_output, tmp_path / "served")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert start_server(*serve_values(served, port=port), python=python).startswith("Started `vlmtune serve ")
    try:
        state, url, tail = wait_for_server(served, seconds=600)
        assert url == f"http://127.0.0.1:{port}/v1", f"{state}\n{tail}"
        assert state.startswith(f'<span id="serve-state" data-state="running">serving vlmtune at {url} (')
        body = {"model": "vlmtune", "messages": [{"role": "user", "content": "Which digit?"}], "max_tokens": 4}
        body.update(temperature=0, ignore_eos=True)  # exactly 4 new tokens, whatever the tiny model says
        request = urllib.request.Request(f"{url}/chat/completions", json.dumps(body).encode())
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=120) as response:
            reply = json.load(response)
        assert (reply["model"], reply["usage"]["completion_tokens"]) == ("vlmtune", 4)
    finally:
        runs.stop_run(server_folder(str(served)))


# --- DPO tab --------------------------------------------------------------------------------------------------


def test_dpo_form_round_trips_through_the_command_line_and_yaml(tmp_path):
    from vlmtune.apps.webui.app import tabs
    from vlmtune.dpo.arguments import parse_dpo_args

    assert "DPO" in [title for title, _ in tabs()]
    fields = {field.name: field for field in forms.form_fields(forms.DPO_FIELDS, "dpo")}
    assert list(fields) == forms.DPO_FIELDS
    assert (fields["loss_type"].kind, fields["loss_type"].default) == ("list", ["sigmoid"])
    assert (fields["beta"].kind, fields["beta"].default) == ("float", 0.1)
    values, _ = forms.values_from_words({}, forms.DPO_FIELDS, "dpo")
    values.update(model_id="tiny-qwen2-vl", data_path="pairs.jsonl", loss_type="sigmoid sft", loss_weights="1 0.5")
    argv = forms.form_argv(values, "dpo")
    assert argv == [
        "--model_id", "tiny-qwen2-vl", "--data_path", "pairs.jsonl", "--loss_type", "sigmoid", "sft",
        "--loss_weights", "1.0", "0.5",
    ]  # fmt: skip
    config = tmp_path / "dpo.yaml"
    config.write_text(forms.to_yaml(values, "dpo"))
    assert parse_dpo_args(["--config", str(config)]) == parse_dpo_args(argv)
    assert forms.check_argv(argv, "dpo") is None
    assert forms.check_argv([*argv, "--loss_type", "nope"], "dpo") == (
        "vlmtune dpo: error: --loss_type 'nope' is not one of sigmoid, hinge, ipo, exo_pair, nca_pair, robust, "
        "bco_pair, sppo_hard, aot, aot_unpaired, apo_zero, apo_down, discopop, sigmoid_norm, sft, simpo, orpo"
    )
