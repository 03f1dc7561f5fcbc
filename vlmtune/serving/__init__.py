"""Using what was trained: `merge` (adapter + base -> one checkpoint in the released key layout), `export` (the form
vLLM serves), `serve` (vLLM's OpenAI-compatible server), `vllm_backend` (vLLM engines in-process) and `chat`
(answers and `--eval_metric` scores, through transformers or vLLM).
May import: core, the registry, `vlmtune.arguments`, the data layer and the bottom layer. Methods (train, grpo)
import serving (a run's vLLM note, GRPO's vLLM rollouts), never the other way.
"""
