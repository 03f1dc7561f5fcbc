"""Cosmos 3 Edge collator: Qwen3-VL's (frame timestamps) plus two processor arguments its processor does not default.

`Cosmos3EdgeForConditionalGeneration` computes its 3-D rotary positions from `mm_token_type_ids` and refuses images
or videos without them, and `Cosmos3EdgeProcessor` writes each frame's timestamp from the video processor's
metadata; but the processor defaults neither `return_mm_token_type_ids` nor `return_metadata` to True (transformers
5.23, where Qwen3-VL's and LFM3-VL's processors do). Every processor call (training samples and prompts) asks for
both; the core pads the token types with 0, and the metadata the processor then hands back is no model input.
"""

from __future__ import annotations

from typing import Any

from vlmtune.collators.qwen3_vl import Qwen3VLCollator


class Cosmos3EdgeCollator(Qwen3VLCollator):
    def run_processor(self, **inputs: Any) -> Any:
        inputs["return_mm_token_type_ids"] = True
        if inputs.get("videos"):
            inputs["return_metadata"] = True
        outputs = super().run_processor(**inputs)
        outputs.pop("video_metadata", None)
        return outputs
