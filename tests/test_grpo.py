"""`vlmtune grpo` end to end through the real CLI (ClevrCount-style data, a reward plugin file), parameters that
train and stay frozen, the built-in rewards, the data layer and `vlmtune validate --task grpo`."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image, ImageDraw
from transformers import TrainerCallback

from vlmtune.apps import cli
from vlmtune.data.checks import check_reward_columns, to_prompt
from vlmtune.data.formats import load_samples
from vlmtune.errors import DataError
from vlmtune.grpo.arguments import parse_grpo_args
from vlmtune.grpo.rewards import RewardError, accuracy_reward, format_reward, length_reward, repetition_reward, score
from vlmtune.grpo.run import grpo
from vlmtune.grpo.trainer import RepeatedWindows

PLUGIN = """
def even_tokens(prompts, completions, completion_ids, difficulty, **kwargs):
    assert all(level == "easy" for level in difficulty), difficulty  # extra columns arrive untouched
    return [sum(i % 2 == 0 for i in ids) / len(ids) for ids in completion_ids]  # varies within every group


def broken(prompts, completions, **kwargs):
    if any("boom" in p for p in prompts):
        raise KeyError("no such thing")
    return [0.0] * len(completions)
"""


def squares_png(folder, name: str, count: int) -> str:
    image = Image.new("RGB", (32, 32), "white")
    draw = ImageDraw.Draw(image)
    for k in range(count):
        draw.rectangle([2 + 10 * k, 10, 8 + 10 * k, 16], fill="black")
    path = folder / name
    image.save(path)
    return name


def clevr_count_data(folder, rows: int = 4, question: str = "How many squares are there?", name="clevr.jsonl") -> str:
    """ms-swift's ClevrCount layout: messages with the user turn only, images, solution (and an extra column)."""
    records = [
        {
            "messages": [{"role": "user", "content": f"<image>{question}"}],
            "images": [squares_png(folder, f"img{i}.png", i % 3 + 1)],
            "solution": f"<answer> {i % 3 + 1} </answer>",
            "difficulty": "easy",
        }
        for i in range(rows)
    ]
    path = folder / name
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return str(path)


def grpo_argv(tmp_path, *extra: str) -> list[str]:
    return [
            "--model_id", "tiny-qwen2-vl",
            "--data_path", clevr_count_data(tmp_path),
            "--output_dir", str(tmp_path / "out"),
            "--reward_plugin", str(tmp_path / "rewards.py"),
            "--reward_funcs", "accuracy", "format", "even_tokens",
            "--num_generations", "4",
            "--max_completion_length", "6",
            "--per_device_train_batch_size", "2",
            "--max_steps", "2",
            "--logging_steps", "1",
            "--learning_rate", "1e-2",
            "--log_completions_steps", "1",
            "--use_cpu", "true",
            "--report_to", "none",
            *extra,
        ]  # fmt: skip


class Snapshot(TrainerCallback):
    """The parameters as training starts (after LoRA was added)."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {name: p.detach().clone() for name, p in model.named_parameters()}
        self.trainable = {name for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("mode", ["lora", "full"])
def test_a_few_steps_change_trained_parameters_and_nothing_frozen(tmp_path, mode):
    """LoRA (the reference is the base with adapters off) and full finetuning (a frozen copy) with beta > 0."""
    (tmp_path / "rewards.py").write_text(PLUGIN)
    argv = grpo_argv(tmp_path, "--beta", "0.04", "--llm_mode", mode, "--reward_funcs", "even_tokens")
    snapshot = Snapshot()
    trainer = grpo(*parse_grpo_args(argv), callbacks=[snapshot])
    after = dict(trainer.model.named_parameters())
    assert snapshot.trainable
    for name, before in snapshot.before.items():
        if name in snapshot.trainable:
            assert not torch.equal(after[name], before), f"{name} did not train"
        else:
            assert torch.equal(after[name], before), f"frozen {name} changed"
    history = trainer.state.log_history
    assert all("kl" in entry and "reward" in entry and "frac_reward_zero_std" in entry for entry in history[:-1])
    assert history[0]["sampling/logp_abs_diff"] < 1e-4  # fp32: sampling and training forward agree


def test_cli_with_plugin_and_clevr_count_layout(tmp_path, capsys):
    (tmp_path / "rewards.py").write_text(PLUGIN)
    assert cli.main(["grpo", *grpo_argv(tmp_path, "--gradient_accumulation_steps", "2")]) == 0
    out = tmp_path / "out"
    rows = [json.loads(line) for line in (out / "completions.jsonl").read_text().splitlines()]
    assert len(rows) == 2 * 2 * 2 * 4  # two steps of two micro-batches of two prompts with four completions each
    assert set(rows[0]["rewards"]) == {"accuracy", "format", "even_tokens"}
    assert rows[0]["prompt"] == "<image>How many squares are there?"
    assert rows[0]["reward"] == pytest.approx(sum(rows[0]["rewards"].values()))  # weights 1, float32 sum
    assert (out / "loss_curve.png").is_file() and (out / "adapter_model.safetensors").is_file()
    assert "GRPOArguments" in (out / "vlmtune_args.yaml").read_text()


def test_a_reward_that_raises_stops_the_run_with_one_line(tmp_path, capsys):
    (tmp_path / "rewards.py").write_text(PLUGIN)
    data = clevr_count_data(tmp_path, question="boom?", name="boom.jsonl")
    argv = grpo_argv(tmp_path, "--reward_funcs", "broken", "--data_path", data)
    assert cli.main(["grpo", *argv]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "Traceback" not in errors[0]
    assert (
        "vlmtune grpo: error: reward 'broken' raised KeyError: 'no such thing' (sample 'boom.jsonl line" in errors[0]
    )


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (["--reward_funcs", "nope"], "unknown reward 'nope'"),
        (["--loss_type", "ppo"], "--loss_type must be one of"),
        (["--num_generations", "1"], "--num_generations must be at least 2"),
        (["--reward_weights", "1", "2"], "--reward_weights has 2 value(s) for 3 reward(s)"),
        (["--use_vllm", "true", "--vllm_max_model_len", "6"], "--vllm_max_model_len must exceed"),
        (["--eval_strategy", "steps"], "--eval_strategy steps needs --eval_data_path"),
        (["--advantage_estimator", "ppo"], "--advantage_estimator must be one of grpo, rloo, reinforce_plus_plus"),
        (["--loss_type", "sapo", "--sapo_temperature_neg", "0"], "--sapo_temperature_pos and --sapo_temperature_neg"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, flag, message):
    (tmp_path / "rewards.py").write_text(PLUGIN)
    assert cli.main(["grpo", *grpo_argv(tmp_path, *flag)]) == 2
    assert message in capsys.readouterr().err


def test_use_vllm_without_vllm_exits_2_with_how_to_install_it(tmp_path, capsys):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: tests/test_grpo_vllm.py runs it")
    (tmp_path / "rewards.py").write_text(PLUGIN)
    assert cli.main(["grpo", *grpo_argv(tmp_path, "--use_vllm", "true")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "vLLM is not importable from this Python" in errors[0]


def test_prompts_keep_solution_and_extra_columns(tmp_path):
    sft = tmp_path / "sft.json"
    sft.write_text(
        json.dumps(
            [{"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}], "level": 1}]
        )
    )
    prompt = to_prompt(load_samples(sft)[0])
    assert [t.role for t in prompt.turns] == ["user"] and prompt.extra == {"level": 1, "solution": "4"}
    with_solution = load_samples(sft)[0]
    with_solution.extra["solution"] = "four"
    assert to_prompt(with_solution).extra["solution"] == "four"  # a given solution column wins
    check_reward_columns(prompt, ["solution", "level"])
    with pytest.raises(DataError, match="no column 'answer'"):
        check_reward_columns(prompt, ["answer"])


def test_validate_task_grpo_checks_reward_columns(tmp_path, capsys):
    data = clevr_count_data(tmp_path)
    assert cli.main(["validate", "--data_path", data]) == 1  # as SFT data: no assistant reply
    assert cli.main(["validate", "--data_path", data, "--task", "grpo"]) == 0
    assert cli.main(["validate", "--data_path", data, "--task", "grpo", "--reward_columns", "solution", "answer"]) == 1
    assert "no column 'answer' for the rewards" in capsys.readouterr().out


def test_built_in_rewards():
    replies = ["<think>two and one</think><answer> 3 </answer>", "3", "<answer>(B) cat</answer>", "x y z x y z x y z"]
    assert format_reward([""] * 4, replies) == [1.0, 0.0, 0.0, 0.0]
    assert format_reward([""], ["[r]a[/r][a]3[/a]"], think_tags=("[r]", "[/r]"), answer_tags=("[a]", "[/a]")) == [1.0]
    solutions = ["<answer>3.0</answer>", "3", "B", "4"]
    assert accuracy_reward([""] * 4, replies, solution=solutions) == [1.0, 1.0, 1.0, 0.0]
    assert accuracy_reward([""], ["no"], solution=[None]) == [None]
    assert length_reward(
        [""] * 3, [""] * 3, completion_ids=[[0] * 5, [0] * 7, [0] * 8], max_completion_length=8, overlong_buffer=2
    ) == [0.0, -0.5, -1.0]
    assert repetition_reward([""] * 2, ["a b c d", replies[3]]) == [0.0, pytest.approx(-4 / 7)]


def test_reward_with_wrong_count_is_named():
    with pytest.raises(RewardError, match="reward 'bad' must return a list of 2 floats"):
        score({"bad": lambda prompts, completions, **_: [1.0]}, ["a", "b"], ["x", "y"], {}, ["s0", "s1"])


def test_num_iterations_reuses_rollouts_with_their_old_log_probs(tmp_path):
    """Two optimizer steps on one batch of rollouts: generated once (one step in completions.jsonl) for prompts the
    data loader hands in twice, and the second step's ratio is against the log-probs recorded before the first (so
    it is no longer exactly 1)."""
    (tmp_path / "rewards.py").write_text(PLUGIN)
    argv = grpo_argv(tmp_path, "--num_iterations", "2", "--reward_funcs", "even_tokens", "--epsilon", "0.0001")
    trainer = grpo(*parse_grpo_args(argv))
    rows = [json.loads(line) for line in (tmp_path / "out" / "completions.jsonl").read_text().splitlines()]
    assert {row["step"] for row in rows} == {0} and len(rows) == 2 * 4
    first, second = trainer.state.log_history[:2]
    assert first["clip_ratio/region_mean"] == 0  # the first step: ratio 1 everywhere
    assert second["clip_ratio/region_mean"] > 0  # after one update, some ratios leave [1 - 1e-4, 1 + 1e-4]


def test_repeated_windows_hand_in_each_window_num_iterations_times():
    order = list(RepeatedWindows(size=7, window=3, repeats=2, seed=0))
    assert len(order) == 12 and order[:3] == order[3:6] and order[6:9] == order[9:12]
    assert len(set(order)) == 6  # two windows of three distinct prompts; the seventh (partial window) dropped


def test_advantage_estimator_sets_its_default_scaling():
    """reinforce_plus_plus divides by the batch std unless told otherwise; the others keep TRL's group default."""
    base = ["--model_id", "tiny-qwen2-vl", "--data_path", "d.jsonl", "--output_dir", "o"]
    assert parse_grpo_args(base)[3].scale_rewards == "group"
    assert parse_grpo_args([*base, "--advantage_estimator", "rloo"])[3].scale_rewards == "group"
    assert parse_grpo_args([*base, "--advantage_estimator", "reinforce_plus_plus"])[3].scale_rewards == "batch"
    argv = [*base, "--advantage_estimator", "reinforce_plus_plus", "--scale_rewards", "none"]
    assert parse_grpo_args(argv)[3].scale_rewards == "none"


TIED_PLUGIN = """
def half_tied(prompts, completions, completion_ids, kind, **kwargs):
    # The same reward for every completion of a 'tied' prompt; for the others one that varies with the tokens.
    return [0.5 if k == "tied" else sum(i % 2 == 0 for i in ids) / len(ids) for k, ids in zip(kind, completion_ids)]
"""


def tied_data(tmp_path, kinds: list[str]) -> str:
    rows = [json.loads(line) for line in open(clevr_count_data(tmp_path, rows=len(kinds)))]
    path = tmp_path / "tied.jsonl"
    path.write_text("".join(json.dumps({**row, "kind": kind}) + "\n" for row, kind in zip(rows, kinds, strict=True)))
    return str(path)


def tied_run(tmp_path, kinds: list[str], *extra: str) -> tuple[list[dict], list[dict]]:
    """(logged steps, completions.jsonl rows) of a 3-step run on prompts of the given kinds."""
    (tmp_path / "tied_rewards.py").write_text(TIED_PLUGIN)
    argv = grpo_argv(tmp_path, "--data_path", tied_data(tmp_path, kinds), "--reward_funcs", "half_tied")
    argv += ["--reward_plugin", str(tmp_path / "tied_rewards.py"), "--max_steps", "3", *extra]
    trainer = grpo(*parse_grpo_args(argv))
    path = tmp_path / "out" / "completions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.unlink()
    return trainer.state.log_history[:-1], rows


def test_resample_tied_groups_replaces_them_with_fresh_prompts(tmp_path):
    kinds = ["tied", "varied", "tied", "varied", "tied", "tied"]
    plain, _ = tied_run(tmp_path, kinds)
    assert sum(entry["frac_reward_zero_std"] for entry in plain) > 0  # without: steps with tied groups
    resampled, rows = tied_run(tmp_path, kinds, "--resample_tied_groups", "true", "--max_resample_times", "8")
    assert all(entry["frac_reward_zero_std"] == 0 for entry in resampled)
    assert sum(entry["tied_groups_resampled"] for entry in resampled) > 0
    lines = {int(row["source"].rsplit(" ", 1)[1]) for row in rows}
    assert all(kinds[line - 1] == "varied" for line in lines)  # only the varied prompts were trained on
    assert len(rows) == 3 * 2 * 4  # still 2 prompts x 4 completions per step


def test_resampling_stops_after_max_resample_times(tmp_path):
    history, rows = tied_run(tmp_path, ["tied"] * 4, "--resample_tied_groups", "true", "--max_resample_times", "2")
    assert [entry["tied_groups_resampled"] for entry in history] == [4, 4, 4]  # 2 groups x 2 rounds, then given up
    assert all(entry["frac_reward_zero_std"] == 1 for entry in history)
    assert all(row["advantage"] == 0 for row in rows)
    # The merged rollouts (prompts encoded again, completions padded again) line up in the training forward.
    assert history[0]["sampling/logp_abs_diff"] < 1e-4


def test_eval_data_is_scored_by_the_rewards_every_eval_steps(tmp_path):
    """--eval_data_path: greedy replies to the held-out prompts, scored by the run's rewards, logged every
    eval_steps and at the end (eval_results.json, the reward curve)."""
    from vlmtune.grpo.rollouts import SamplingSettings, generate_completions

    (tmp_path / "rewards.py").write_text(PLUGIN)
    eval_path = clevr_count_data(tmp_path, rows=3, name="eval.jsonl")
    argv = grpo_argv(tmp_path, "--eval_data_path", eval_path, "--eval_strategy", "steps", "--eval_steps", "1")
    trainer = grpo(*parse_grpo_args([*argv, "--reward_funcs", "accuracy", "even_tokens"]))
    evals = [entry for entry in trainer.state.log_history if "eval_reward" in entry]
    assert [entry["step"] for entry in evals] == [1, 2, 2]  # every step, then the final evaluation
    assert all("eval_rewards/accuracy/mean" in entry for entry in evals)
    final = json.loads((tmp_path / "out" / "eval_results.json").read_text())
    # The same numbers from the final model's greedy replies (stop token included, as in training), scored here.
    samples = trainer.eval_dataset.samples
    greedy = SamplingSettings(num_generations=1, max_completion_length=6, greedy=True)
    rollouts = generate_completions(trainer.model, trainer.collator, samples, greedy)
    replies, lengths = rollouts.texts, rollouts.completion_mask.sum(1).tolist()
    ids = [row[:n] for row, n in zip(rollouts.completion_ids.tolist(), lengths, strict=True)]
    even = [sum(i % 2 == 0 for i in row) / len(row) for row in ids]
    assert final["eval_rewards/even_tokens/mean"] == pytest.approx(sum(even) / len(even))
    accuracy = accuracy_reward([""] * 3, replies, [s.extra["solution"] for s in samples])
    assert final["eval_rewards/accuracy/mean"] == pytest.approx(sum(accuracy) / 3)
    assert final["eval_reward"] == pytest.approx((sum(even) + sum(accuracy)) / 3, rel=1e-6)


@pytest.mark.parametrize(
    ("extra", "logged", "absent"),
    [
        (
            ["--loss_type", "cispo", "--epsilon_high", "5.0", "--advantage_estimator", "rloo"],
            "cispo_clip_ratio",
            "clip_ratio/region_mean",
        ),
        (["--loss_type", "sapo", "--advantage_estimator", "reinforce_plus_plus"], "entropy", "clip_ratio/region_mean"),
    ],
)
def test_cispo_and_sapo_runs_train_the_lora_weights(tmp_path, extra, logged, absent):
    (tmp_path / "rewards.py").write_text(PLUGIN)
    snapshot = Snapshot()
    trainer = grpo(
        *parse_grpo_args(grpo_argv(tmp_path, "--reward_funcs", "even_tokens", *extra)), callbacks=[snapshot]
    )
    after = dict(trainer.model.named_parameters())
    changed = [name for name in snapshot.trainable if not torch.equal(after[name], snapshot.before[name])]
    assert set(changed) == snapshot.trainable  # every trainable weight moved
    history = trainer.state.log_history[:-1]
    assert all(logged in entry and absent not in entry for entry in history)
