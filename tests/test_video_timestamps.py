"""Processors that write frame times into the prompt get the times of the frames vlmtune sampled, not a guess."""

from __future__ import annotations

from tests.conftest import write_video
from tests.test_masking import conversation
from vlmtune.data.video import decode_video
from vlmtune.datasets import Sample
from vlmtune.supported_models import FAMILIES


def test_smolvlm2_prompt_times_the_sampled_frames(load_tiny, tmp_path):
    _, processor = load_tiny("tiny-smolvlm")
    family = FAMILIES["smolvlm"]
    collator = family.collator(processor, family.reply_end)
    clip = write_video(tmp_path / "clip.mp4", num_frames=10)  # 10 frames at 5 fps: 2 seconds
    frames = decode_video(clip, 4)  # frames 0, 3, 6 and 9: at 0.0, 0.6, 1.2 and 1.8 s
    sample = Sample(conversation("<video>\nWhat happens?", "It gets brighter."), videos=[clip])
    text = collator.tokenizer.decode(collator.encode(sample, [], [frames])["input_ids"])
    assert "frames from a 0:00:01 [H:MM:SS] video" in text  # the real duration, not 4 frames at 24 fps
    starts = [line.split("Frame from ")[1][:5] for line in text.splitlines() if "Frame from " in line]
    assert starts == ["00:00", "00:00", "00:01", "00:01"]


def test_generation_prompts_time_the_frames_as_training_does(load_tiny, tmp_path):
    """Inference goes through `run_processor`, not `encode`: it must get the same frame times."""
    _, processor = load_tiny("tiny-smolvlm")
    family = FAMILIES["smolvlm"]
    collator = family.collator(processor, family.reply_end)
    clip = write_video(tmp_path / "clip.mp4", num_frames=10)
    sample = Sample(conversation("<video>\nWhat happens?", "It gets brighter."), videos=[clip])
    prompt = collator.render(collator.to_messages(sample)[:-1], add_generation_prompt=True)
    inputs = collator.run_processor(text=[prompt], videos=[decode_video(clip, 4)], return_tensors="pt")
    text = collator.tokenizer.decode(inputs["input_ids"][0])
    assert "frames from a 0:00:01 [H:MM:SS] video" in text
