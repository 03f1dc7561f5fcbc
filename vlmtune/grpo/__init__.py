"""`vlmtune grpo`: reinforcement learning with verifiable rewards (GRPO and its variants) for every family.

    vlmtune grpo --model_id tiny-qwen2-vl --data_path clevr_count.jsonl --output_dir out \\
        --reward_funcs format accuracy --num_generations 8 --max_completion_length 128 --learning_rate 1e-6
    vlmtune grpo --config configs/grpo_example.yaml                 # YAML; the command line wins
    torchrun --nproc_per_node 8 -m vlmtune.grpo --model_id qwen2-vl-7b-instruct ...   # several GPUs
    vlmtune grpo ... --save_strategy steps --save_steps 50 --resume_from_checkpoint auto   # resumes after a kill

What is TRL's and what is ours (and why):
- TRL's: the argument names and defaults (`num_generations`, `temperature`, `top_p`, `max_completion_length`,
  `beta`=0, `epsilon`, `epsilon_high`, `num_iterations`, `scale_rewards`, `loss_type`=dapo (and cispo, sapo with
  `sapo_temperature_pos`/`_neg`),
  `importance_sampling_level`, `mask_truncated_completions`), the reward signature
  `f(prompts, completions, **columns)`, the definitions of the losses, advantages and the k3 KL estimator
  (`vlmtune.grpo.loss`, checked against TRL's GRPOTrainer in tests/test_grpo_loss.py) and metric names.
- Ours: everything that touches the model. Prompts are rendered and encoded by the family's collator
  (`render` + `run_processor`, as SFT and `vlmtune chat`), so every registered family works without RL code of
  its own (TRL's GRPOTrainer forwards a fixed list of media keys and stops on eos only); completions stop on the
  family's end of turn, never sample media tokens, and carry every media key of the prompt into the training
  forward (`vlmtune.grpo.rollouts`). Training is vlmtune's one HF Trainer (`VLMTrainer`): the same loaders,
  LoRA/QLoRA/full and per-part modes, DeepSpeed/FSDP configs and output layout as `vlmtune train`.
Modules: arguments (GRPOArguments), data (prompts), rollouts (generation backend interface), rewards, loss,
trainer (GRPOTrainer), run (the command).
"""

from __future__ import annotations


def main(argv: list[str] | None = None) -> None:
    import logging

    from vlmtune.grpo.arguments import parse_grpo_args
    from vlmtune.grpo.run import grpo

    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    grpo(*parse_grpo_args(argv))
