"""Every data format vlmtune reads, converted in one place into the internal `Sample`.

    from vlmtune.data.formats import load_samples, iter_samples
    samples = load_samples("train.jsonl")                  # format detected from the first record
    samples = load_samples("data/parquet_dir", data_format="openai")

Where the records come from (`data_path`):
- a `.json` file (a list of records) or a `.jsonl` file (one record a line);
- a Hugging Face dataset: a local folder saved with `datasets` (`save_to_disk`) or of parquet/arrow/json files, a
  single `.parquet`/`.arrow` file, or a hub id (read offline from the local HF cache only). Images may sit in an
  `images` column as PIL images, `{"bytes", "path"}` dicts or paths. `streaming=True` reads it lazily.

What a record looks like (`data_format`, default `auto`: chosen per record from its keys):
- `llava` / `sharegpt` (one reader, two spellings):
  `{"conversations": [{"from": "human", "value": "<image>\\nWhich digit?"}, {"from": "gpt", "value": "7"}],
  "image": "a.png" | ["a.png", ...], "video": ..., "system_prompt": "..."}`; ShareGPT writes `images`/`videos`,
  `system`, and may open with a `{"from": "system", ...}` turn; `user`/`assistant` work as `from` values too.
- `openai`: `{"messages": [{"role": "system" | "user" | "assistant", "content": "text" | [parts]}]}`, parts
  `{"type": "text", "text": ...}`, `{"type": "image_url", "image_url": {"url": ...}}`, `{"type": "image",
  "image": ...}`, `{"type": "video", "video": ...}`. An image is a path (relative to `image_folder`), a
  `file://` path or a `data:image/...;base64,` URL; http(s) URLs are an error (vlmtune never downloads). String
  contents may hold `<image>` placeholders with the files in a top-level `images` list instead.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from vlmtune.datasets import ASSISTANT, IMAGE_PLACEHOLDER, USER, VIDEO_PLACEHOLDER, Sample, Turn, check_sample
from vlmtune.errors import DataError

DATA_FORMATS = ("auto", "llava", "sharegpt", "openai")
JSON_SUFFIXES = (".json", ".jsonl")
HF_FILE_SUFFIXES = {".parquet": "parquet", ".arrow": "arrow"}

CONVERSATION_KEYS = ("id", "conversations", "image", "images", "video", "videos", "system_prompt", "system")
MESSAGES_KEYS = ("id", "messages", "images", "videos")


@dataclass(frozen=True)
class ReadOptions:
    """How to read records: the folders relative media paths start from, role names, the format."""

    image_folder: Path
    video_folder: Path
    user_key: str = "human"
    assistant_key: str = "gpt"
    data_format: str = "auto"


# --- where records come from ------------------------------------------------------------------------------


def is_json_file(data_path: str | Path) -> bool:
    return Path(data_path).suffix in JSON_SUFFIXES


def read_records(path: str | Path) -> Iterator[tuple[str, Any]]:
    """(source, record) pairs from a JSON list or a JSONL file (read line by line); errors name the line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: data file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the data file is empty")
    try:
        if path.suffix == ".jsonl":
            yield from _read_jsonl(path)
            return
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path.name}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8"
        ) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise DataError(f"{path.name}: not valid JSON ({error.msg} at line {error.lineno})") from None
    if not isinstance(data, list):
        raise DataError(f"{path.name}: expected a JSON list of samples (or use .jsonl, one sample per line)")
    for index, record in enumerate(data):
        yield f"{path.name} sample {index}", record


def _read_jsonl(path: Path) -> Iterator[tuple[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DataError(f"{path.name} line {number}: not valid JSON ({error.msg})") from None
            yield f"{path.name} line {number}", record


def read_hf_records(data_path: str | Path, streaming: bool = False) -> Iterator[tuple[str, Any]]:
    """(source, row) pairs of a Hugging Face dataset: a saved folder, data files, or a hub id in the local cache."""
    import datasets  # optional: only Hugging Face datasets need it

    dataset = _load_hf_dataset(datasets, str(data_path), streaming)
    name = Path(str(data_path)).name or str(data_path)
    for index, row in enumerate(dataset):
        yield f"{name} row {index}", row


def _load_hf_dataset(datasets, data_path: str, streaming: bool):
    path = Path(data_path)
    try:
        if path.is_dir() and any((path / name).is_file() for name in ("dataset_info.json", "dataset_dict.json")):
            dataset = datasets.load_from_disk(data_path)
            if streaming:
                dataset = dataset.to_iterable_dataset() if hasattr(dataset, "to_iterable_dataset") else dataset
        elif path.is_file() and path.suffix in HF_FILE_SUFFIXES:
            dataset = datasets.load_dataset(HF_FILE_SUFFIXES[path.suffix], data_files=data_path, streaming=streaming)
        else:
            dataset = datasets.load_dataset(data_path, streaming=streaming)
    except (FileNotFoundError, ValueError, ConnectionError, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"{data_path}: cannot load it as a Hugging Face dataset ({first_line}); give a .json/.jsonl file, a "
            "local dataset folder, or a hub id already in the local cache (vlmtune works offline)"
        ) from None
    if isinstance(dataset, datasets.DatasetDict | datasets.IterableDatasetDict):
        if "train" not in dataset:
            raise DataError(f"{data_path}: the dataset has splits {sorted(dataset)} but no 'train' split")
        dataset = dataset["train"]
    return _images_undecoded(datasets, dataset)


def _images_undecoded(datasets, dataset):
    """Keep image columns as bytes ({"bytes", "path"}): they are decoded lazily, one sample at a time."""
    features = getattr(dataset, "features", None) or {}
    for column in ("image", "images"):
        feature = features.get(column)
        if isinstance(feature, datasets.Image):
            dataset = dataset.cast_column(column, datasets.Image(decode=False))
        elif isinstance(feature, datasets.List | datasets.Sequence) and isinstance(feature.feature, datasets.Image):
            dataset = dataset.cast_column(column, datasets.List(datasets.Image(decode=False)))
    return dataset


def iter_records(data_path: str | Path, streaming: bool = False) -> Iterator[tuple[str, Any]]:
    if is_json_file(data_path):
        return read_records(data_path)
    return read_hf_records(data_path, streaming)


# --- one record -> Sample ---------------------------------------------------------------------------------


def detect_format(record: Any) -> str:
    if isinstance(record, dict) and "messages" in record:
        return "openai"
    if isinstance(record, dict) and any(key in record for key in ("images", "videos", "system")):
        return "sharegpt"
    return "llava"


def record_to_sample(record: Any, source: str, options: ReadOptions) -> Sample:
    """The one place where every format becomes a `Sample`; raises DataError naming the source and field."""
    if not isinstance(record, dict):
        raise DataError(f"{source}: a sample must be a JSON object, got {type(record).__name__}")
    data_format = detect_format(record) if options.data_format == "auto" else options.data_format
    if data_format == "openai":
        _check_field_names(record, source, MESSAGES_KEYS)
        return messages_to_sample(record, source, options)
    _check_field_names(record, source, CONVERSATION_KEYS)
    return conversations_to_sample(record, source, options)


def _check_field_names(record: dict, source: str, known: tuple[str, ...]) -> None:
    """An unknown field that looks like a typo of a known one is an error (its data would be silently lost)."""
    for key in record:
        if key in known:
            continue
        close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.75)
        if close:
            raise DataError(f"{source}: unknown field {key!r}; did you mean {close[0]!r}?")


def conversations_to_sample(record: dict, source: str, options: ReadOptions) -> Sample:
    conversations = record.get("conversations")
    if "conversations" not in record and "messages" in record:
        raise DataError(f"{source}: has 'messages', not 'conversations': read it with --data_format openai")
    if not isinstance(conversations, list) or not conversations:
        raise DataError(f"{source}: field 'conversations' must be a non-empty list of turns")
    roles = {options.user_key: USER, options.assistant_key: ASSISTANT, "user": USER, "assistant": ASSISTANT}
    system_prompt = _optional_text(record, source, "system_prompt") or _optional_text(record, source, "system")
    turns = []
    for number, turn in enumerate(conversations):
        where = f"{source}: conversations[{number}]"
        found = turn.get("from") if isinstance(turn, dict) else turn
        if number == 0 and found == "system":
            system_prompt = _turn_text(turn, "value", where)
            continue
        if found not in roles:
            raise DataError(
                f"{where}: 'from' must be {options.user_key!r} or {options.assistant_key!r}, got {found!r}"
            )
        turns.append(Turn(roles[found], _turn_text(turn, "value", where)))
    images = _media_list(record, ("image", "images"), source, options.image_folder, "image")
    videos = _media_list(record, ("video", "videos"), source, options.video_folder, "video")
    return Sample(
        turns=turns,
        images=images,
        videos=videos,
        system_prompt=system_prompt,
        source=source,
        extra=_extra_columns(record, CONVERSATION_KEYS),
    )


def messages_to_sample(record: dict, source: str, options: ReadOptions) -> Sample:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{source}: field 'messages' must be a non-empty list of messages")
    system_prompt, turns, images, videos = None, [], [], []
    for number, message in enumerate(messages):
        where = f"{source}: messages[{number}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system" and number == 0:
            system_prompt = _content_text(message.get("content"), where)
            continue
        if role not in (USER, ASSISTANT):
            found = message.get("role") if isinstance(message, dict) else message
            raise DataError(f"{where}: 'role' must be 'user' or 'assistant' (or 'system' first), got {found!r}")
        content = message.get("content")
        if isinstance(content, list):
            text = _parts_to_text(content, where, options, images, videos)
        else:
            text = _turn_text(message, "content", where)
        turns.append(Turn(role, text))
    listed_images = _media_list(record, ("images",), source, options.image_folder, "image")
    listed_videos = _media_list(record, ("videos",), source, options.video_folder, "video")
    if (images and listed_images) or (videos and listed_videos):
        raise DataError(f"{source}: media given both as content parts and in 'images'/'videos'; use one of the two")
    return Sample(
        turns=turns,
        images=images or listed_images,
        videos=videos or listed_videos,
        system_prompt=system_prompt,
        source=source,
        extra=_extra_columns(record, MESSAGES_KEYS),
    )


def _extra_columns(record: dict, known: tuple[str, ...]) -> dict[str, Any]:
    """The record's columns that no reader field takes (e.g. GRPO's `solution`), kept for reward functions."""
    return {key: value for key, value in record.items() if key not in known}


def _parts_to_text(parts: list, where: str, options: ReadOptions, images: list, videos: list) -> str:
    """Content parts as text with <image>/<video> placeholders; the media they name are appended in order."""
    pieces = []
    for index, part in enumerate(parts):
        at = f"{where}.content[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise DataError(f"{at}: a text part needs a string 'text'")
            pieces.append(part["text"])
        elif kind in ("image", "image_url"):
            images.append(_media_ref(_part_location(part, kind, at), at, options.image_folder, "image"))
            pieces.append(IMAGE_PLACEHOLDER)
        elif kind in ("video", "video_url"):
            location = _part_location(part, kind, at)
            if not isinstance(location, str):
                raise DataError(f"{at}: a video must be given as a path")
            videos.append(_media_ref(location, at, options.video_folder, "video"))
            pieces.append(VIDEO_PLACEHOLDER)
        else:
            raise DataError(f"{at}: unknown content part type {kind!r} (text, image, image_url, video, video_url)")
    text = "\n".join(pieces)
    if not text.strip():
        raise DataError(f"{where}: 'content' has no text and no media")
    return text


def _part_location(part: dict, kind: str, at: str) -> Any:
    value = part.get(kind, part.get("path", part.get("url")))
    if isinstance(value, dict):
        value = value.get("url", value.get("path"))
    if value is None:
        raise DataError(f"{at}: a {kind} part needs its {kind!r} (a path or a data URL)")
    return value


def _turn_text(turn: Any, key: str, where: str) -> str:
    value = turn.get(key) if isinstance(turn, dict) else None
    if not isinstance(value, str) or not value.strip():
        found = "missing" if not isinstance(turn, dict) or key not in turn else type(value).__name__
        raise DataError(f"{where}: {key!r} must be a non-empty string (got {found})")
    return value


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(texts) != len(content) or not all(isinstance(t, str) for t in texts):
            raise DataError(f"{where}: a system message can hold text parts only")
        content = "\n".join(texts)
    if not isinstance(content, str) or not content.strip():
        raise DataError(f"{where}: 'content' must be a non-empty string")
    return content


def _optional_text(record: dict, source: str, key: str) -> str | None:
    value = record.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise DataError(f"{source}: field {key!r} must be a non-empty string when given")
    return value


def _media_list(record: dict, keys: tuple[str, ...], source: str, folder: Path, kind: str) -> list:
    given = [key for key in keys if record.get(key) is not None]
    if not given:
        return []
    if len(given) > 1:
        raise DataError(f"{source}: both {given[0]!r} and {given[1]!r} are given; use one of them")
    key = given[0]
    value = record[key]
    values = value if isinstance(value, list) else [value]
    return [_media_ref(v, f"{source}: field {key!r}", folder, kind) for v in values]


def _media_ref(value: Any, where: str, folder: Path, kind: str) -> str | bytes | Image.Image:
    """A media reference as the dataset keeps it: a resolved path, encoded bytes, or an image object."""
    if isinstance(value, dict) and ("bytes" in value or "path" in value):  # a Hugging Face Image column
        value = value.get("bytes") or value.get("path")
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, bytes) and value:
        return value
    if not isinstance(value, str) or not value:
        raise DataError(f"{where}: each {kind} must be a path (or a list of paths), got {type(value).__name__}")
    if value.startswith(("http://", "https://")):
        raise DataError(f"{where}: {value} is a URL; vlmtune reads local files only (download it, give the path)")
    if value.startswith("data:"):
        return _decode_data_url(value, where)
    value = value.removeprefix("file://")
    return value if os.path.isabs(value) else str(folder / value)


def _decode_data_url(url: str, where: str) -> bytes:
    header, _, payload = url.partition(",")
    if not header.endswith(";base64") or not payload:
        raise DataError(f"{where}: a data URL must be 'data:<type>;base64,<data>'")
    try:
        return base64.b64decode(payload, validate=True)
    except binascii.Error as error:
        raise DataError(f"{where}: the data URL is not valid base64 ({error})") from None


# --- whole files ------------------------------------------------------------------------------------------


def read_options(
    data_path: str | Path,
    image_folder: str | Path | None = None,
    video_folder: str | Path | None = None,
    user_key: str = "human",
    assistant_key: str = "gpt",
    data_format: str = "auto",
) -> ReadOptions:
    if data_format not in DATA_FORMATS:
        raise DataError(f"unknown data format {data_format!r}; choose one of {', '.join(DATA_FORMATS)}")
    base = Path(data_path).parent if is_json_file(data_path) or Path(data_path).is_file() else Path(data_path)
    return ReadOptions(
        image_folder=Path(image_folder) if image_folder else base,
        video_folder=Path(video_folder) if video_folder else base,
        user_key=user_key,
        assistant_key=assistant_key,
        data_format=data_format,
    )


def iter_samples(
    data_path: str | Path, options: ReadOptions, streaming: bool = False
) -> Iterator[tuple[str, Sample | DataError]]:
    """(source, Sample or the DataError that names its problem) for every record, in file order."""
    for source, record in iter_records(data_path, streaming):
        try:
            yield source, record_to_sample(record, source, options)
        except DataError as error:
            yield source, error


def load_samples(
    data_path: str | Path,
    image_folder: str | Path | None = None,
    video_folder: str | Path | None = None,
    user_key: str = "human",
    assistant_key: str = "gpt",
    check: Callable[[Sample], None] | None = None,
    data_format: str = "auto",
) -> list[Sample]:
    """Read and check every sample; all problems are reported together in one DataError."""
    options = read_options(data_path, image_folder, video_folder, user_key, assistant_key, data_format)
    samples, problems = [], []
    for _, sample in iter_samples(data_path, options):
        try:
            if isinstance(sample, DataError):
                raise sample
            (check or check_sample)(sample)
            samples.append(sample)
        except DataError as error:
            problems.append(str(error))
    if problems:
        raise DataError(problem_list(problems, data_path))
    if not samples:
        raise DataError(f"{data_path}: no samples")
    return samples


def problem_list(problems: list[str], data_path: str | Path, shown: int = 20) -> str:
    listed = "\n  ".join(problems[:shown])
    more = (
        f"\n  ... and {len(problems) - shown} more (vlmtune validate lists them all)" if len(problems) > shown else ""
    )
    return f"{len(problems)} problem(s) in {data_path}:\n  {listed}{more}"
