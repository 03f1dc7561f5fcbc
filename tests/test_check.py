"""`vlmtune check`: facts derived from a checkpoint's own files, the checks of a family record against them, and
`train` / `validate` refusing a checkpoint whose chat template was altered before any weight is read."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest

from tests.conftest import digit_png
from tests.template_revisions import REVISIONS
from tests.test_masking import encode, shapes
from vlmtune.apps.cli import main as cli_main
from vlmtune.collators.base import VLMCollator
from vlmtune.core.checkpoint import check_checkpoint, checked_entry, open_files
from vlmtune.core.modeling import checkpoint_path
from vlmtune.loaders import convention, qwen2_vl
from vlmtune.supported_models import FAMILIES, ModelEntry, conventional_family, get_model

FAMILY_IDS = sorted(FAMILIES)
# Hand-written records: their values are checked against the files (a conventional one's are derived from them).
HAND_WRITTEN = sorted(family_id for family_id, family in FAMILIES.items() if not family.derived)
# Families whose record's end-of-turn the convention does not reproduce, and why (their record is checked instead:
# its reply_end must close every probe reply).
END_OF_TURN_DIFFERS = {
    # The tiny checkpoint's generation config stops on the tokenizer's eos <|end_of_text|> only; the template writes
    # "<end_of_utterance>" after every reply (the record trains it): which one ends a reply is ambiguous.
    "idefics3": "refused: the template closes a reply with '<end_of_utterance>', which is no stop token",
    # The same for Idefics2 (its tiny generation config stops on "</s>" only).
    "idefics2": "refused: the template closes a reply with '<end_of_utterance>', which is no stop token",
    # No end-of-turn of its own: the next "<|user|>" (a stop token) closes a reply, which the last reply lacks;
    # Glm4vCollator appends it. The single and two-turn probes disagree: refused as ambiguous.
    "glm4v": "refused: the template closes replies differently",
}
# Families whose parts the convention does not find, and why (their record's prefixes are checked instead).
PARTS_DIFFER = {
    # The projector is the visual tokenizer's head inside the vision tower plus a visual embedding table.
    "ovis2": "no projector named by the convention",
}


def tiny_path(family_id: str) -> str:
    return checkpoint_path(get_model(f"tiny-{family_id}"))


@pytest.mark.parametrize("family_id", FAMILY_IDS)
def test_every_tiny_checkpoint_passes_its_checks(family_id):
    family = FAMILIES[family_id]
    report = check_checkpoint(tiny_path(family_id), family)
    assert [f"{c.name}: {c.detail}" for c in report.failures] == []
    names = {check.name for check in report.checks}
    assert {"files", "parts", "replies", "end-of-turn", "system prompt", "several turns"} <= names
    # A hand-written record derives nothing; a conventional one gets exactly its derived fields filled in.
    assert replace(report.family, **{name: getattr(family, name) for name in family.derived}) == family
    assert report.family.modules is not None


@pytest.mark.parametrize("family_id", HAND_WRITTEN)
def test_derivation_reproduces_the_records(family_id):
    """The convention gives the record's end-of-turn and parts, except for the families listed with the reason
    (a conventional record has nothing to reproduce: tests/test_masking.py checks what its derived fields train)."""
    family = FAMILIES[family_id]
    path = tiny_path(family_id)
    config, processor, generation_config = open_files(path)
    plain = family.collator(processor, "")
    stops = convention.stop_tokens(processor.tokenizer, generation_config)
    try:
        end = convention.end_of_turn(plain, stops)
    except convention.ConventionError as error:
        end = f"refused: {error}"
    if family_id in END_OF_TURN_DIFFERS:
        assert END_OF_TURN_DIFFERS[family_id] in end
    else:
        assert end == family.reply_end
    model = convention.meta_model(config)
    try:
        parts = convention.parts(model)
    except convention.ConventionError:
        parts = None
    same = parts is not None and all(
        convention.part_of(name, parts) == convention.part_of(name, family.modules)
        for name, _ in model.named_parameters()
    )
    assert same == (family_id not in PARTS_DIFFER)
    assert next(model.parameters()).device.type == "meta"  # built without weights


def test_capabilities_follow_the_template():
    """PaliGemma's template refuses a system prompt and a second exchange; Qwen2-VL's takes every shape."""
    found = convention.capabilities(VLMCollator(check_processor("paligemma"), ""))
    assert not found["system_prompt"].value and "refuses" in found["system_prompt"].why
    assert not found["multi_turn"].value and not found["video"].value
    found = convention.capabilities(VLMCollator(check_processor("qwen2-vl"), ""))
    assert all(capability.value for capability in found.values())


def check_processor(family_id: str):
    from transformers import AutoProcessor

    return AutoProcessor.from_pretrained(tiny_path(family_id))


def test_check_command_prints_what_was_derived(capsys):
    assert cli_main(["check", "tiny-qwen2-vl"]) == 0
    out = capsys.readouterr().out
    assert "end-of-turn (derived)  '<|im_end|>'" in out
    assert "parts (derived)" in out and "model.visual.merger" in out
    assert "media tokens" in out and "'<|image_pad|>'" in out
    assert "FAIL" not in out and "9 of 9 checks passed" in out


@pytest.mark.parametrize("family_id, failed", [("ovis2", "parts"), ("glm4v", "end-of-turn")])
def test_a_folder_without_record_is_refused_where_the_convention_is_ambiguous(family_id, failed, capsys):
    """Without a family record nothing is guessed: Ovis2's projector and GLM-4.1V's end-of-turn cannot be derived."""
    assert cli_main(["check", tiny_path(family_id)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL  {failed}:" in out


def test_a_conventional_family_is_one_record_with_its_facts_derived(images, video):
    """Qwen2-VL by convention: the same end-of-turn, parts, capabilities and trained tokens as its hand-written
    record, with the generic loader and the shared collator."""
    family = conventional_family("qwen2-vl-by-convention", build_tiny=qwen2_vl.build_tiny, packing=True)
    written = FAMILIES["qwen2-vl"]
    report = check_checkpoint(tiny_path("qwen2-vl"), family)
    assert report.failures == []
    derived = report.family
    assert derived.reply_end == written.reply_end == "<|im_end|>"
    assert (derived.multi_image, derived.video, derived.system_prompt, derived.multi_turn) == (True, True, True, True)
    assert set(derived.modules.llm) == set(written.modules.llm)
    assert set(derived.modules.vision_projector) == set(written.modules.vision_projector)
    processor = check_processor("qwen2-vl")
    ours, theirs = derived.collator(processor, derived.reply_end), written.collator(processor, written.reply_end)
    for shape, sample in shapes(images, video).items():
        labels = encode(ours, sample)["labels"]
        assert labels.tolist() == encode(theirs, sample)["labels"].tolist(), shape
        assert (labels != -100).sum() > 0


def test_checked_entry_fills_in_a_conventional_record(monkeypatch):
    family = conventional_family("qwen2-vl-by-convention", build_tiny=qwen2_vl.build_tiny)
    monkeypatch.setitem(FAMILIES, family.family_id, family)
    entry = ModelEntry("my-qwen2-vl", family.family_id, "unused: --model_local_path")
    assert entry.family.modules is None  # not derived before the checkpoint's files are read
    checked = checked_entry(entry, tiny_path("qwen2-vl"))
    assert checked.family.reply_end == "<|im_end|>" and checked.family.modules is not None


def output_copy(folder, family_id: str, adapter: bool = False, alteration: str | None = None) -> str:
    """A vlmtune output folder made from `family_id`'s tiny checkpoint: a full model, or a LoRA adapter output
    (its processor files and adapter_config.json, no model config), its template altered as ALTERATIONS says."""
    source = tiny_path(family_id)
    shutil.copytree(
        source, folder, ignore=shutil.ignore_patterns("config.json", "model.safetensors") if adapter else None
    )
    if adapter:
        (folder / "adapter_config.json").write_text(json.dumps({"r": 4, "base_model_name_or_path": source}))
    (folder / "vlmtune_args.yaml").write_text(f"ModelArguments:\n  model_id: tiny-{family_id}\n")
    if alteration:
        template = folder / "chat_template.jinja"
        template.write_text(ALTERATIONS[alteration][0](template.read_text()))
    return str(folder)


def test_serving_reads_a_conventional_family_from_the_files_it_loads(tmp_path):
    """chat, serve, the web UI (`vlmtune.core.outputs.source_entry`): a conventional family's fields come from the
    files the model is loaded with, a registered checkpoint's or an output folder's own processor (a full model; an
    adapter's, on its base's config); an output whose template fails a check is refused before loading."""
    from vlmtune.core.checkpoint import CheckpointCheckError
    from vlmtune.core.outputs import source_entry

    registered = source_entry("tiny-qwen4-exp")
    assert registered.family.reply_end == "<|im_end|>" and registered.family.system_prompt
    assert registered.family.modules.vision_projector == ("model.visual.merger",)
    for adapter in (False, True):
        folder = output_copy(tmp_path / f"adapter-{adapter}", "qwen4-exp", adapter, alteration="refuse_system")
        entry = source_entry(folder)
        assert entry.family.system_prompt is False and entry.family.reply_end == "<|im_end|>", adapter
    broken = output_copy(tmp_path / "broken", "qwen4-exp")
    template = tmp_path / "broken" / "chat_template.jinja"
    template.write_text(template.read_text().replace("<|im_end|>", ""))
    with pytest.raises(CheckpointCheckError, match="check 'end-of-turn' failed"):
        source_entry(broken)


def test_a_registered_capability_of_a_conventional_family_is_kept_not_derived():
    """`register_model(..., system_prompt=False)` on a conventional family: that checkpoint's fact wins over what
    the template would allow, and the rest is still derived."""
    entry = ModelEntry("my-qwen4", "qwen4-exp", tiny_path("qwen4-exp"), (("system_prompt", False),))
    assert "system_prompt" not in entry.family.derived and "reply_end" in entry.family.derived
    checked = checked_entry(entry, tiny_path("qwen4-exp"))
    assert checked.family.system_prompt is False and checked.family.multi_turn is True
    assert checked.family.reply_end == "<|im_end|>"


def test_a_conventional_family_chats_and_load_model_wants_it_checked(capsys):
    from vlmtune.arguments import ModelArguments
    from vlmtune.core.modeling import load_model

    assert cli_main(["chat", "tiny-qwen4-exp", "--prompt", "Hi?", "--max_new_tokens", "2"]) == 0
    assert capsys.readouterr().out.strip()
    with pytest.raises(ValueError, match="must pass checked_entry before loading"):
        load_model(get_model("tiny-qwen4-exp"), ModelArguments(model_id="tiny-qwen4-exp"))


# --- altered templates ----------------------------------------------------------------------------------------

ALTERATIONS = {
    # (a) the end-of-turn token dropped after every turn's content
    "drop_end_of_turn": (
        lambda t: t.replace("{% endif %}{% endfor %}<|im_end|>", "{% endif %}{% endfor %}"),
        "end-of-turn",
        "does not close a reply with '<|im_end|>'",
    ),
    # (b) assistant replies rewritten (upper-cased)
    "rewrite_reply": (
        lambda t: t.replace(
            "{{ content['text'] }}",
            "{{ content['text'] | upper if message['role'] == 'assistant' else content['text'] }}",
        ),
        "replies",
        "does not write the text of assistant message",
    ),
    # (c) system prompts refused
    "refuse_system": (
        lambda t: (
            "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('No system role.') }}"
            "{% endif %}{% endfor %}" + t
        ),
        "system prompt",
        "No system role.",
    ),
}


def altered_copy(tmp_path, alteration: str | None) -> str:
    """A copy of the tiny Qwen2-VL checkpoint without its weights, its chat template altered."""
    folder = tmp_path / f"altered-{alteration}"
    shutil.copytree(tiny_path("qwen2-vl"), folder)
    (folder / "model.safetensors").unlink()  # a load would fail with a missing-file error, not a check
    template = folder / "chat_template.jinja"
    if alteration:
        original = template.read_text()
        template.write_text(ALTERATIONS[alteration][0](original))
        assert template.read_text() != original
    return str(folder)


def test_an_unaltered_copy_without_weights_passes(tmp_path):
    """The checks read no weights: the copy without model.safetensors passes them all."""
    assert cli_main(["check", altered_copy(tmp_path, None), "--model_id", "tiny-qwen2-vl"]) == 0


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_check_names_the_failed_check(alteration, tmp_path, capsys):
    _, failed, reason = ALTERATIONS[alteration]
    folder = altered_copy(tmp_path, alteration)
    assert cli_main(["check", folder, "--model_id", "tiny-qwen2-vl"]) == 1
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith(f"FAIL  {failed}:")]
    assert len(lines) == 1 and reason in lines[0]


@pytest.mark.parametrize("command", ["train", "grpo"])
@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_train_refuses_before_loading_weights(alteration, command, tmp_path, capsys):
    _, failed, reason = ALTERATIONS[alteration]
    folder = altered_copy(tmp_path, alteration)
    data = tmp_path / "train.json"
    turns = [{"from": "human", "value": "<image>\nWhich digit?"}, {"from": "gpt", "value": "7"}]
    data.write_text(json.dumps([{"image": digit_png(tmp_path, "7.png", 7), "conversations": turns}]))
    argv = ["--model_id", "tiny-qwen2-vl", "--model_local_path", folder, "--data_path", str(data)]
    code = cli_main([command, *argv, "--output_dir", str(tmp_path / "out"), "--max_steps", "1", "--use_cpu"])
    err = capsys.readouterr().err
    assert code == 1
    assert f"check '{failed}' failed" in err and reason in err
    assert "safetensors" not in err and "Traceback" not in err  # refused before any weight was looked for
    assert not (tmp_path / "out").exists()
    assert cli_main(["validate", *argv]) == 1
    assert f"check '{failed}' failed" in capsys.readouterr().err


@pytest.mark.parametrize("revision", REVISIONS, ids=lambda r: f"{r.family_id}@{r.name}")
def test_every_published_template_revision_passes_or_is_refused(revision, tmp_path):
    """Each revision in tests/template_revisions.py, in a copy of its family's tiny checkpoint: the record's checks
    pass, and a revision the masking core refuses fails the end-of-turn check with the same reason."""
    folder = tmp_path / "revision"
    shutil.copytree(tiny_path(revision.family_id), folder)
    (folder / "chat_template.jinja").write_text(revision.template)
    family = FAMILIES[revision.family_id]
    if revision.system_prompt_with_images is not None:
        family = replace(family, system_prompt_with_images=revision.system_prompt_with_images)
    report = check_checkpoint(str(folder), family)
    failures = [f"{c.name}: {c.detail}" for c in report.failures]
    if revision.refused:
        assert len(failures) == 1 and failures[0].startswith("end-of-turn:") and revision.refused in failures[0]
    else:
        assert failures == []


@pytest.mark.parametrize("alteration", sorted(ALTERATIONS))
def test_a_conventional_record_derives_from_the_altered_template_or_refuses(alteration, tmp_path):
    """By convention nothing is guessed: without its end-of-turn token the template leaves a reply followed by
    "<|im_start|>" (a special token that is no stop token), which is refused; a rewritten reply is refused; a
    template that refuses system prompts gives a record without them."""
    family = conventional_family("qwen2-vl-by-convention", build_tiny=qwen2_vl.build_tiny)
    report = check_checkpoint(altered_copy(tmp_path, alteration), family)
    failed = [check.name for check in report.failures]
    if alteration == "refuse_system":
        assert failed == [] and report.family.system_prompt is False and report.family.reply_end == "<|im_end|>"
    else:
        assert ALTERATIONS[alteration][1] in failed  # a rewritten reply also leaves no end-of-turn to derive
        assert report.family is family  # nothing filled in from a checkpoint that failed
