"""Run by tests/test_grpo_distributed.py, under `torchrun` or as one plain process: `vlmtune grpo` with the given
arguments, then each rank writes what it holds to `<output_dir>/rank<N>.pt`: the world size, the steps, the
logged history, the completion tokens of each step on this process and its trainable parameters after training.

The tiny model's sampling gets a bias of +4 on its eos token (`sequence_bias`, a generation setting: the training
forward is unchanged), so that completions stop at different lengths and the processes hold different numbers of
completion tokens: a DAPO normaliser counted per process would show."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import TrainerCallback

from vlmtune.grpo.arguments import parse_grpo_args
from vlmtune.grpo.run import grpo


class EarlyStops(TrainerCallback):
    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        eos = getattr(processing_class, "tokenizer", processing_class).eos_token_id
        base.generation_config.sequence_bias = {(eos,): 4.0}


def main() -> None:
    args = parse_grpo_args(sys.argv[1:])
    trainer = grpo(*args, callbacks=[EarlyStops()])
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
