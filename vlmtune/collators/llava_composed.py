"""Collator of composed LLaVA models (`vlmtune compose`): the shared core, with the end-of-turn read from the
checkpoint's own chat template.

A composed checkpoint carries one of several templates (the LLM's own, ChatML, or the LLaVA-1.5 format; see
vlmtune/compose.py), so one end-of-turn in the family record cannot fit them all: the collator renders a probe
conversation with the processor's template and takes the special token written right after the reply
(`<|im_end|>` for ChatML, `<|eot_id|>` for a Llama 3 template), or None where the template writes none (LLaVA-1.5:
the tokenizer's eos is then appended to every reply, as for the llava-1.5 family).
"""

from __future__ import annotations

from typing import Any

from vlmtune.collators.base import VLMCollator

PROBE_REPLY = "REPLYPROBE"


def template_reply_end(tokenizer: Any, chat_template: str | None = None) -> str | None:
    """The special token that the chat template writes right after an assistant reply, or None."""
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": PROBE_REPLY}]},
    ]
    text = tokenizer.apply_chat_template(messages, chat_template=chat_template, tokenize=False)
    after = text[text.index(PROBE_REPLY) + len(PROBE_REPLY) :].lstrip(" ")
    added = [token.content for token in tokenizer.added_tokens_decoder.values() if token.special]
    specials = sorted({*tokenizer.all_special_tokens, *added}, key=len, reverse=True)
    return next((token for token in specials if token and after.startswith(token)), None)


class ComposedCollator(VLMCollator):
    def __init__(
        self,
        processor: Any,
        reply_end: str | None,
        model_max_length: int = 2048,
        pad_to_multiple_of: int | None = None,
    ):
        # The family record's reply_end is the tiny model's (ChatML); each checkpoint's own template decides.
        del reply_end
        reply_end = template_reply_end(processor.tokenizer, processor.chat_template)
        super().__init__(processor, reply_end, model_max_length, pad_to_multiple_of)
