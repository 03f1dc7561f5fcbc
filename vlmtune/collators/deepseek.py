"""DeepSeek-VL / Janus collator: the shared core, with the last reply closed as every other reply is.

The converted checkpoints' templates (transformers' convert_janus_weights_to_hf.py, tests/models/deepseek_vl) write
the separator after a message only when another message or the generation prompt follows (`not loop.last`), so the
conversation's last reply would end with nothing. DeepSeek's own conversation format (DeepSeek-VL and Janus:
`sep2="<｜end▁of▁sentence｜>"` after every assistant reply, stopping on it) closes each reply with the end-of-sentence
token, which is what a reply trained here must end with. `render` appends it after a final assistant message.
"""

from __future__ import annotations

from typing import Any

from vlmtune.collators.base import VLMCollator
from vlmtune.datasets import ASSISTANT


class DeepseekCollator(VLMCollator):
    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
        text = super().render(messages, add_generation_prompt)
        if messages and messages[-1]["role"] == ASSISTANT and not add_generation_prompt:
            text += self.tokenizer.eos_token  # the template's seps[1] where a turn follows
        return text


class JanusCollator(DeepseekCollator):
    """Janus' processor writes its default system prompt in front of every text it is given
    (`use_default_system_prompt`, as the converted checkpoints are saved). The rendering includes it, so that the
    text the labels are read from is the text the processor tokenizes; it is taken off again before the processor
    writes it back."""

    def default_prompt(self) -> str:
        from transformers.models.janus.processing_janus import DEFAULT_SYSTEM_PROMPT

        return DEFAULT_SYSTEM_PROMPT if getattr(self.processor, "use_default_system_prompt", False) else ""

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
        return self.default_prompt() + super().render(messages, add_generation_prompt)

    def estimate_image_tokens(self, height: int, width: int) -> int:
        """Tokens of one image for length grouping (vlmtune/data/lengths.py): every image is resized to one square,
        `num_image_tokens` placeholders between <begin_of_image> and <end_of_image>."""
        return self.processor.num_image_tokens + 2

    def run_processor(self, **inputs: Any) -> Any:
        prompt = self.default_prompt()
        inputs["text"] = [text.removeprefix(prompt) for text in inputs["text"]]
        return super().run_processor(**inputs)
