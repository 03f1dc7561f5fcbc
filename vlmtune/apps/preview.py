"""`vlmtune preview`: the first samples of a data file exactly as the model will see them, trained spans marked.

    vlmtune preview --model_id tiny-qwen2-vl --data_path train.json --num_samples 2
    vlmtune preview --model_id tiny-qwen2-vl --data_path train.json --json      # one JSON object per sample
    vlmtune preview --model_id tiny-qwen2-vl --data_path pairs.jsonl --task dpo  # both replies of each pair

The text view prints, per sample, its token counts (all, text, image/video, trained) and the decoded sequence
with the trained tokens in green on a terminal, or between `[[` and `]]` otherwise (`--color`); a run of
image/video tokens is folded to `<token>×N`. `--json` prints per sample its `input_ids`, `labels` (-100 where
nothing is trained), the decoded text of each trained span, and the counts, for other tools and tests.
Only the processor is loaded, never the weights.
"""

from __future__ import annotations

import html
import json
import sys
from dataclasses import dataclass, field
from typing import Literal

from vlmtune.apps.validate import collator_for
from vlmtune.arguments import DataArguments, DataclassParser
from vlmtune.collators.base import IGNORE_INDEX
from vlmtune.data.checks import check_family, data_options
from vlmtune.data.formats import iter_samples
from vlmtune.datasets import encode_with_media
from vlmtune.errors import BadSample, DataError

GREEN, RESET = "\033[32m", "\033[0m"


@dataclass
class PreviewArguments:
    model_id: str = field(metadata={"help": "Registered model id whose processor and template are used."})
    model_local_path: str | None = field(
        default=None, metadata={"help": "Load the processor from this local folder instead of the registered path."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Run processor code from the checkpoint."})
    num_samples: int = field(default=3, metadata={"help": "How many samples to show, from the start of the data."})
    json: bool = field(default=False, metadata={"help": "Print one JSON object per sample instead of text."})
    task: Literal["sft", "dpo"] = field(
        default="sft",
        metadata={"help": "dpo: preference pairs; each pair is shown twice, with the chosen and the rejected reply."},
    )
    color: Literal["auto", "always", "never"] = field(
        default="auto", metadata={"help": "Mark trained tokens in colour (auto: on a terminal) or with [[ ]]."}
    )


def segments(input_ids: list[int], labels: list[int], media_ids: set[int]) -> list[tuple[str, list[int]]]:
    """Consecutive runs of tokens of one kind: 'trained', 'media' (one media token id a run) or 'text'."""
    runs: list[tuple[str, list[int]]] = []
    for token, label in zip(input_ids, labels, strict=True):
        kind = "trained" if label != IGNORE_INDEX else "media" if token in media_ids else "text"
        same_run = runs and runs[-1][0] == kind and (kind != "media" or runs[-1][1][-1] == token)
        if same_run:
            runs[-1][1].append(token)
        else:
            runs.append((kind, [token]))
    return runs


def counts(runs: list[tuple[str, list[int]]]) -> dict[str, int]:
    """Token counts of one encoded sample: all, text, image/video, trained."""
    total = sum(len(ids) for _, ids in runs)
    media = sum(len(ids) for kind, ids in runs if kind == "media")
    trained = sum(len(ids) for kind, ids in runs if kind == "trained")
    return {"tokens": total, "text": total - media, "media": media, "trained": trained}


def render_text(runs: list[tuple[str, list[int]]], tokenizer, color: bool) -> str:
    pieces = []
    for kind, ids in runs:
        if kind == "media":
            pieces.append(f"{tokenizer.convert_ids_to_tokens(ids[0])}×{len(ids)}")
        elif kind == "trained":
            text = tokenizer.decode(ids)
            pieces.append(f"{GREEN}{text}{RESET}" if color else f"[[{text}]]")
        else:
            pieces.append(tokenizer.decode(ids))
    return "".join(pieces)


def render_html(runs: list[tuple[str, list[int]]], tokenizer) -> str:
    """The sample as HTML (for the web UI): trained tokens in <mark class="trained">, media runs folded."""
    pieces = []
    for kind, ids in runs:
        if kind == "media":
            pieces.append(
                f'<span class="media">{html.escape(tokenizer.convert_ids_to_tokens(ids[0]))}×{len(ids)}</span>'
            )
        elif kind == "trained":
            pieces.append(f'<mark class="trained">{html.escape(tokenizer.decode(ids))}</mark>')
        else:
            pieces.append(html.escape(tokenizer.decode(ids)))
    return "".join(pieces)


def encoded_samples(data_args: DataArguments, args: PreviewArguments):
    """(tokenizer, [(source, encoded)]) for the first samples: `encoded` holds `input_ids`, `labels` and their
    `runs` (`segments`), or is the DataError/BadSample that stopped the sample."""
    family, collator = collator_for(args.model_id, args.model_local_path, data_args, args.trust_remote_code)
    options = data_options(data_args.data_path, data_args)
    results = []
    read = pair_conversations if args.task == "dpo" else iter_samples
    for index, (source, sample) in enumerate(read(data_args.data_path, options)):
        if index >= args.num_samples * (2 if args.task == "dpo" else 1):
            break
        try:
            if isinstance(sample, DataError):
                raise sample
            check_family(sample, family)
            features = encode_with_media(collator.encode, sample, family.to_load_image, data_args.num_frames)
        except (DataError, BadSample) as error:
            results.append((source, error))
            continue
        input_ids, labels = features["input_ids"].tolist(), features["labels"].tolist()
        runs = segments(input_ids, labels, collator.media_token_ids)
        results.append((source, {"input_ids": input_ids, "labels": labels, "runs": runs}))
    return collator.tokenizer, results


def pair_conversations(data_path: str, options):
    """(source and which reply, the prompt with that reply) twice for each pair, or (source, the DataError)."""
    from vlmtune.data.formats import iter_records
    from vlmtune.dpo.data import record_to_pair

    for source, record in iter_records(data_path):
        try:
            pair = record_to_pair(record, source, options)
        except DataError as error:
            yield source, error
            continue
        yield f"{source} (chosen)", pair.with_reply(pair.chosen)
        yield f"{source} (rejected)", pair.with_reply(pair.rejected)


def main(argv: list[str] | None = None) -> int:
    parser = DataclassParser(
        (DataArguments, PreviewArguments),
        prog="vlmtune preview",
        description="Show samples as the model sees them, trained spans marked.",
    )
    data_args, args = parser.parse_args_into_dataclasses(args=argv)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    tokenizer, results = encoded_samples(data_args, args)
    for source, encoded in results:
        if isinstance(encoded, Exception):
            print(json.dumps({"source": source, "error": str(encoded)}) if args.json else f"error: {encoded}")
            continue
        runs = encoded["runs"]
        if args.json:
            trained_spans = [tokenizer.decode(ids) for kind, ids in runs if kind == "trained"]
            record = {"input_ids": encoded["input_ids"], "labels": encoded["labels"]}
            record.update(trained_spans=trained_spans, counts=counts(runs))
            print(json.dumps({"source": source, **record}))
        else:
            header = ", ".join(f"{value} {name}" for name, value in counts(runs).items())
            print(f"--- {source}: {header}")
            print(render_text(runs, tokenizer, color))
    return 1 if any(isinstance(encoded, Exception) for _, encoded in results) else 0


if __name__ == "__main__":
    from vlmtune.apps.cli import main as cli_main

    sys.exit(cli_main(["preview", *sys.argv[1:]]))
