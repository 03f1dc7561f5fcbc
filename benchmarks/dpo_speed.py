"""`vlmtune dpo` against TRL 1.16's DPOTrainer: the same tiny model, pairs, batch and loss; pairs per second.

    OMP_NUM_THREADS=1 python benchmarks/dpo_speed.py                       # tiny-qwen2-vl, 64 pairs, 8 a step
    OMP_NUM_THREADS=1 python benchmarks/dpo_speed.py --steps 30 --repeats 3

Three runs train the same starting weights the same way: `vlmtune dpo` as it is by default, `vlmtune dpo
--prompt_once true` (each pair as one row: the prompt and its image once, then both replies) and TRL: the
language model and projector fully, the vision tower frozen, the reference a frozen copy of the start,
`loss_type=sigmoid`, `beta=0.1`, fp32 on CPU, no checkpoints, no logging but the last step. The pairs are
count-the-squares images with one-digit replies (the DPO demo's data). TRL reads them as its conversational
vision layout (`prompt` with an image part, `chosen`, `rejected`, `images`) and batches them with its own
collator; vlmtune reads the OpenAI-messages layout. Each row runs `--repeats` times in this process, alternating,
and the table prints each time, then the ratio of the best runs and the ratio within each repeat; needs `trl`
installed (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vlmtune.apps.demo_grpo import COUNTS, draw_squares

QUESTION = "How many squares are in the image?"


def write_pairs(folder: Path, count: int) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for index in range(count):
        right = int(rng.choice(COUNTS))
        wrong = int(rng.choice([c for c in COUNTS if c != right]))
        name = f"img{index}.png"
        draw_squares(right, rng).save(folder / name)
        messages = [{"role": "user", "content": f"<image>{QUESTION}"}]
        rows.append({"messages": messages, "chosen": str(right), "rejected": str(wrong), "images": [name]})
    path = folder / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    return path


def common_args(output_dir: Path, args) -> dict:
    return {
        "output_dir": str(output_dir),
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "learning_rate": 1e-5,
        "logging_steps": args.steps,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
    }


def run_vlmtune(pairs: Path, output_dir: Path, args) -> float:
    from vlmtune.arguments import DataArguments, ModelArguments, TrainingArguments
    from vlmtune.dpo.arguments import DPOArguments
    from vlmtune.dpo.data import read_pairs
    from vlmtune.dpo.run import dpo_trainer
    from vlmtune.pipeline import check_run, load_model_and_collator

    model_args = ModelArguments(model_id=args.model_id, llm_mode="full", vision_mode="frozen", train_projector=True)
    data_args = DataArguments(data_path=str(pairs), model_max_length=512)
    training_args = TrainingArguments(**common_args(output_dir, args))
    dpo_args = DPOArguments(beta=0.1, prompt_once=args.prompt_once)
    entry = check_run(model_args, training_args)
    samples = read_pairs(str(pairs), entry.family, data_args)
    model, processor, collator = load_model_and_collator(entry, model_args, data_args)
    run_args = (model_args, data_args, training_args, dpo_args)
    trainer = dpo_trainer(entry, model, processor, collator, samples, run_args)
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def run_vlmtune_prompt_once(pairs: Path, output_dir: Path, args) -> float:
    return run_vlmtune(pairs, output_dir, argparse.Namespace(**{**vars(args), "prompt_once": True}))


def run_trl(pairs: Path, output_dir: Path, args) -> float:
    import datasets
    from PIL import Image
    from trl import DPOConfig, DPOTrainer

    from vlmtune.arguments import ModelArguments
    from vlmtune.core.modeling import load_model, set_trainable
    from vlmtune.supported_models import get_model

    entry = get_model(args.model_id)
    model_args = ModelArguments(model_id=args.model_id, llm_mode="full", vision_mode="frozen", train_projector=True)
    model, processor = load_model(entry, model_args)
    model = set_trainable(model, entry.family.modules, model_args, False)
    reference = copy.deepcopy(model).eval().requires_grad_(False)
    rows = []
    for line in pairs.read_text().splitlines():
        record = json.loads(line)
        content = [{"type": "image"}, {"type": "text", "text": QUESTION}]
        rows.append(
            {
                "prompt": [{"role": "user", "content": content}],
                "chosen": [{"role": "assistant", "content": [{"type": "text", "text": record["chosen"]}]}],
                "rejected": [{"role": "assistant", "content": [{"type": "text", "text": record["rejected"]}]}],
                "images": [Image.open(pairs.parent / record["images"][0]).convert("RGB")],
            }
        )
    config = DPOConfig(**common_args(output_dir, args), beta=0.1, loss_type=["sigmoid"], bf16=False)
    trainer = DPOTrainer(
        model=model,
        ref_model=reference,
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=processor,
    )
    started = time.perf_counter()
    trainer.train()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_id", default="tiny-qwen2-vl")
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--batch_size", type=int, default=8, help="Pairs per step.")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    args.prompt_once = False
    runs = {"vlmtune": run_vlmtune, "vlmtune --prompt_once": run_vlmtune_prompt_once, "trl": run_trl}
    results: dict[str, list[float]] = {name: [] for name in runs}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        pairs = write_pairs(folder, args.pairs)
        for repeat in range(args.repeats):
            for index, (name, run) in enumerate(runs.items()):
                torch.manual_seed(0)
                seconds = run(pairs, folder / f"run{index}-{repeat}", args)
                results[name].append(args.steps * args.batch_size / seconds)
            print(f"after {repeat + 1} repeat(s), pairs per second:")
            for name, values in results.items():
                print(f"  {name:<22} {' '.join(f'{v:.1f}' for v in values)}  (best {max(values):.1f})")
    for name in ("vlmtune", "vlmtune --prompt_once"):
        print(f"{name} / trl (best of each): {max(results[name]) / max(results['trl']):.2f}x")
        # A repeat's runs are neighbours in time, so their ratio sees the same load from other jobs on a shared
        # machine; the median of those ratios moves less than the best-of ratio while the load changes.
        ratios = sorted(v / t for v, t in zip(results[name], results["trl"], strict=True))
        print(f"{name} / trl (each repeat): {' '.join(f'{r:.2f}' for r in ratios)}  (median {np.median(ratios):.2f}x)")


if __name__ == "__main__":
    main()
