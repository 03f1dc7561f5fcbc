"""`vlmtune dpo`: preference optimization (DPO and its variants, SimPO, ORPO) for every family.

    vlmtune dpo --model_id tiny-qwen2-vl --data_path pairs.jsonl --output_dir out --beta 0.1 --learning_rate 5e-6
    vlmtune dpo ... --loss_type sigmoid sft --loss_weights 1 1      # RPO: DPO plus the chosen reply's NLL
    vlmtune dpo ... --loss_type simpo --beta 2 --simpo_gamma 0.5    # reference-free
    vlmtune dpo --config configs/dpo_example.yaml --data_path pairs.jsonl          # YAML; the command line wins
    torchrun --nproc_per_node 4 -m vlmtune.dpo --model_id qwen2-vl-7b-instruct ...   # several GPUs

What is TRL's and what is ours (and why):
- TRL's: the argument names and defaults (`beta`=0.1, `loss_type`=[sigmoid], `loss_weights`, `label_smoothing`,
  `precompute_ref_log_probs`; `simpo_gamma` from CPOConfig), the loss definitions (`vlmtune.dpo.loss`, checked
  against TRL's own code in tests/test_dpo_loss.py), the metric names and the data layout prompt/chosen/rejected.
- Ours: every reply is masked by the family's collator (the prompt's turns plus the reply as the final assistant
  turn), so every registered family trains with its own template, media and end of turn; chosen and rejected
  go through one forward; training is vlmtune's one HF Trainer with the same loaders, LoRA/QLoRA/full modes and
  output layout as `vlmtune train`.
Modules: arguments (DPOArguments), data (pairs), loss, trainer (DPOTrainer), run (the command).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    import logging

    from vlmtune.dpo.arguments import parse_dpo_args
    from vlmtune.dpo.run import dpo

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    dpo(*parse_dpo_args(argv))
