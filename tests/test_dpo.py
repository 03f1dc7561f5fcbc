"""`vlmtune dpo` end to end through the real CLI (a JSONL of pairs, then `vlmtune chat` on the output), parameters
that train and stay frozen, the reference (adapters off, a frozen copy, precomputed), the three record layouts,
and `vlmtune validate --task dpo` / `vlmtune preview --task dpo`."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerCallback

from tests.conftest import digit_png
from vlmtune.apps import cli
from vlmtune.data.formats import read_options
from vlmtune.dpo.arguments import parse_dpo_args
from vlmtune.dpo.data import record_to_pair
from vlmtune.dpo.run import dpo, full_causal_attention, reference_cache_file
from vlmtune.errors import DataError
from vlmtune.supported_models import get_model

METRICS = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "logps/chosen",
    "logps/rejected",
    "logits/chosen",
    "logits/rejected",
)


def pairs_file(folder, rows: int = 4) -> str:
    """OpenAI-messages pairs: which digit is shown; the right digit chosen, a wrong one rejected."""
    records = []
    for i in range(rows):
        digit = i % 10
        records.append(
            {
                "messages": [{"role": "user", "content": "<image>Which digit?"}],
                "chosen": str(digit),
                "rejected": str((digit + 3) % 10),
                "images": [digit_png(folder, f"d{i}.png", digit)],
            }
        )
    path = folder / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    return str(path)


def dpo_argv(tmp_path, *extra: str) -> list[str]:
    return [
            "--model_id", "tiny-qwen2-vl",
            "--data_path", pairs_file(tmp_path),
            "--output_dir", str(tmp_path / "out"),
            "--per_device_train_batch_size", "2",
            "--max_steps", "2",
            "--logging_steps", "1",
            "--learning_rate", "1e-2",
            "--use_cpu", "true",
            "--report_to", "none",
            *extra,
        ]  # fmt: skip


class Snapshot(TrainerCallback):
    """The parameters as training starts (after LoRA was added)."""

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.before = {name: p.detach().clone() for name, p in model.named_parameters()}
        self.trainable = {name for name, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize(
    ("mode", "extra"),
    [
        ("lora", ()),
        ("full", ()),
        ("lora", ("--precompute_ref_log_probs", "true", "--loss_type", "ipo")),
        ("full", ("--prompt_once", "true")),
        ("lora", ("--prompt_once", "true", "--precompute_ref_log_probs", "true")),
    ],
    ids=["lora-adapters-off", "full-frozen-copy", "lora-precomputed-ipo", "full-prompt-once", "lora-prompt-once-pre"],
)
def test_a_few_steps_change_trained_parameters_and_nothing_frozen(tmp_path, mode, extra):
    snapshot = Snapshot()
    trainer = dpo(*parse_dpo_args(dpo_argv(tmp_path, "--llm_mode", mode, *extra)), callbacks=[snapshot])
    after = dict(trainer.model.named_parameters())
    assert snapshot.trainable
    for name, before in snapshot.before.items():
        if name in snapshot.trainable:
            assert not torch.equal(after[name], before), f"{name} did not train"
        else:
            assert torch.equal(after[name], before), f"frozen {name} changed"
    first = trainer.state.log_history[0]
    assert all(name in first for name in METRICS)
    # Step 0: the policy is the reference (LoRA's B is zero; the copy is the start), so every reward is 0.
    assert first["rewards/chosen"] == pytest.approx(0, abs=1e-6)
    assert first["rewards/margins"] == pytest.approx(0, abs=1e-6)
    assert trainer.state.log_history[1]["rewards/margins"] != 0  # and after one step it has moved


def test_reference_free_loss_keeps_no_reference(tmp_path):
    argv = dpo_argv(tmp_path, "--llm_mode", "full", "--loss_type", "simpo", "sft", "--loss_weights", "1", "0.5")
    trainer = dpo(*parse_dpo_args(argv))
    assert trainer.reference is None  # no frozen copy for SimPO (+ SFT): nothing compares with a reference
    assert trainer.state.log_history[0]["rewards/chosen"] < 0  # beta * mean log-prob


def test_cli_trains_on_pairs_and_chat_answers_from_the_output(tmp_path, capsys):
    argv = dpo_argv(tmp_path, "--beta", "0.2", "--eval_data_path", str(tmp_path / "pairs.jsonl"))
    assert cli.main(["dpo", *argv]) == 0
    out = tmp_path / "out"
    assert (out / "loss_curve.png").is_file() and (out / "adapter_model.safetensors").is_file()
    evaluated = json.loads((out / "eval_results.json").read_text())
    assert {"eval_loss", "eval_rewards/accuracies", "eval_rewards/margins"} <= set(evaluated)
    saved = (out / "vlmtune_args.yaml").read_text()
    assert "DPOArguments" in saved and "beta: 0.2" in saved
    capsys.readouterr()
    image = str(tmp_path / "d1.png")
    assert cli.main(["chat", str(out), "--image", image, "--prompt", "Which digit?", "--max_new_tokens", "3"]) == 0
    assert capsys.readouterr().out.strip() != ""


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        (("--loss_type", "sigmoidd"), "--loss_type 'sigmoidd' is not one of"),
        (("--loss_type", "sigmoid", "sft", "--loss_weights", "1"), "--loss_weights has 1 value(s) for 2"),
        (("--label_smoothing", "0.5"), "--label_smoothing must be in [0, 0.5)"),
        (("--packing", "true"), "--packing is not supported by vlmtune dpo yet"),
        (("--loss_type", "exo_pair"), "--loss_type exo_pair needs --label_smoothing above 0"),
        (("--loss_type", "discopop", "--discopop_tau", "0"), "--discopop_tau must be positive"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, flag, message):
    assert cli.main(["dpo", *dpo_argv(tmp_path, *flag)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


# --- data -------------------------------------------------------------------------------------------------

LAYOUTS = {
    "trl-conversational": {
        "prompt": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which digit?"}]}],
        "chosen": [{"role": "assistant", "content": [{"type": "text", "text": "Seven."}]}],
        "rejected": [{"role": "assistant", "content": "Three."}],
        "images": ["seven.png"],
    },
    "trl-plain": {"prompt": "Which digit?", "chosen": "Seven.", "rejected": "Three.", "images": ["seven.png"]},
    "sharegpt": {
        "conversations": [{"from": "human", "value": "<image>\nWhich digit?"}],
        "chosen": {"from": "gpt", "value": "Seven."},
        "rejected": {"from": "gpt", "value": "Three."},
        "images": ["seven.png"],
    },
    "openai": {
        "messages": [{"role": "user", "content": "<image>\nWhich digit?"}],
        "chosen": {"role": "assistant", "content": "Seven."},
        "rejected": "Three.",
        "images": ["seven.png"],
    },
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_each_layout_reads_to_the_same_pair(layout, tmp_path):
    pair = record_to_pair(LAYOUTS[layout], "line 1", read_options(tmp_path / "pairs.jsonl"))
    assert [turn.role for turn in pair.prompt.turns] == ["user"]
    assert pair.prompt.turns[0].text.replace("\n", "") == "<image>Which digit?"
    assert pair.prompt.images == [str(tmp_path / "seven.png")]
    assert (pair.chosen, pair.rejected) == ("Seven.", "Three.")
    assert [turn.role for turn in pair.with_reply(pair.chosen).turns] == ["user", "assistant"]


def test_multi_turn_prompt_and_system_prompt(tmp_path):
    record = {
        "system": "Answer briefly.",
        "conversations": [
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello."},
            {"from": "human", "value": "Which digit is seven?"},
        ],
        "chosen": "7",
        "rejected": "3",
    }
    pair = record_to_pair(record, "line 1", read_options(tmp_path / "pairs.jsonl"))
    assert pair.prompt.system_prompt == "Answer briefly."
    assert [turn.role for turn in pair.prompt.turns] == ["user", "assistant", "user"]


BAD = {
    "same": ({"prompt": "Which digit?", "chosen": "7", "rejected": " 7 "}, "are the same reply"),
    "empty": ({"prompt": "Which digit?", "chosen": "", "rejected": "3"}, "field 'chosen': the reply is empty"),
    "ends-with-assistant": (
        {
            "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "7"}],
            "chosen": "7",
            "rejected": "3",
        },
        "the prompt ends with an assistant turn",
    ),  # fmt: skip
    "no-rejected": ({"prompt": "Which digit?", "chosen": "7"}, "no field 'rejected'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_pairs_are_named_in_one_line(case, tmp_path):
    record, message = BAD[case]
    with pytest.raises(DataError, match=message):
        record_to_pair(record, "line 1", read_options(tmp_path / "pairs.jsonl"))


def test_validate_task_dpo_reports_each_bad_pair_in_one_line(tmp_path, capsys):
    good = json.loads(open(pairs_file(tmp_path, rows=1)).readline())
    lines = [good] + [record for record, _ in BAD.values()]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    assert cli.main(["validate", "--data_path", str(path), "--task", "dpo", "--model_id", "tiny-qwen2-vl"]) == 1
    out = capsys.readouterr().out.splitlines()
    errors = [line for line in out if line.startswith("error: ")]
    assert len(errors) == len(BAD)
    for (_, message), line in zip(BAD.values(), errors, strict=True):
        assert message in line
    assert out[-1].endswith("5 sample(s) checked: 1 ok, 4 with errors, 0 warning(s)")


def test_preview_task_dpo_shows_both_trained_replies(tmp_path, capsys):
    argv = ["preview", "--model_id", "tiny-qwen2-vl", "--data_path", pairs_file(tmp_path, rows=1), "--task", "dpo"]
    assert cli.main([*argv, "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["source"] for row in rows] == ["pairs.jsonl line 1 (chosen)", "pairs.jsonl line 1 (rejected)"]
    assert [row["trained_spans"] for row in rows] == [["0<|im_end|>"], ["3<|im_end|>"]]


def test_precomputed_reference_is_cached_beside_the_data_and_read_back(tmp_path):
    """The second run with the same data, checkpoint and arguments reads the reference log-probs from
    `<data>.ref_logps/` (proved by planting other values there), without a reference pass."""
    argv = dpo_argv(tmp_path, "--precompute_ref_log_probs", "true", "--max_steps", "1")
    first = dpo(*parse_dpo_args(argv))
    args = parse_dpo_args(argv)
    cache = reference_cache_file(args[1].data_path, get_model("tiny-qwen2-vl"), args)
    assert cache.parent == tmp_path / "pairs.jsonl.ref_logps"
    assert torch.equal(torch.load(cache), first.train_dataset.ref_logps)
    torch.save(first.train_dataset.ref_logps - 1.0, cache)
    second = dpo(*parse_dpo_args(argv))
    assert torch.equal(second.train_dataset.ref_logps, first.train_dataset.ref_logps - 1.0)


def test_reference_cache_key_changes_with_data_model_and_settings(tmp_path):
    argv = dpo_argv(tmp_path, "--precompute_ref_log_probs", "true")
    entry = get_model("tiny-qwen2-vl")

    def key(*extra):
        args = parse_dpo_args([*argv, *extra])
        return reference_cache_file(args[1].data_path, entry, args)

    base = key()
    assert key() == base  # the same data, checkpoint and settings: the same file
    assert key("--loss_type", "ipo", "--beta", "0.5") == base  # the loss does not change the reference
    assert key("--model_max_length", "4096") != base
    assert key("--model_id", "tiny-llava-1.5") != base
    data = tmp_path / "pairs.jsonl"
    data.write_text(data.read_text().replace('"chosen": "0"', '"chosen": "zero"'))
    assert key() != base  # the data's bytes changed


def test_reference_cache_falls_back_where_the_data_folder_cannot_be_written(tmp_path, monkeypatch, caplog):
    argv = dpo_argv(tmp_path, "--precompute_ref_log_probs", "true")
    (tmp_path / "pairs.jsonl.ref_logps").write_text("a file where the cache folder would go")
    monkeypatch.setenv("VLMTUNE_CACHE", str(tmp_path / "cache"))
    args = parse_dpo_args(argv)
    with caplog.at_level("WARNING", logger="vlmtune"):
        cache = reference_cache_file(args[1].data_path, get_model("tiny-qwen2-vl"), args)
    assert cache.parent == tmp_path / "cache" / "ref_logps"
    [message] = [record.getMessage() for record in caplog.records]
    assert "cannot write beside the data" in message and "\n" not in message


def test_bad_pairs_stop_the_run_unless_skipped(tmp_path, capsys):
    good = json.loads(open(pairs_file(tmp_path, rows=1)).readline())
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [good] + [record for record, _ in BAD.values()]) + "\n")
    argv = [*dpo_argv(tmp_path), "--data_path", str(path), "--per_device_train_batch_size", "1", "--max_steps", "1"]
    assert cli.main(["dpo", *argv]) == 1
    err = capsys.readouterr().err
    assert "4 problem(s)" in err and "vlmtune validate --task dpo" in err and "Traceback" not in err
    trainer = dpo(*parse_dpo_args([*argv, "--skip_bad_samples", "true"]))
    assert len(trainer.train_dataset) == 1


@pytest.mark.parametrize(
    ("config", "settings", "expected"),
    [
        ("Qwen2Config", {"use_sliding_window": False, "sliding_window": 4096}, True),
        ("MistralConfig", {"sliding_window": 4096}, False),
        ("MistralConfig", {"sliding_window": None}, True),
        ("Gemma3TextConfig", {}, False),  # sliding-window layers between the global ones
        ("Llama4TextConfig", {}, False),  # chunked attention
    ],
)
def test_one_row_per_pair_only_where_every_layer_sees_all_earlier_tokens(config, settings, expected):
    """A pair's one row carries its own 4-D mask, which would drop a model's sliding windows or chunks."""
    import transformers

    model = SimpleNamespace(config=getattr(transformers, config)(**settings))
    assert full_causal_attention(model) == expected


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_prompt_once_trains_the_same_parameters_as_two_rows(tmp_path, mode):
    """--prompt_once (one row per pair here) changes how the work is laid out, not the gradients: 3 SGD steps
    end at the same parameters as the default layout (float-order differences only)."""
    runs = []
    for prompt_once in ("false", "true"):
        argv = dpo_argv(tmp_path, "--llm_mode", mode, "--max_steps", "3", "--optim", "sgd", "--learning_rate", "0.5")
        argv += ["--lora_dropout", "0", "--train_projector", "true", "--prompt_once", prompt_once, "--seed", "1"]
        argv += ["--output_dir", str(tmp_path / f"out-{prompt_once}")]
        trainer = dpo(*parse_dpo_args(argv))
        assert type(trainer.data_collator).__name__ == (
            "SharedPromptCollator" if prompt_once == "true" else "PairCollator"
        )
        runs.append({n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad})
        runs[-1]["_losses"] = torch.tensor([e["loss"] for e in trainer.state.log_history if "loss" in e])
    losses = [run.pop("_losses") for run in runs]
    assert len(set(losses[0].tolist())) == 3  # the parameters moved between the steps
    torch.testing.assert_close(losses[1], losses[0], atol=1e-5, rtol=1e-5)
    assert runs[0].keys() == runs[1].keys()
    for name, value in runs[0].items():  # 1e-5: float sums in another order, grown over 3 steps of lr 0.5
        torch.testing.assert_close(runs[1][name], value, atol=1e-5, rtol=1e-4, msg=name)
