"""Where the assistant replies are in a rendered conversation, for any chat template revision, without family code.

Templates differ in ways that break the obvious method ("the conversation rendered up to a reply, with the
generation prompt, is a prefix of the whole"): llava-onevision's hub revision opens a rendered assistant turn
with "<|im_start|>assistant \\n" but prompts with "<|im_start|>assistant\\n"; Qwen3.5 writes an empty think block
only before the last reply; Llama 3.2 Vision writes a system block only into conversations without images. So:

1. The conversation is rendered once more with each reply replaced by a unique sentinel. Where the sentinels
   land is where the replies start; putting the replies back must give the real rendering exactly (a template
   that rewrites a reply, or whose rendering depends on a reply's text, is refused, never guessed).
2. A reply's trained span runs from its start to its end plus the family's end-of-turn text. Where the generation
   prompt is a prefix of the rendering up to the reply (the usual case), the span starts right after the prompt
   instead: whatever the model must write after the prompt, e.g. the space of "ASSISTANT: 7", is trained too.
3. Templates that mark replies with `{% generation %}` blocks are cross-checked: each block must hold its reply
   and no other; a disagreement is a `TemplateError`.
"""

from __future__ import annotations

import re
from typing import Any

from vlmtune.datasets import ASSISTANT
from vlmtune.errors import BadSample, DataError

GENERATION_TAG = re.compile(r"{%-?\s*generation\s*-?%}")
# Private-use characters: no data or template writes them, and they survive trim/strip filters.
SENTINEL = "\ue000vlmtune reply {}\ue001"


class TemplateError(DataError):
    """A chat template that the masking core cannot read replies from; names the model and what to do."""


def with_sentinels(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """A copy of `messages` whose assistant texts are sentinels, and each assistant message's index -> its text."""
    replies, copied = {}, []
    for index, message in enumerate(messages):
        if message["role"] == ASSISTANT:
            replies[index] = message["content"][0]["text"]
            message = {**message, "content": [{"type": "text", "text": SENTINEL.format(index)}]}
        copied.append(message)
    return copied, replies


def reply_starts(
    rendered_with_sentinels: str, replies: dict[int, str], text: str, model: str, source: str
) -> dict[int, int]:
    """Where each reply starts in `text`, from where its sentinel stands in `rendered_with_sentinels`.

    A template that loses or repeats a reply cannot be trained with (`TemplateError`, for the whole model); one
    that rewrites this sample's reply text (e.g. drops a think block) refuses the sample (`BadSample`).
    """
    starts, pieces, done, shift = {}, [], 0, 0
    for index, reply in replies.items():
        sentinel = SENTINEL.format(index)
        at = rendered_with_sentinels.find(sentinel, done)
        if at < 0 or rendered_with_sentinels.count(sentinel) != 1:
            written = "does not write" if at < 0 else "writes more than once"
            raise TemplateError(
                f"{source}: the chat template of {model} {written} the text of assistant message {index}, so the "
                "replies to train on cannot be found; use a chat template that writes each reply once "
                "(--model_local_path with a fixed chat_template.json)"
            )
        pieces += [rendered_with_sentinels[done:at], reply]
        starts[index] = at + shift
        shift += len(reply) - len(sentinel)
        done = at + len(sentinel)
    pieces.append(rendered_with_sentinels[done:])
    if "".join(pieces) != text:
        raise BadSample(
            f"{source}: the chat template of {model} rewrites a reply of this sample (e.g. drops a <think> block) or "
            "renders the conversation differently because of a reply's text, so the trained text cannot be located "
            "exactly; remove such markup from the replies"
        )
    return starts


def generation_spans(tokenizer: Any, template: str, messages: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """Character spans of the template's `{% generation %}` blocks (via the tokenizer's assistant-token mask)."""
    out = tokenizer.apply_chat_template(
        messages,
        chat_template=template,
        tokenize=True,
        return_dict=True,
        return_assistant_tokens_mask=True,
        tokenizer_kwargs={"return_offsets_mapping": True},
    )
    spans: list[tuple[int, int]] = []
    previous = False
    for flag, (start, end) in zip(out["assistant_masks"], out["offset_mapping"], strict=True):
        if flag and previous and spans:
            spans[-1] = (spans[-1][0], end)
        elif flag:
            spans.append((start, end))
        previous = bool(flag)
    return spans


def check_generation_spans(
    generation: list[tuple[int, int]], replies: list[tuple[int, int]], model: str, source: str
) -> None:
    """Each `{% generation %}` block holds exactly its own reply ([start, end) of the reply text) and no other."""
    agree = len(generation) == len(replies)
    agree = agree and all(g[0] <= r[0] and r[1] <= g[1] for g, r in zip(generation, replies, strict=True))
    agree = agree and all(generation[k][1] <= replies[k + 1][0] for k in range(len(replies) - 1))
    if not agree:
        raise TemplateError(
            f"{source}: the {{% generation %}} blocks of {model}'s chat template ({len(generation)} block(s) at "
            f"{generation}) disagree with the replies vlmtune trains ({replies}); the template marks the wrong "
            "text as the assistant's: fix its generation blocks or report it"
        )
