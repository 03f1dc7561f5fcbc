"""The DPO demo's control (slow: ~3-4 min on 2 cores): with chosen and rejected swapped at random the pairs carry
no information about the image, so held-out accuracy stays at chance (20%) after DPO. `make demo-dpo` is the
positive run (before <= 50%, after >= 85%)."""

from __future__ import annotations

import re

import pytest

from vlmtune.apps import demo_dpo


@pytest.mark.slow
def test_pairs_swapped_at_random_stay_at_chance(tmp_path, capsys):
    assert demo_dpo.main(["--output_dir", str(tmp_path), "--swap_at_random"]) == 0  # below 50% after DPO
    printed = capsys.readouterr().out
    after = float(re.search(r"held-out accuracy after DPO: ([\d.]+)%", printed).group(1))
    assert after <= 35.0
