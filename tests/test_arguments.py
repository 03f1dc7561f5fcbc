"""Command-line arguments: unknown flags, parse errors, lmms-finetune's launch flags, and `python -m vlmtune`.

Every command in vlmtune.apps.cli.COMMANDS is checked, so a command added later is covered the moment it is registered.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import digit_png
from vlmtune.apps.cli import COMMANDS
from vlmtune.apps.cli import main as cli_main
from vlmtune.arguments import LMMS_FINETUNE_ALIASES, format_lmms_table, parse_args, translate_lmms_finetune
from vlmtune.errors import ArgumentError

ROOT = Path(__file__).resolve().parents[1]


def run_cli(argv: list[str], capsys) -> tuple[int, list[str]]:
    status = cli_main(argv)
    captured = capsys.readouterr()
    return status, (captured.out + captured.err).splitlines()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_names_an_unknown_flag_in_one_line(command, capsys):
    status, lines = run_cli([command, "--not_a_flag_at_all", "1"], capsys)
    assert status == 2
    assert lines == [f"vlmtune {command}: error: unknown flag --not_a_flag_at_all; see vlmtune {command} --help"]


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["train", "--lerning_rate", "1"],
            "vlmtune train: error: unknown flag --lerning_rate; did you mean --learning_rate?",
        ),
        (
            ["train", "--model_id=x", "--lerning-rate=1"],
            "vlmtune train: error: unknown flag --lerning-rate; did you mean --learning_rate?",
        ),
        (
            ["validate", "--data_path", "a.json", "--modle_id", "x"],
            "vlmtune validate: error: unknown flag --modle_id; did you mean --model_id?",
        ),
        (
            ["preview", "--num_sample", "2"],
            "vlmtune preview: error: unknown flag --num_sample; did you mean --num_samples?",
        ),
        (["merge", "a", "b", "--dtyp", "auto"], "vlmtune merge: error: unknown flag --dtyp; did you mean --dtype?"),
        (
            ["chat", "tiny-qwen2-vl", "--promt", "hi"],
            "vlmtune chat: error: unknown flag --promt; did you mean --prompt?",
        ),
        (["models", "--famillies"], "vlmtune models: error: unknown flag --famillies; did you mean --families?"),
        # a cut flag is not silently read as the flag it starts (argparse's prefix matching is off)
        (["demo", "--epoch", "2"], "vlmtune demo: error: unknown flag --epoch; did you mean --epochs?"),
        (
            ["train", "--foo", "1", "--lerning_rate", "1"],
            "vlmtune train: error: unknown flags --foo, --lerning_rate (did you mean --learning_rate?); "
            "see vlmtune train --help",
        ),
    ],
)
def test_a_misspelled_flag_gets_the_closest_valid_flags(argv, line, capsys):
    status, lines = run_cli(argv, capsys)
    assert (status, lines) == (2, [line])


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["train", "--model_id", "tiny-qwen2-vl"],
            "vlmtune train: error: the following arguments are required: --data_path/--data-path",
        ),
        (
            ["train", "--model_id", "m", "--data_path", "d", "--lora_r", "x"],
            "vlmtune train: error: argument --lora_r/--lora-r: invalid int value: 'x'",
        ),
        (
            ["train", "--model_id", "m", "--data_path", "d", "--llm_mode", "lorra"],
            "vlmtune train: error: argument --llm_mode/--llm-mode: invalid choice: 'lorra' (choose from 'lora', "
            "'full', 'frozen')",
        ),
        (
            ["train", "--model_id", "m", "--data_path", "d", "--tf32", "true"],  # transformers' own check, on CPU
            "vlmtune train: error: --tf32 requires Ampere or a newer GPU arch, cuda>=11 and torch>=1.7",
        ),
        (
            ["train", "stray", "--model_id", "m", "--data_path", "d"],
            "vlmtune train: error: unexpected argument(s): stray (see vlmtune train --help)",
        ),
        (["train", "--config"], "vlmtune train: error: --config needs a YAML file path"),
        (["validate"], "vlmtune validate: error: the following arguments are required: --data_path/--data-path"),
        (["merge", "a"], "vlmtune merge: error: the following arguments are required: output_dir"),
        (["demo", "--epochs", "x"], "vlmtune demo: error: argument --epochs: invalid float value: 'x'"),
        (
            ["models", "--families", "--unsupported"],
            "vlmtune models: error: argument --unsupported: not allowed with argument --families",
        ),
    ],
)
def test_missing_flags_and_bad_values_end_in_one_line(argv, line, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "tf32" in argv and __import__("torch").cuda.is_available():
        pytest.skip("--tf32 is valid on a CUDA machine")
    status, lines = run_cli(argv, capsys)
    assert (status, lines) == (2, [line])
    assert not (tmp_path / "trainer_output").exists()


def test_deepspeed_without_its_package_is_one_line(capsys):
    if __import__("importlib.util").util.find_spec("deepspeed"):
        pytest.skip("deepspeed is installed")
    config = str(ROOT / "configs" / "deepspeed_zero3.json")
    status, lines = run_cli(["train", "--model_id", "m", "--data_path", "d", "--deepspeed", config], capsys)
    assert status == 2 and len(lines) == 1, lines
    assert lines[0].startswith("vlmtune train: error: --deepspeed: ") and "deepspeed" in lines[0][35:]
    assert lines[0].endswith("(install it, or drop the flag)")


def test_a_logger_without_its_package_is_one_line(capsys):
    if __import__("importlib.util").util.find_spec("wandb"):
        pytest.skip("wandb is installed")
    status, lines = run_cli(["train", "--model_id", "m", "--data_path", "d", "--report_to", "wandb"], capsys)
    assert (status, lines) == (
        2,
        ["vlmtune train: error: --report_to wandb: not installed (pip install wandb), or log to another"],
    )


def test_python_dash_m_vlmtune_is_the_vlmtune_command():
    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vlmtune", *argv], capture_output=True, text=True, cwd=ROOT)

    help_run = run("--help")
    assert help_run.returncode == 0 and help_run.stdout.startswith("usage: vlmtune <command>")
    assert all(f"  {name:<8} " in help_run.stdout for name in COMMANDS)
    typo = run("models", "--famillies")
    assert typo.returncode == 2
    assert (
        typo.stderr.strip().splitlines()[-1]
        == "vlmtune models: error: unknown flag --famillies; did you mean --families?"
    )
    assert "Traceback" not in typo.stderr


# --- lmms-finetune's launch flags ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "words", "notes"),
    [
        (["--use_lora", "True"], ["--llm_mode", "lora"], ["--use_lora True read as --llm_mode lora"]),
        (["--use_lora=false"], ["--llm_mode", "full"], ["--use_lora=false read as --llm_mode full"]),
        (
            ["--use_lora", "--lora_r", "4"],
            ["--lora_r", "4", "--llm_mode", "lora"],
            ["--use_lora read as --llm_mode lora"],
        ),
        (["--q_lora", "yes"], ["--use_qlora", "true"], ["--q_lora yes read as --use_qlora true"]),
        (
            ["--train_vision_encoder", "True"],
            ["--vision_mode", "lora"],
            ["--train_vision_encoder True read as --vision_mode lora"],
        ),
        (
            ["--use_vision_lora", "False", "--train_vision_encoder", "1"],
            ["--vision_mode", "full"],
            ["--train_vision_encoder 1 --use_vision_lora False read as --vision_mode full"],
        ),
        (
            ["--train_vision_encoder", "False", "--use_vision_lora", "True"],
            ["--vision_mode", "frozen"],
            [
                "--train_vision_encoder False read as --vision_mode frozen",
                "--use_vision_lora True dropped: it changes nothing in vlmtune",
            ],
        ),
        (
            ["--train_vision_projector", "False"],
            ["--train_projector", "false"],
            ["--train_vision_projector False read as --train_projector false"],
        ),
        (
            ["--use_flash_attn", "True"],
            ["--attn_implementation", "flash_attention_2"],
            ["--use_flash_attn True read as --attn_implementation flash_attention_2"],
        ),
        (["--warmup_ratio", "0.03"], ["--warmup_steps", "0.03"], ["--warmup_ratio 0.03 read as --warmup_steps 0.03"]),
        (
            ["--gradient_checkpointing", "True"],
            ["--activation_checkpointing", "true"],
            ["--gradient_checkpointing True read as --activation_checkpointing true"],
        ),
        (
            ["--lora_bias", "none", "--mask_question_tokens", "True"],
            [],
            [
                "--lora_bias none dropped: it changes nothing in vlmtune",
                "--mask_question_tokens True dropped: it changes nothing in vlmtune",
            ],
        ),
        (["--learning_rate", "1e-4"], ["--learning_rate", "1e-4"], []),
    ],
)
def test_lmms_finetune_flags_are_read_as_vlmtune_flags(argv, words, notes):
    assert translate_lmms_finetune(argv) == (words, notes)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--mask_question_tokens", "False"],
            "--mask_question_tokens False (lmms-finetune) is not supported: vlmtune trains the assistant replies",
        ),
        (
            ["--lora_bias", "all"],
            "--lora_bias all (lmms-finetune) is not supported: vlmtune's LoRA adapters have no bias terms",
        ),
        (
            ["--use_lora", "True", "--llm_mode", "full"],
            "--use_lora True (lmms-finetune) and --llm_mode are both given; keep --llm_mode only",
        ),
        (
            ["--q_lora", "True", "--use_qlora=false"],
            "--q_lora True (lmms-finetune) and --use_qlora are both given; keep --use_qlora only",
        ),
        (["--use_lora", "maybe"], "--use_lora maybe: expected true or false"),
        (["--warmup_ratio", "1.5"], "--warmup_ratio 1.5: a fraction of the training steps, in [0, 1)"),
        (["--warmup_ratio"], "--warmup_ratio needs a value"),
    ],
)
def test_lmms_finetune_flags_vlmtune_cannot_honour_are_refused(argv, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        translate_lmms_finetune(argv)


def test_migration_doc_alias_table_is_the_one_in_arguments():
    migration = (ROOT / "docs" / "migration.md").read_text()
    section = migration.split("## Flags", 1)[1].split("\n## ", 1)[0]
    assert format_lmms_table() in section
    # every vlmtune flag an alias names exists
    parser_flags = {
        flag
        for action in __import__("vlmtune.arguments").arguments.build_parser()._actions
        for flag in action.option_strings
    }
    for words in LMMS_FINETUNE_ALIASES.values():
        assert all(w in parser_flags for w in words.split() if w.startswith("--")), words


def lmms_finetune_argv(
    model_id: str, data: Path, eval_data: Path, images: Path, videos: Path, out: Path, max_len: int
) -> list[str]:
    """Every flag of lmms-finetune's example_image.sh / example_video.sh launch, in its order, with its values
    (the variables set as its header sets them, a tiny model and tiny data in place of the real ones). Left out,
    because they need what a CPU test machine lacks: --deepspeed (the deepspeed package and a GPU), --tf32 True
    (an Ampere GPU), --report_to wandb (the wandb package; none here)."""
    flags = {
        "model_id": model_id, "data_path": data, "eval_data_path": eval_data, "image_folder": images,
        "video_folder": videos, "num_frames": 8, "output_dir": out, "report_to": "none", "run_name": "run",
        "bf16": "True", "num_train_epochs": 5, "per_device_train_batch_size": 2, "per_device_eval_batch_size": 2,
        "gradient_accumulation_steps": 1, "eval_strategy": "epoch", "save_strategy": "epoch", "save_total_limit": 1,
        "learning_rate": "2e-5", "weight_decay": "0.", "warmup_ratio": 0.03, "lr_scheduler_type": "cosine",
        "logging_steps": 1, "model_max_length": max_len, "gradient_checkpointing": "True",
        "dataloader_num_workers": 4, "train_vision_encoder": "False", "use_vision_lora": "False",
        "train_vision_projector": "False", "use_lora": "True", "q_lora": "False", "lora_r": 8, "lora_alpha": 8,
    }  # fmt: skip
    return [word for name, value in flags.items() for word in (f"--{name}", str(value))]


def test_lmms_finetune_video_script_flags_parse(tmp_path):
    argv = lmms_finetune_argv("llava-next-video-7b", "v.json", "e.json", "images", "videos", tmp_path / "o", 512)
    model_args, data_args, training_args = parse_args(argv + ["--use_cpu", "true"])
    assert (model_args.model_id, model_args.llm_mode, model_args.vision_mode) == (
        "llava-next-video-7b",
        "lora",
        "frozen",
    )
    assert (model_args.train_projector, model_args.use_qlora, model_args.lora_r, model_args.lora_alpha) == (
        False,
        False,
        8,
        8,
    )
    assert (data_args.num_frames, data_args.model_max_length, data_args.video_folder) == (8, 512, "videos")
    assert training_args.warmup_steps == 0.03 and training_args.activation_checkpointing is True
    assert (training_args.lr_scheduler_type, training_args.eval_strategy, training_args.save_total_limit) == (
        "cosine",
        "epoch",
        1,
    )


def test_lmms_finetune_image_script_flags_train(tmp_path, caplog, capsys):
    images = tmp_path / "images"
    images.mkdir()
    records = []
    for digit in range(4):
        digit_png(images, f"{digit}.png", digit)
        turns = [{"from": "human", "value": "<image>Which digit?"}, {"from": "gpt", "value": str(digit)}]
        records.append({"image": f"{digit}.png", "conversations": turns})
    (tmp_path / "train.json").write_text(json.dumps(records))
    (tmp_path / "eval.json").write_text(json.dumps(records[:2]))
    out = tmp_path / "checkpoints" / "run"
    argv = lmms_finetune_argv(
        "tiny-llava-1.5", tmp_path / "train.json", tmp_path / "eval.json", images, tmp_path / "videos", out, 1024
    )
    caplog.set_level(logging.INFO, logger="vlmtune")
    assert cli_main(["train", *argv, "--max_steps", "1", "--use_cpu", "true"]) == 0, capsys.readouterr().err[-3000:]
    assert "--use_lora True read as --llm_mode lora" in caplog.messages
    assert "--warmup_ratio 0.03 read as --warmup_steps 0.03" in caplog.messages
    resolved = yaml.safe_load((out / "vlmtune_args.yaml").read_text())
    model_args = resolved["ModelArguments"]
    assert (model_args["llm_mode"], model_args["vision_mode"], model_args["train_projector"]) == (
        "lora",
        "frozen",
        False,
    )
    assert resolved["TrainingArguments"]["warmup_steps"] == 0.03
    assert (out / "adapter_model.safetensors").exists()


def test_migration_doc_rewritten_script_uses_vlmtune_flags_only():
    from vlmtune.arguments import build_parser, reject_unknown

    migration = (ROOT / "docs" / "migration.md").read_text()
    script = migration.split("## The launch script, rewritten", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    variables = dict(re.findall(r"^(\w+)=(\S+)", script, re.MULTILINE))
    command = script.split("-m vlmtune.train", 1)[1].replace("\\\n", " ")
    argv = re.sub(r"\$\{?(\w+)\}?", lambda m: variables[m.group(1)], command).split()
    reject_unknown(build_parser(), argv)
    assert translate_lmms_finetune(argv) == (argv, [])
    assert {"--vision_mode", "--train_projector", "--llm_mode", "--use_qlora", "--warmup_steps"} <= set(argv)
