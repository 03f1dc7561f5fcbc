"""Check a checkpoint's own files (config, processor, chat template, generation config) before any weight is read.

    vlmtune check tiny-qwen2-vl                                   # a registered id: its record against its files
    vlmtune check /data/my-vlm                                    # a folder: everything derived by convention
    vlmtune check /data/my-vlm --model_id qwen2-vl-7b-instruct    # a folder against a family's record

What is derived comes from `vlmtune.loaders.convention`. A family record's hand-written values are checked against
the files (its end-of-turn closes every probe reply, what it accepts the template renders, its prefixes match the
model's modules); the fields a conventional record leaves to derivation (`Family.derived`) are filled in from them.
`vlmtune train`, `grpo` and `validate --model_id` run the same checks first (`checked_entry`), so a checkpoint whose
template was altered is refused before its weights load, with one line per failed check.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from vlmtune.collators.base import VLMCollator
from vlmtune.core.modeling import checkpoint_path
from vlmtune.errors import BadSample, DataError
from vlmtune.loaders import convention
from vlmtune.loaders.convention import ConventionError, Parts, part_of
from vlmtune.supported_models import CAPABILITIES, Family, ModelEntry, ModulePrefixes, conventional_family

logger = logging.getLogger("vlmtune")

# The probe shape that shows each capability (vlmtune.loaders.convention.probe_sample).
SHAPE_OF = {
    "system_prompt": "system",
    "system_prompt_with_images": "system_images",
    "multi_image": "multi_image",
    "video": "video",
    "multi_turn": "multi_turn",
}
LABELS = {
    "system_prompt": "system prompt",
    "system_prompt_with_images": "system prompt with images",
    "multi_image": "several images",
    "video": "video",
    "multi_turn": "several turns",
}


class CheckpointCheckError(DataError):
    """A checkpoint whose files fail a check; one line per failed check."""


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class CheckReport:
    path: str
    facts: list[tuple[str, str]] = field(default_factory=list)  # what was derived, for people to read
    checks: list[Check] = field(default_factory=list)
    family: Family | None = None  # the record, with its derived fields filled in from the files

    @property
    def failures(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]

    def add(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(Check(name, passed, detail))

    def lines(self) -> list[str]:
        width = max((len(name) for name, _ in self.facts), default=0)
        lines = [f"{name:<{width}}  {value}" for name, value in self.facts]
        return lines + [f"{'pass' if c.passed else 'FAIL'}  {c.name}: {c.detail}" for c in self.checks]

    def failure_lines(self) -> str:
        return "\n".join(f"{self.path}: check '{c.name}' failed: {c.detail}" for c in self.failures)


def open_files(path: str, trust_remote_code: bool = False, processor_path: str | None = None) -> tuple[Any, Any, Any]:
    """(config, processor, generation config or None) of a checkpoint; no weights. `processor_path`: where the
    processor is read instead (a LoRA adapter output holds its processor, its base checkpoint the config)."""
    from transformers import AutoConfig, AutoProcessor, GenerationConfig

    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    processor = AutoProcessor.from_pretrained(processor_path or path, trust_remote_code=trust_remote_code)
    try:
        generation_config = GenerationConfig.from_pretrained(path)
    except OSError:  # no generation_config.json: the model config's eos is the stop token
        generation_config = GenerationConfig.from_model_config(config)
    return config, processor, generation_config


def check_checkpoint(
    path: str, family: Family | None = None, trust_remote_code: bool = False, processor_path: str | None = None
) -> CheckReport:
    """Derive what the files give and check `family`'s record against them (no record: derive everything);
    `processor_path`: a folder whose processor is checked instead of `path`'s (an adapter output, see open_files)."""
    report = CheckReport(processor_path or path)
    try:
        config, processor, generation_config = open_files(path, trust_remote_code, processor_path)
    except (OSError, ValueError, KeyError) as error:
        report.add("files", False, f"cannot read the config or processor ({type(error).__name__}: {error})")
        return report
    template = getattr(processor, "chat_template", None)
    if not (isinstance(template, str) or isinstance(template, dict) and "default" in template):
        report.add("files", False, "the processor has no chat template (chat_template.jinja / chat_template.json)")
        return report
    report.add("files", True, "config, processor, chat template and generation config read; no weights")
    report.facts.append(("model type", f"{config.model_type} ({type(processor).__name__})"))
    derived = family.derived if family else ("modules", "reply_end", *CAPABILITIES)
    collator_class = family.collator if family else VLMCollator
    stops = convention.stop_tokens(processor.tokenizer, generation_config)
    report.facts.append(("stop tokens", ", ".join(repr(text) for text in stops.values()) or "none"))
    check_media(report, processor)
    record_modules = family.modules if family and "modules" not in derived else None
    modules = check_parts(report, config, record_modules, trust_remote_code)
    # The probes render the replies as written (nothing appended), so the template's own end-of-turn is seen.
    plain = collator_class(processor, "")
    found = convention.capabilities(plain)
    resolved = check_capabilities(report, found, family, derived)
    reply_end = check_end_of_turn(report, plain, stops, family.reply_end if family else None, "reply_end" in derived)
    # Shapes the record claims but the template refuses already failed above; the rest must give their replies.
    accepted = {name: value and found[name].value for name, value in resolved.items()}
    check_replies(report, collator_class(processor, reply_end), plain, accepted)
    values = {"modules": modules, "reply_end": reply_end, **resolved}
    base = family or conventional_family("(by convention)", build_tiny=None)
    report.family = replace(base, **{name: values[name] for name in derived}) if not report.failures else family
    return report


def check_media(report: CheckReport, processor: Any) -> None:
    try:
        tokens = convention.media_tokens(processor)
    except ConventionError as error:
        report.add("media tokens", False, str(error))
        return
    shown = [
        f"{kind} {text!r} (id {token_id if token_id is not None else 'none: plain text'})"
        for kind, (text, token_id) in tokens.items()
    ]
    report.facts.append(("media tokens", ", ".join(shown)))


def check_parts(
    report: CheckReport, config: Any, record: ModulePrefixes | None, trust_remote_code: bool = False
) -> ModulePrefixes | None:
    """Derived parts (or the record's), checked: each prefix names a module, each part holds parameters."""
    try:
        model = convention.meta_model(config, trust_remote_code)
    except (ValueError, KeyError, TypeError) as error:
        report.add("parts", False, f"the model cannot be built from its config on the meta device ({error})")
        return None
    try:
        derived: Parts | None = convention.parts(model)
        report.facts.append(("parts (derived)", describe_parts(derived)))
    except ConventionError as error:
        derived = None
        report.facts.append(("parts (derived)", f"none: {error}"))
    prefixes = record or (ModulePrefixes(**vars(derived)) if derived else None)
    if prefixes is None:
        report.add("parts", False, "cannot be derived and the family has no record of them")
        return None
    # A prefix names a module or a parameter (LLaVA-NeXT's `model.image_newline`); one of `others` may be absent
    # (a checkpoint without Gemma's audio tower): that part is never trained.
    names = {name for name, _ in model.named_modules()} | {name for name, _ in model.named_parameters()}
    trained = (prefixes.llm, prefixes.vision_encoder, prefixes.vision_projector)
    missing = [prefix for part in trained for prefix in part if prefix not in names]
    counts: dict[str, int] = {}
    for name, parameter in model.named_parameters():
        counts[part_of(name, prefixes)] = counts.get(part_of(name, prefixes), 0) + parameter.numel()
    empty = [part for part in ("llm", "vision_encoder", "vision_projector") if not counts.get(part)]
    source = "record" if record else "derived"
    if missing or empty:
        problem = f"prefixes that name no module {missing}" if missing else f"parts without parameters {empty}"
        report.add("parts", False, f"the {source} prefixes do not fit {type(model).__name__}: {problem}")
        return None
    sizes = ", ".join(f"{part} {count:,}" for part, count in counts.items())
    same = record is None or (derived and same_partition(model, record, derived))
    note = (
        ""
        if same
        else f"; the record differs from the derived parts ({describe_parts(derived) if derived else 'none'})"
    )
    report.add("parts", True, f"every parameter in one part ({source}: {sizes}){note}")
    return prefixes


def same_partition(model: Any, first: Any, second: Any) -> bool:
    return all(part_of(name, first) == part_of(name, second) for name, _ in model.named_parameters())


def describe_parts(parts: Any) -> str:
    shown = {"llm": "language", "vision_encoder": "vision", "vision_projector": "projector", "others": "others"}
    return "; ".join(
        f"{label} {', '.join(getattr(parts, key))}" for key, label in shown.items() if getattr(parts, key)
    )


def check_capabilities(
    report: CheckReport, found: dict[str, convention.Capability], family: Family | None, derived: tuple[str, ...]
) -> dict[str, bool]:
    """Derived capabilities; a record's claim that the template does not back is a failure (a record may claim
    less: e.g. no video where the prompt would need frame times that vlmtune does not give)."""
    resolved = {}
    for name in CAPABILITIES:
        capability = found[name]
        claimed = capability.value if name in derived else getattr(family, name)
        if name == "system_prompt_with_images" and not (resolved.get("system_prompt")):
            claimed = claimed and capability.value
        resolved[name] = claimed
        shown = "yes" if capability.value else f"no ({capability.why})"
        if claimed and not capability.value:
            report.add(
                LABELS[name],
                False,
                f"the family record takes it, but {capability.why}; if this checkpoint takes less, register it with "
                f"{name}=False (docs/add_new_model.md)",
            )
        elif claimed or not capability.value:
            report.add(LABELS[name], True, shown)
        else:
            report.add(LABELS[name], True, f"{shown}; the family record does not take it")
    return resolved


def check_end_of_turn(
    report: CheckReport, plain: VLMCollator, stops: dict[int, str], record: str | None, derive: bool
) -> str | None:
    """The derived end-of-turn; a record's must close every probe reply (checked in `check_replies`)."""
    try:
        derived = convention.end_of_turn(plain, stops)
        shown = (
            repr(derived)
            if derived is not None
            else f"none written: the eos {plain.tokenizer.eos_token!r} is appended"
        )
    except (ConventionError, BadSample) as error:
        derived, shown = None, f"cannot be derived: {error}"
        if derive:
            report.add("end-of-turn", False, shown)
            return None
    report.facts.append(("end-of-turn (derived)", shown))
    if derive:
        return derived
    if record != derived:
        report.facts.append(("end-of-turn (record)", repr(record)))
    return record


def check_replies(report: CheckReport, collator: VLMCollator, plain: VLMCollator, accepted: dict[str, bool]) -> None:
    """Each probe the family accepts: its replies found unchanged (sentinels), each closed by the end-of-turn."""
    shapes = ["single"] + [SHAPE_OF[name] for name, ok in accepted.items() if ok]
    unchanged, closed = [], []
    for shape in shapes:
        try:
            convention.check_replies(plain, shape)
        except (DataError, BadSample) as error:
            unchanged.append(f"{shape}: {str(error).partition(': ')[2]}")
            continue
        messages = collator.to_messages(convention.probe_sample(shape))
        try:
            text = collator.render_checked(messages, convention.PROBE_SOURCE)
            collator.reply_spans(messages, text, convention.PROBE_SOURCE)
        except (DataError, BadSample) as error:
            closed.append(f"{shape}: {str(error).partition(': ')[2]}")
    report.add("replies", not unchanged, unchanged[0] if unchanged else f"found unchanged in {len(shapes)} probes")
    if unchanged:
        return
    end = repr(collator.reply_end) if collator.reply_end is not None else "the appended eos"
    report.add("end-of-turn", not closed, closed[0] if closed else f"{end} closes every reply")


def checked_entry(
    entry: ModelEntry,
    local_path: str | None = None,
    trust_remote_code: bool = False,
    processor_path: str | None = None,
) -> ModelEntry:
    """`entry` after its checkpoint (or `local_path`) passed every check, with a conventional record's derived
    fields filled in; `CheckpointCheckError` (one line per failed check) otherwise. `processor_path`: the folder
    whose processor is used instead of the checkpoint's (an adapter output on its base checkpoint)."""
    path = checkpoint_path(entry, local_path)
    report = check_checkpoint(path, entry.family, trust_remote_code, processor_path)
    if report.failures:
        command = (
            f"vlmtune check {local_path} --model_id {entry.model_id}"
            if local_path
            else f"vlmtune check {entry.model_id}"
        )
        raise CheckpointCheckError(f"{report.failure_lines()}\nsee every check: {command}")
    logger.info("checkpoint checks passed: %s (%d checks)", path, len(report.checks))
    return replace(entry, resolved=report.family) if entry.family.derived else entry
