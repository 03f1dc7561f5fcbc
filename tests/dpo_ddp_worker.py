"""Run by tests/test_dpo_distributed.py, under `torchrun` or as one plain process: `vlmtune dpo` with the given
arguments, then each rank writes what it holds to `<output_dir>/rank<N>.pt`: the world size, the steps, the
logged history, the pair batcher, and the trainable parameters after training."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from vlmtune.dpo.arguments import parse_dpo_args
from vlmtune.dpo.run import dpo


def main() -> None:
    args = parse_dpo_args(sys.argv[1:])
    trainer = dpo(*args)
    training_args = args[2]
    report = {
        "world_size": training_args.world_size,
        "wrapper": type(trainer.model_wrapped).__name__,
        "batcher": type(trainer.data_collator).__name__,
        "steps": trainer.state.global_step,
        "history": trainer.state.log_history,
        "trained": {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad},
    }
    torch.save(report, Path(training_args.output_dir) / f"rank{training_args.process_index}.pt")


if __name__ == "__main__":
    main()
