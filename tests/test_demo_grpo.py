"""The GRPO demo's control (slow: ~4 min on 2 cores): with images shuffled across prompts the reward carries no
information about the image, so held-out accuracy stays at chance (20%) after GRPO. `make demo-grpo` is the
positive run (before <= 50%, after >= 80%)."""

from __future__ import annotations

import re

import pytest

from vlmtune.apps import demo_grpo


@pytest.mark.slow
def test_shuffled_images_stay_at_chance(tmp_path, capsys):
    assert demo_grpo.main(["--output_dir", str(tmp_path), "--shuffle_images"]) == 1  # the run does not reach 80%
    printed = capsys.readouterr().out
    after = float(re.search(r"held-out accuracy after GRPO: ([\d.]+)%", printed).group(1))
    assert after <= 35.0
