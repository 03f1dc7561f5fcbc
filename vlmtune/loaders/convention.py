"""A family by convention: what a checkpoint's own files say about it, derived without its weights.

    vlmtune check tiny-qwen2-vl                  # what is derived here, and each check (vlmtune/core/checkpoint.py)
    vlmtune check /data/checkpoints/my-vlm       # a local folder (config, processor, chat template, generation config)

Most transformers 5 VLMs share one layout: `model.language_model`, a vision tower, a projector; a processor naming
`image_token` / `video_token`; a chat template taking image and video parts. For such a checkpoint the facts a
family record holds are read from its files (the model is built on the meta device: no weights are read):

- `end_of_turn`: what the template writes right after an assistant reply, up to and including a stop token of the
  generation config (None: it writes none, so the tokenizer's eos is appended to each reply, as for LLaVA-1.5);
- `parts`: the parameter prefixes of language model, vision tower and projector (`model.named_modules()`);
- `media_tokens`: the processor's image and video tokens and their ids;
- `capabilities`: whether the template takes a system prompt, several images, a video, several turns (probes);
- the replies of every probe are found unchanged by the masking core's sentinel rendering (`collators/replies.py`).

Anything that cannot be derived unambiguously raises `ConventionError` with the reason; nothing is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlmtune.collators.base import VLMCollator
from vlmtune.collators.replies import SENTINEL, reply_starts, with_sentinels
from vlmtune.datasets import ASSISTANT, IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, Sample, Turn
from vlmtune.errors import BadSample, DataError

# The inner model's language model, vision part and projector names that transformers 5 VLMs use (measured on
# the 97 image-text-to-text types of transformers 5.23, docs FIELD-NOTES 2026-12-07). The projector of Qwen-style
# models sits inside the vision part (`visual.merger`), Llama 4's pixel-shuffle adapter too (`vision_adapter`).
LANGUAGE_NAMES = ("language_model", "text_model")
VISION_NAMES = ("vision_tower", "visual", "vision_model")
# Gemma 3n / Gemma 4 embed the vision tower's soft tokens with `embed_vision` (their projector).
PROJECTOR_NAMES = (
    "multi_modal_projector",
    "connector",
    "merger",
    "aligner",
    "projector",
    "resampler_model",
    "embed_vision",
)
NESTED_PROJECTOR_NAMES = ("merger", "deepstack_merger_list", "vision_adapter")
HEAD_NAMES = ("lm_head",)
PROBE_SYSTEM = "Probe system text."
SECOND_QUESTION = "Are you sure?"
PROBE_SOURCE = "probe"


class ConventionError(DataError):
    """A fact that a checkpoint's files do not give unambiguously; the message says why."""


@dataclass(frozen=True)
class Parts:
    """Parameter prefixes per part, as `ModulePrefixes` holds them (the record's type lives in the registry)."""

    vision_encoder: tuple[str, ...]
    vision_projector: tuple[str, ...]
    llm: tuple[str, ...]
    others: tuple[str, ...] = ()


@dataclass
class Capability:
    value: bool
    why: str = ""  # why not, where the template refuses or drops it


def probe_sample(shape: str) -> Sample:
    """A small sample of one shape: 'single', 'system', 'system_images', 'multi_image', 'video', 'multi_turn'."""
    image = IMAGE_PLACEHOLDER + "\n"
    user = {"multi_image": image * 2, "video": VIDEO_PLACEHOLDER + "\n", "system": ""}.get(shape, image)
    turns = [Turn("user", user + "Which digit is shown?"), Turn(ASSISTANT, "Seven.")]
    if shape == "multi_turn":
        turns += [Turn("user", SECOND_QUESTION), Turn(ASSISTANT, "Yes, seven.")]
    system = PROBE_SYSTEM if shape in ("system", "system_images") else None
    return Sample(turns=turns, system_prompt=system, source=f"{PROBE_SOURCE} ({shape})")


def stop_tokens(tokenizer: Any, generation_config: Any) -> dict[int, str]:
    """The generation config's stop token ids (one id or a list) and the tokenizer's eos, with their text."""
    ids = getattr(generation_config, "eos_token_id", None) if generation_config is not None else None
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return {i: tokenizer.decode([i]) for i in dict.fromkeys(ids)}


def render_probe(collator: VLMCollator, shape: str, sentinels: bool = False) -> tuple[str, dict[int, str]]:
    """The probe of `shape` rendered with the collator's template (replies as sentinels if asked), and its replies."""
    messages = collator.to_messages(probe_sample(shape))
    marked, replies = with_sentinels(messages)
    return collator.render_checked(marked if sentinels else messages, PROBE_SOURCE), replies


def check_replies(collator: VLMCollator, shape: str) -> None:
    """The masking core finds each reply of the probe unchanged (raises TemplateError / BadSample otherwise)."""
    marked_text, replies = render_probe(collator, shape, sentinels=True)
    text, _ = render_probe(collator, shape)
    reply_starts(marked_text, replies, text, collator.model_name, f"{PROBE_SOURCE} ({shape})")


def end_of_turn(collator: VLMCollator, stops: dict[int, str]) -> str | None:
    """What the template writes after an assistant reply, up to and including a stop token; None if it writes no
    stop token before the next turn (the eos is then appended to each reply). The collator must append nothing to
    a reply (`reply_end=""`), so that the template's own text is seen. Every reply of the single and the two-turn
    probe must agree (a template that takes one exchange only, as PaliGemma's, shows the single one)."""
    if not stops:
        raise ConventionError("neither the generation config nor the tokenizer names a stop token (eos)")
    followers = []
    for shape in ("single", "multi_turn"):
        try:
            check_replies(collator, shape)
        except (DataError, BadSample) as error:
            if shape == "single":
                raise ConventionError(f"the probe's reply is not found unchanged: {error}") from None
            continue  # no second exchange: the capability check says so
        text, replies = render_probe(collator, shape, sentinels=True)
        for index in replies:
            # The window ends where the next user text starts: a stop token after it does not end this reply.
            window = text.split(SENTINEL.format(index), 1)[1].split(SECOND_QUESTION, 1)[0]
            found = sorted((window.find(stop), -len(stop), stop) for stop in stops.values() if stop and stop in window)
            if not found:
                refuse_unstopped_marker(collator.tokenizer, window, stops)
            followers.append(window[: found[0][0] + len(found[0][2])] if found else None)
    if len(set(followers)) > 1:
        raise ConventionError(
            f"the template closes replies differently ({' / '.join(map(repr, followers))}): which text ends a reply "
            "is ambiguous"
        )
    return followers[0]


def refuse_unstopped_marker(tokenizer: Any, window: str, stops: dict[int, str]) -> None:
    """A reply followed by a special token that is no stop token (Idefics3's "<end_of_utterance>" where the
    generation config stops on eos only): whether it or an appended eos ends a reply is ambiguous."""
    specials = {token.content for token in tokenizer.added_tokens_decoder.values() if token.special}
    follows = next(
        (token for token in sorted(specials, key=len, reverse=True) if window.lstrip().startswith(token)), None
    )
    if follows:
        raise ConventionError(
            f"the template closes a reply with {follows!r}, which is no stop token of the generation config "
            f"({', '.join(map(repr, stops.values()))}): whether it or an appended eos ends a reply is ambiguous"
        )


def capabilities(collator: VLMCollator) -> dict[str, Capability]:
    """What the template takes, by rendering probes: a template that raises, drops the system text or writes
    fewer media tokens than the probe has does not take that shape (probes that render but lose a reply are the
    replies check's: `check_replies`)."""
    found = {}
    for name, shape in (
        ("system_prompt", "system"),
        ("system_prompt_with_images", "system_images"),
        ("multi_image", "multi_image"),
        ("video", "video"),
        ("multi_turn", "multi_turn"),
    ):
        found[name] = probe_capability(collator, shape)
    return found


def probe_capability(collator: VLMCollator, shape: str) -> Capability:
    if shape == "video" and not getattr(collator.processor, "video_token", None):
        return Capability(False, "the processor names no video_token")
    try:
        text, _ = render_probe(collator, shape)  # whether its replies are found is the replies check's
    except (DataError, BadSample) as error:
        return Capability(False, f"the template refuses it ({str(error).partition(': ')[2]})")
    if shape.startswith("system") and PROBE_SYSTEM not in text:
        return Capability(False, "the template drops the system text")
    token = (
        collator.processor.image_token if shape == "multi_image" else getattr(collator.processor, "video_token", "")
    )
    if shape in ("multi_image", "video"):
        single, _ = render_probe(collator, "single")
        expected = 2 * single.count(token) if shape == "multi_image" else 1
        if token and text.count(token) < expected:
            return Capability(False, f"the template writes {text.count(token)} {token!r} for it, not {expected}")
    return Capability(True)


def media_tokens(processor: Any) -> dict[str, tuple[str, int | None]]:
    """The processor's image and video tokens and their ids (None: plain text the tokenizer splits)."""
    tokens = {}
    for kind in ("image", "video"):
        text = getattr(processor, f"{kind}_token", None)
        if isinstance(text, str) and text:
            token_id = processor.tokenizer.convert_tokens_to_ids(text)
            tokens[kind] = (text, token_id if token_id != processor.tokenizer.unk_token_id else None)
    if "image" not in tokens:
        raise ConventionError("the processor names no image_token, so image placeholders cannot be found")
    return tokens


def meta_model(config: Any, trust_remote_code: bool = False) -> Any:
    """The checkpoint's model class built from its config on the meta device: module names, no memory, no weights."""
    import torch
    from transformers import AutoModelForImageTextToText

    # An omni checkpoint (Qwen2.5-Omni, Qwen3-Omni) is its thinker plus speech parts: vlmtune trains the thinker.
    config = getattr(config, "thinker_config", None) or config
    with torch.device("meta"):
        return AutoModelForImageTextToText.from_config(config, trust_remote_code=trust_remote_code)


def parts(model: Any) -> Parts:
    """Language model / vision / projector prefixes of a (meta-device) model, by the conventional names; whatever
    else holds parameters goes to `others` (frozen in every mode). Missing or doubled parts: ConventionError."""
    names = {name for name, _ in model.named_modules()}
    root = "model." if "model" in names else ""
    llm = [root + n for n in LANGUAGE_NAMES if root + n in names]
    vision = [root + n for n in VISION_NAMES if root + n in names]
    if len(llm) != 1 or len(vision) != 1:
        raise ConventionError(
            f"{type(model).__name__} has {len(llm)} language model(s) {llm} and {len(vision)} vision part(s) "
            f"{vision} under {root or 'the model'}; the convention needs one of each "
            f"({LANGUAGE_NAMES}, {VISION_NAMES})"
        )
    projector = [root + n for n in PROJECTOR_NAMES if root + n in names]
    projector += [f"{vision[0]}.{n}" for n in NESTED_PROJECTOR_NAMES if f"{vision[0]}.{n}" in names]
    if not projector:
        raise ConventionError(
            f"{type(model).__name__} has no projector named {PROJECTOR_NAMES} under {root or 'the model'} nor "
            f"{NESTED_PROJECTOR_NAMES} in {vision[0]}"
        )
    heads = [n for n in HEAD_NAMES if n in names]
    known = [*llm, *vision, *projector, *heads]
    others = sorted({top_module(name, root) for name, _ in model.named_parameters() if not under(name, known)})
    return Parts(tuple(vision), tuple(projector), (*llm, *heads), tuple(others))


PARTS = ("vision_encoder", "vision_projector", "llm", "others")


def part_of(name: str, prefixes: Any) -> str:
    """The part ('llm', 'vision_encoder', ...) a module or parameter path belongs to; longest prefix wins.

    `prefixes`: a `Parts` or the registry's `ModulePrefixes` (the same four fields)."""
    best, best_length = "others", -1
    for part in PARTS:
        for prefix in getattr(prefixes, part):
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best_length:
                best, best_length = part, len(prefix)
    return best


def under(name: str, prefixes: list[str] | tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def top_module(name: str, root: str) -> str:
    """'model.image_newline' -> itself, 'model.audio_tower.x.weight' -> 'model.audio_tower' (root 'model.')."""
    rest = name.removeprefix(root) if name.startswith(root) else name
    return (root if name.startswith(root) else "") + rest.split(".")[0]
