"""`vlmtune chat`: greedy replies from a registered model, a LoRA adapter output or a full/merged model.

    vlmtune chat output/my-run --image digit.png --prompt "Which digit is shown in the image?"
    vlmtune chat output/my-run-merged --video clip.mp4 --prompt "What happens?" --num_frames 8
    vlmtune chat qwen2-vl-2b-instruct --image photo.jpg --prompt "Describe it." --device cuda --dtype bfloat16
    vlmtune chat output/my-run --data_path eval.jsonl --output predictions.jsonl      # batch mode
    vlmtune chat output/my-run-merged --data_path eval.jsonl --output p.jsonl --backend vllm   # vLLM generates

One question: the reply is printed. `<image>` / `<video>` placeholders in the prompt say where the files go;
without them the files go before the text. Batch mode reads records as `vlmtune train` does (LLaVA, ShareGPT
or OpenAI-messages records in a JSON list or JSONL file), answers each conversation up to its last user turn,
and writes one JSON line per record: `source`, `prompt` (the last user turn), `prediction`, `reference` (the
record's final assistant reply, or null when the record ends with the user's turn).

`--backend vllm` generates with vLLM (needs it installed, docs/serving.md): the same prompts and
greedy replies as the default transformers backend, faster on many samples. `--eval_metric` scores the
predictions of batch mode (records that end with a reply), with either backend.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vlmtune.arguments import CommandParser
from vlmtune.core.evaluation import resolve_metric, score
from vlmtune.core.inference import generate_replies
from vlmtune.core.outputs import DTYPE_CHOICES, load_for_inference, source_entry
from vlmtune.data.checks import MediaChecks, check_family
from vlmtune.data.formats import DATA_FORMATS, load_samples
from vlmtune.datasets import ASSISTANT, IMAGE_PLACEHOLDER, USER, VIDEO_PLACEHOLDER, Sample, Turn
from vlmtune.errors import ArgumentError, BadSample
from vlmtune.supported_models import Family


def question_sample(
    family: Family, prompt: str, images: list[str], videos: list[str], system_prompt: str | None
) -> Sample:
    """One user turn (placeholders added in front when the prompt has none) and an empty reply slot."""
    if IMAGE_PLACEHOLDER not in prompt and VIDEO_PLACEHOLDER not in prompt:
        media = [IMAGE_PLACEHOLDER] * len(images) + [VIDEO_PLACEHOLDER] * len(videos)
        prompt = "".join(f"{placeholder}\n" for placeholder in media) + prompt
    turns = [Turn(USER, prompt), Turn(ASSISTANT, "")]
    sample = Sample(turns, images=images, videos=videos, system_prompt=system_prompt, source="--prompt")
    check_family(sample, family)  # what vlmtune train checks, with what the family accepts
    return sample


def read_questions(family: Family, args: argparse.Namespace) -> list[Sample]:
    """Samples of a data file; a record that ends with the user's turn gets an empty reply slot (no reference)."""

    def add_reply_slot_then_check(sample: Sample) -> None:
        if sample.turns and sample.turns[-1].role == USER:
            sample.turns.append(Turn(ASSISTANT, ""))
        check_family(sample, family)

    folders = (args.image_folder, args.video_folder)
    return load_samples(args.data_path, *folders, check=add_reply_slot_then_check, data_format=args.data_format)


def write_predictions(path: Path, samples: list[Sample], predictions: list[str | BadSample]) -> None:
    """One JSON line per sample; a sample whose media could not be read has `"prediction": null` and its `error`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as file:
        for sample, prediction in zip(samples, predictions, strict=True):
            row = {
                "source": sample.source,
                "prompt": sample.turns[-2].text,
                "prediction": prediction if isinstance(prediction, str) else None,
                "reference": sample.turns[-1].text or None,
            }
            if isinstance(prediction, BadSample):
                row["error"] = str(prediction)
            file.write(json.dumps(row, ensure_ascii=False) + "\n")


def build_parser() -> CommandParser:
    parser = CommandParser(
        prog="vlmtune chat", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", help="A registered model id, or an output folder (adapter, full or merged model).")
    parser.add_argument("--model_id", help="Registered id of the folder's model (default: from vlmtune_args.yaml).")
    parser.add_argument("--base", help="Base checkpoint of an adapter (default: the one it was trained from).")
    parser.add_argument("--prompt", help="The question (one-question mode).")
    parser.add_argument("--image", action="append", default=[], help="An image file; repeat for several.")
    parser.add_argument("--video", action="append", default=[], help="A video file; repeat for several.")
    parser.add_argument("--system_prompt", help="A system prompt for the question.")
    parser.add_argument("--data_path", help="Batch mode: records to answer (.json/.jsonl, as vlmtune train reads).")
    parser.add_argument("--data_format", default="auto", choices=DATA_FORMATS, help="Batch mode: record format.")
    parser.add_argument("--output", help="Batch mode: predictions JSONL to write.")
    parser.add_argument("--image_folder", help="Batch mode: root of relative image paths (default: data file's).")
    parser.add_argument("--video_folder", help="Batch mode: root of relative video paths (default: data file's).")
    parser.add_argument("--batch_size", type=int, default=8, help="Batch mode: samples per generate call.")
    parser.add_argument("--max_new_tokens", type=int, default=256, help="Longest reply in tokens.")
    parser.add_argument("--num_frames", type=int, default=8, help="Frames sampled evenly from each video.")
    parser.add_argument("--dtype", choices=DTYPE_CHOICES, default="auto", help="Weights dtype (auto: as stored).")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ... (transformers backend)")
    parser.add_argument(
        "--backend", choices=("hf", "vllm"), default="hf", help="Generate with transformers (hf) or with vLLM."
    )
    parser.add_argument("--max_model_len", type=int, default=4096, help="vLLM backend: longest prompt + reply.")
    parser.add_argument(
        "--eval_metric",
        help="Batch mode: score the predictions against the records' final replies (exact_match or "
        "module:function, as vlmtune train's --eval_metric) and print the scores as JSON.",
    )
    return parser


def vllm_backend_replies(args: argparse.Namespace, samples: list[Sample]) -> list[str]:
    """Greedy replies from vLLM: a full/merged folder or registered model as it is, an adapter on its base."""
    from vlmtune.core.modeling import load_processor
    from vlmtune.serving.vllm_backend import media_limits, model_impl_of, start_engine, vllm_replies, vllm_source

    source = vllm_source(args.model, args.model_id, args.base)
    processor = load_processor(source.entry, source.processor_folder)
    collator = source.entry.family.collator(processor, source.entry.family.reply_end)
    limits = media_limits(source.entry.family, videos=any(sample.videos for sample in samples))
    implementation = model_impl_of(source.entry.family_id)
    llm = start_engine(
        source.model_folder, args.max_model_len, source.lora_rank, args.dtype, limits=limits, model_impl=implementation
    )
    options = {"max_new_tokens": args.max_new_tokens, "num_frames": args.num_frames, "lora": source.adapter}
    return vllm_replies(llm, collator, samples, **options)


def print_scores(metric, replies: list[str | BadSample], samples: list[Sample], data_path: str) -> None:
    """The metric over the records that end with a reply (and whose media could be read), as JSON."""
    scored = [
        (reply, sample.turns[-1].text)
        for reply, sample in zip(replies, samples, strict=True)
        if sample.turns[-1].text and isinstance(reply, str)
    ]
    if not scored:
        raise ArgumentError(f"--eval_metric: no record of {data_path} ends with a reply to score against")
    print(json.dumps(score(metric, [reply for reply, _ in scored], [reference for _, reference in scored])))


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if (args.prompt is None) == (args.data_path is None):
        parser.error("give either --prompt (one question) or --data_path with --output (batch mode)")
    if args.data_path and not args.output:
        parser.error("batch mode (--data_path) needs --output, the predictions JSONL to write")
    if args.eval_metric and not args.data_path:
        parser.error("--eval_metric scores batch mode: give --data_path")
    metric = resolve_metric(args.eval_metric) if args.eval_metric else None  # a bad spec fails before loading
    # The question or data is checked before the model loads; problems end in one line (vlmtune.apps.cli).
    entry = source_entry(args.model, args.model_id, args.base)  # a conventional family: checked, fields derived
    family = entry.family
    if args.data_path:
        samples = read_questions(family, args)
    else:
        samples = [question_sample(family, args.prompt, args.image, args.video, args.system_prompt)]
        # a bad file: one line, before the model loads
        MediaChecks().check(samples[0], decode=True, num_frames=args.num_frames)
    if args.backend == "vllm":
        replies = vllm_backend_replies(args, samples)
    else:
        model, processor, entry = load_for_inference(args.model, entry=entry, dtype=args.dtype)
        model.to(args.device)
        collator = entry.family.collator(processor, entry.family.reply_end)
        replies = generate_replies(model, collator, samples, args.max_new_tokens, args.batch_size, args.num_frames)
    if args.data_path:
        write_predictions(Path(args.output), samples, replies)
        bad = sum(isinstance(reply, BadSample) for reply in replies)
        print(
            f"{len(replies) - bad} predictions written to {args.output}"
            + (f" ({bad} bad sample(s) skipped)" if bad else "")
        )
        if metric:
            print_scores(metric, replies, samples, args.data_path)
    elif isinstance(replies[0], BadSample):
        raise replies[0]  # one line naming the file and why (vlmtune.apps.cli), exit 1
    else:
        print(replies[0])
    return 0


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["chat", *sys.argv[1:]]))
