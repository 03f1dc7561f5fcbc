"""Run by tests/test_dpo_distributed.py, under `torchrun` or as one plain process: `vlmtune dpo` with the given
arguments, then each rank writes what it holds to `<output_dir>/rank<N>.pt`: the world size, the steps, the
logged history, whether a pair's media went through the encoder once on this (wrapped) model, and the trainable
parameters after training."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from vlmtune.dpo.arguments import parse_dpo_args
from vlmtune.dpo.run import dpo
from vlmtune.dpo.trainer import LOSS_KEYS, media_encoded_once


def main() -> None:
    args = parse_dpo_args(sys.argv[1:])
    trainer = dpo(*args)
    training_args = args[2]
    batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))
    with torch.no_grad():
        shared = media_encoded_once(trainer.model_wrapped, {k: v for k, v in batch.items() if k not in LOSS_KEYS})
    report = {
        "world_size": training_args.world_size,
        "wrapper": type(trainer.model_wrapped).__name__,
        "media_encoded_once": shared is not None,
        "steps": trainer.state.global_step,
        "history": trainer.state.log_history,
        "trained": {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad},
    }
    torch.save(report, Path(training_args.output_dir) / f"rank{training_args.process_index}.pt")


if __name__ == "__main__":
    main()
