"""The demo is the proof that masking and image-token alignment are right: it must learn to read digits."""

from __future__ import annotations

import json

from vlmtune import demo


def test_digits_dataset_is_llava_format_with_a_held_out_split(tmp_path):
    train_path, eval_path = demo.write_digits_dataset(tmp_path, num_eval=100)
    train, held_out = json.loads(train_path.read_text()), json.loads(eval_path.read_text())
    assert len(train) + len(held_out) == 1797 and len(held_out) == 100
    assert {r["image"] for r in train}.isdisjoint(r["image"] for r in held_out)
    assert (tmp_path / held_out[0]["image"]).exists()
    assert {r["conversations"][1]["value"] for r in held_out} == {str(d) for d in range(10)}


def test_demo_reaches_ninety_percent_held_out(tmp_path, capsys):
    assert demo.main(["--output_dir", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    after = float(printed.split("after finetuning:")[1].split("%")[0])
    assert after >= 90.0, printed
    assert (tmp_path / "model" / "loss_curve.png").exists()
