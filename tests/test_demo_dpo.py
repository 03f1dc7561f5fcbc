"""The DPO demo, slow (~2-4 min a run on 2 cores): the positive run at one and two threads (each in its own
process, as `make demo-dpo` starts it), and the control: with chosen and rejected swapped at random the pairs carry
no information about the image, so held-out accuracy stays at chance (20%) after DPO.

    python -m pytest -q -m slow tests/test_demo_dpo.py
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import run_counting_demo
from vlmtune.apps import demo_dpo


def held_out(printed: str, stage: str) -> float:
    return float(re.search(rf"held-out accuracy {stage} DPO: ([\d.]+)%", printed).group(1))


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_the_demo_passes_with_ten_points_to_spare(tmp_path, threads):
    printed = run_counting_demo("vlmtune.apps.demo_dpo", tmp_path, threads)
    assert held_out(printed, "before") <= 100 * demo_dpo.BEFORE_AT_MOST
    assert held_out(printed, "after") >= 100 * demo_dpo.AFTER_AT_LEAST + 10


@pytest.mark.slow
def test_pairs_swapped_at_random_stay_at_chance(tmp_path, capsys):
    assert demo_dpo.main(["--output_dir", str(tmp_path), "--swap_at_random"]) == 0  # below 50% after DPO
    assert held_out(capsys.readouterr().out, "after") <= 35.0
