"""Qwen3-VL and Qwen3.5 collators: the Qwen2-VL core plus frame timestamps, and Qwen3.5's think blocks.

Qwen3-VL (and Qwen3.5, which uses the same processor) writes each pair of video frames into the prompt with its
time, "<1.5 seconds>", computed from the video's frame rate and the numbers of the sampled frames. vlmtune has
already sampled `--num_frames` frames evenly (`vlmtune.data.video.decode_video`), so the processor gets them with
`do_sample_frames=False` (sampling again would keep only a few of them) and the frames' real metadata, which a
`DecodedVideo` carries. A plain list of frames has none: the processor then assumes consecutive frames at 24 fps.

Qwen3.5's template writes an assistant turn after the last user message as "<think>\\n\\n</think>\\n\\n{reply}" and
earlier ones as "{reply}", so a conversation is not rendered prefix by prefix; the core finds each reply where it
is written (`vlmtune.collators.replies`). Only the reply and its <|im_end|> are trained: the empty think block is
template markup, which the non-thinking generation prompt (`enable_thinking=False`) writes at inference too.
"""

from __future__ import annotations

from typing import Any

from vlmtune.collators.qwen2_vl import Qwen2VLCollator


class Qwen3VLCollator(Qwen2VLCollator):
    timed_videos = True


class Qwen3_5Collator(Qwen3VLCollator):
    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
        return self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt, enable_thinking=False
        )
