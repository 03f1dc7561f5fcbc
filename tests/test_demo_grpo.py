"""The GRPO demo, slow (~3-6 min a run on 2 cores): the positive run at one and two threads (the result depends on
the order of float reductions, so both are run, each in its own process as `make demo-grpo` starts it), and the
control: with images shuffled across prompts the reward carries no information about the image, so held-out
accuracy stays at chance (20%) after GRPO.

    python -m pytest -q -m slow tests/test_demo_grpo.py
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_counting_demo
from vlmtune.apps import demo_grpo


def held_out(printed: str, stage: str) -> float:
    return float(re.search(rf"held-out accuracy {stage} GRPO: ([\d.]+)%", printed).group(1))


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_the_demo_passes_with_ten_points_to_spare(tmp_path, threads):
    printed = run_counting_demo("vlmtune.apps.demo_grpo", tmp_path, threads)
    assert held_out(printed, "before") <= 100 * demo_grpo.BEFORE_AT_MOST
    assert held_out(printed, "after") >= 100 * demo_grpo.AFTER_AT_LEAST + 10


@pytest.mark.slow
def test_shuffled_images_stay_at_chance(tmp_path, capsys):
    assert demo_grpo.main(["--output_dir", str(tmp_path), "--shuffle_images"]) == 1  # the run does not reach 80%
    assert held_out(capsys.readouterr().out, "after") <= 35.0
