"""Run by tests/test_grpo_distributed.py, under `torchrun` or as one plain process: `vlmtune grpo` with the given
arguments, then each rank writes what it holds to `<output_dir>/rank<N>.pt`: the world size, the steps, the
logged history and its trainable parameters after training."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from vlmtune.grpo.arguments import parse_grpo_args
from vlmtune.grpo.run import grpo


def main() -> None:
    args = parse_grpo_args(sys.argv[1:])
    trainer = grpo(*args)
    training_args = args[2]
    report = {
        "world_size": training_args.world_size,
        "steps": trainer.state.global_step,
        "history": trainer.state.log_history,
        "trained": {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad},
    }
    torch.save(report, Path(training_args.output_dir) / f"rank{training_args.process_index}.pt")


if __name__ == "__main__":
    main()
