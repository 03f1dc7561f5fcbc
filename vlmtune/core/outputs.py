"""Reading a model back for use after training: a registered id, a LoRA adapter output, or a full/merged model.

A `vlmtune train` output folder says which registered model it came from in `vlmtune_args.yaml`; that names
the family (loader, collator) and, for an adapter, the base checkpoint. A folder without that file (e.g. a
checkpoint from elsewhere) needs `model_id` to name the family. A conventional family (`conventional_family`)
leaves its end-of-turn, parts and capabilities to the checkpoint's files: `source_entry` reads and checks them
(the registered checkpoint's, or the output folder's own processor and config) before anything uses the record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from vlmtune.core.checkpoint import checked_entry
from vlmtune.core.modeling import checkpoint_path
from vlmtune.errors import ArgumentError
from vlmtune.supported_models import MODELS, ModelEntry, get_model

ARGS_FILE = "vlmtune_args.yaml"
ADAPTER_CONFIG = "adapter_config.json"
DTYPE_CHOICES = ("auto", "float32", "bfloat16", "float16")  # auto: the dtype the checkpoint is stored in


def is_adapter(folder: str | Path) -> bool:
    return (Path(folder) / ADAPTER_CONFIG).is_file()


def run_model_args(folder: str | Path) -> dict[str, Any]:
    """The ModelArguments recorded by the run that wrote `folder` (empty without a vlmtune_args.yaml)."""
    path = Path(folder) / ARGS_FILE
    if not path.is_file():
        return {}
    return (yaml.safe_load(path.read_text()) or {}).get("ModelArguments", {})


def entry_of(folder: str | Path, model_id: str | None = None) -> ModelEntry:
    """The registered model a folder belongs to: `model_id` if given, else the one its run recorded."""
    model_id = model_id or run_model_args(folder).get("model_id")
    if not model_id:
        raise ArgumentError(
            f"{folder}: cannot tell which model family this is (no {ARGS_FILE} from vlmtune train); "
            "pass --model_id with the registered id it was trained from"
        )
    return get_model(model_id)


def base_path(folder: str | Path, entry: ModelEntry, base: str | None = None) -> str:
    """The base checkpoint of an adapter folder: `base`, else the run's --model_local_path or registered path."""
    return base or checkpoint_path(entry, run_model_args(folder).get("model_local_path"))


def load_adapter_model(folder: str | Path, entry: ModelEntry, base: str | None = None, **load_kwargs: Any):
    """Base checkpoint + the LoRA adapter of `folder` (a PeftModel), and the processor saved with the adapter."""
    from peft import PeftModel
    from transformers import AutoProcessor

    model, _ = entry.family.load(base_path(folder, entry, base), **load_kwargs)
    model = PeftModel.from_pretrained(model, str(folder))
    remote_code = load_kwargs.get("trust_remote_code", False)
    processor = AutoProcessor.from_pretrained(str(folder), trust_remote_code=remote_code)
    return model, processor


def source_entry(
    source: str, model_id: str | None = None, base: str | None = None, trust_remote_code: bool = False
) -> ModelEntry:
    """The registered model of `source`: a registered id, or an output folder (see `entry_of`); for a conventional
    family, checked against the files `source` loads with and its derived fields filled in (`resolved_entry`)."""
    if Path(source).is_dir():
        return resolved_entry(entry_of(source, model_id), source, base, trust_remote_code)
    if source not in MODELS:
        raise ArgumentError(f"{source!r} is neither a folder nor a registered model id (vlmtune models lists them)")
    return resolved_entry(get_model(source), trust_remote_code=trust_remote_code)


def resolved_entry(
    entry: ModelEntry, folder: str | None = None, base: str | None = None, trust_remote_code: bool = False
) -> ModelEntry:
    """`entry` as registered for a hand-written family; for a conventional one, `checked_entry` on the files the
    model loads with: the registered checkpoint's, a full output `folder`'s own, or an adapter folder's processor on
    its base checkpoint's config. A hand-written record is checked by train, not on every load."""
    if not entry.family.derived:
        return entry
    if folder is None:
        return checked_entry(entry, trust_remote_code=trust_remote_code)
    if is_adapter(folder):
        return checked_entry(entry, base_path(folder, entry, base), trust_remote_code, processor_path=str(folder))
    return checked_entry(entry, str(folder), trust_remote_code)


def load_for_inference(
    source: str, model_id: str | None = None, base: str | None = None, entry: ModelEntry | None = None, **load_kwargs
):
    """(model, processor, entry) for a registered id, an adapter output folder or a full/merged model folder;
    `entry`: the one `source_entry` already gave for it (else it is found and checked here)."""
    remote_code = load_kwargs.get("trust_remote_code", False)
    entry = entry or source_entry(source, model_id, base, remote_code)
    if not Path(source).is_dir():
        model, processor = entry.family.load(checkpoint_path(entry), **load_kwargs)
    elif is_adapter(source):
        model, processor = load_adapter_model(source, entry, base, **load_kwargs)
    else:
        model, processor = entry.family.load(source, **load_kwargs)
    return model, processor, entry
