"""Every published template revision (tests/template_revisions.py) trains exactly the replies + end-of-turn, and a
template the core cannot read ends in one line naming the model, never a traceback."""

from __future__ import annotations

import copy
import json
import re
import shutil

import pytest
import torch

from tests.conftest import resolved_family
from tests.template_revisions import ONEVISION_SPACE, REVISIONS, Revision
from tests.test_masking import REPLY_FORMAT, conversation, encode, shapes
from vlmtune.apps.cli import main as cli_main
from vlmtune.collators.base import IGNORE_INDEX, TemplateError
from vlmtune.core.modeling import checkpoint_path
from vlmtune.datasets import Sample
from vlmtune.errors import BadSample
from vlmtune.supported_models import FAMILIES, MODELS, get_model, register_model

SHAPES = ["single_turn", "multi_turn", "system_prompt", "multi_image", "two_images_one_turn", "text_only", "video"]


def collator_with(revision: Revision, load_tiny):
    """The family's collator over a copy of its tiny processor with the revision's template swapped in."""
    _, processor = load_tiny(f"tiny-{revision.family_id}")
    processor = copy.copy(processor)  # the session's processor keeps its own template
    processor.chat_template = revision.template
    family = resolved_family(revision.family_id)
    return family.collator(processor, family.reply_end, model_max_length=1024)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("revision", REVISIONS, ids=lambda r: f"{r.family_id}@{r.name}")
def test_each_revision_trains_exactly_the_replies(revision, shape, load_tiny, images, video):
    family = resolved_family(revision.family_id)
    if shape == "video" and not family.video:
        pytest.skip(f"{family.family_id} takes no video")
    collator = collator_with(revision, load_tiny)
    sample = shapes(images, video)[shape]
    sample.source = shape
    if revision.refused:
        with pytest.raises(TemplateError, match=f"{shape}: the chat template of .* {re.escape(revision.refused)}"):
            encode(collator, sample)
        return
    with_images = family.system_prompt_with_images
    if revision.system_prompt_with_images is not None:
        with_images = revision.system_prompt_with_images
    if shape == "system_prompt" and not with_images:
        with pytest.raises(BadSample, match="system_prompt: the chat template of .* refuses this sample"):
            encode(collator, sample)
        return

    features = encode(collator, sample)
    input_ids, labels = features["input_ids"], features["labels"]
    reply_format = revision.reply_format or REPLY_FORMAT[revision.family_id]
    expected = []
    for turn in sample.turns:
        if turn.role == "assistant":
            text = reply_format.format(reply=turn.text)
            expected += collator.tokenizer.encode(text, add_special_tokens=False)
    assert input_ids[labels != IGNORE_INDEX].tolist() == expected
    is_media = torch.isin(input_ids, torch.tensor(sorted(collator.media_token_ids)))
    assert not (labels[is_media] != IGNORE_INDEX).any(), "an image/video token is trained"


def test_onevision_space_revision_renders_its_layout_and_trains_the_replies(load_tiny, images):
    """The revision whose generation prompt is not a prefix of a rendered assistant turn."""
    revision = next(r for r in REVISIONS if r.template == ONEVISION_SPACE)
    collator = collator_with(revision, load_tiny)
    sample = Sample(conversation("<image>\nWhich digit?", "7", "Sure?", "Yes."), images=[images[0]], source="s")
    messages = collator.to_messages(sample)
    assert collator.render(messages) == (
        "<|im_start|>user <image>\nWhich digit?<|im_end|><|im_start|>assistant \n7<|im_end|>"
        "<|im_start|>user \nSure?<|im_end|><|im_start|>assistant \nYes.<|im_end|>"
    )
    assert collator.render(messages[:1], add_generation_prompt=True).endswith("<|im_start|>assistant\n")
    features = encode(collator, sample)
    trained = collator.tokenizer.decode(features["input_ids"][features["labels"] != IGNORE_INDEX])
    assert trained == "7<|im_end|>Yes.<|im_end|>"


def test_generation_blocks_that_disagree_with_the_replies_are_a_template_error(load_tiny):
    # A template whose generation block marks the user's text instead of the reply.
    wrong = ONEVISION_SPACE.replace("{% if message['role'] == 'assistant' %}", "{% if message['role'] == 'user' %}")
    collator = collator_with(Revision("llava-onevision", "wrong", "", wrong), load_tiny)
    sample = Sample(conversation("Hi?", "Hello."), source="s 1")
    with pytest.raises(TemplateError, match=r"s 1: the \{% generation %\} blocks of .* disagree with the replies"):
        encode(collator, sample)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        # Writes no assistant text at all: nothing to train can be found.
        (
            "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}{% if m['role'] != 'assistant' %}"
            "{% for p in m['content'] if p['type'] == 'text' %}{{ p['text'] }}{% endfor %}{% endif %}"
            "{{ '<|im_end|>\\n' }}{% endfor %}",
            "does not write the text of assistant message 1",
        ),
        # Fails on the content parts it is given.
        ("{% for m in messages %}{{ m['content'] + '!' }}{% endfor %}", "cannot render this conversation"),
        # Closes replies with something else than the family's end-of-turn.
        (
            "{% for m in messages %}{{ m['role'] + ': ' }}{% for p in m['content'] if p['type'] == 'text' %}"
            "{{ p['text'] }}{% endfor %}{{ '\\n' }}{% endfor %}",
            "does not close a reply with '<|im_end|>'",
        ),
    ],
)
def test_preview_with_a_broken_template_answers_in_one_line(template, message, tmp_path, capsys):
    """`vlmtune preview` on a checkpoint whose chat template the core cannot read: one line naming the model."""
    folder = tmp_path / "broken-qwen2-vl"
    shutil.copytree(checkpoint_path(get_model("tiny-qwen2-vl")), folder)
    (folder / "chat_template.jinja").write_text(template)
    data = tmp_path / "train.json"
    turns = [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Yo."}]
    data.write_text(json.dumps([{"conversations": turns}]))
    capsys.readouterr()  # what building the tiny checkpoint printed
    status = cli_main(
        ["preview", "--model_id", "tiny-qwen2-vl", "--model_local_path", str(folder), "--data_path", str(data)]
    )
    out = capsys.readouterr()
    lines = [line for line in (out.out + out.err).splitlines() if line.strip()]
    assert status == 1
    assert len(lines) == 1, lines
    assert "train.json sample 0: the chat template of" in lines[0] and str(folder) in lines[0]
    assert message in lines[0]


def test_capability_flags_follow_each_checkpoints_template():
    """Llama-3.2-11B-Vision-Instruct's current template accepts a system prompt next to an image; the family's
    original one (the tiny model's, and the 90B's as far as a published copy shows) refuses it."""
    assert MODELS["llama-3.2-11b-vision-instruct"].family.system_prompt_with_images is True
    assert MODELS["llama-3.2-90b-vision-instruct"].family.system_prompt_with_images is False
    assert MODELS["tiny-llama-3.2-vision"].family.system_prompt_with_images is False
    assert FAMILIES["llama-3.2-vision"].system_prompt_with_images is False


def test_an_unknown_capability_override_is_refused():
    with pytest.raises(ValueError, match=r"unknown capabilities \['system_prompt_with_pictures'\]"):
        register_model("x", "llama-3.2-vision", "x", system_prompt_with_pictures=True)
    assert "x" not in MODELS
