"""The shared core of every family collator: chat rendering, label masking, truncation guard and padding.

How labels are found (the same for every family, so that it is tested once):
1. The sample becomes chat messages, rendered with the processor's own chat template.
2. Each assistant reply is located in the rendering by rendering the conversation once more with sentinels in
   place of the replies (`vlmtune.collators.replies`), which works for any template revision; the trained span
   is the reply (plus what follows the generation prompt before it) and the family's end-of-turn text
   (`Family.reply_end`, or the eos that is appended to each reply when the template renders none).
   `{% generation %}` blocks, where a template has them, are cross-checked against these spans.
3. The unexpanded text is tokenized with offsets, so each token knows whether it lies in a reply.
4. The processor expands image/video placeholders into many tokens; the text between placeholders reappears
   unchanged, so the reply flags are carried over by a linear search (`vlmtune.collators.alignment`). Tokens only
   the expansion added are never trained.
A template that the core cannot read replies from ends in a one-line `TemplateError` naming the model.
Padding is by length (the attention mask comes from real lengths), so pad == eos never hides an eos label.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch

from vlmtune.collators.alignment import IGNORE_INDEX, align_labels, placeholder_spans, reply_flags
from vlmtune.collators.replies import (
    GENERATION_TAG,
    TemplateError,
    check_generation_spans,
    generation_spans,
    reply_starts,
    with_sentinels,
)
from vlmtune.datasets import ASSISTANT, IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER, Sample
from vlmtune.errors import BadSample

__all__ = ["IGNORE_INDEX", "TemplateError", "VLMCollator", "align_labels"]
# Where processors and tokenizers keep the ids of what they write for images and videos: the placeholders, the
# soft tokens the model counts (Gemma 3's processor.image_token_id is the bracket, its tokenizer's the soft token)
# and the brackets around them. The truncation guard treats all of them as one image it must not cut.
MEDIA_TOKEN_ATTRIBUTES = (
    "image_token_id",
    "image_break_token_id",  # Pixtral / Mistral 3: [IMG_BREAK] ends each row of an image, [IMG_END] the image
    "image_end_token_id",
    "video_token_id",
    "boi_token_id",
    "eoi_token_id",
    "start_image_token_id",
    "end_image_token_id",
    "fake_image_token_id",
    "global_image_token_id",
)
# Keys whose tensors run along the token sequence: padded and truncated with input_ids. ERNIE 4.5 VL's processor
# also returns moe_mm_token_type_ids, each token's expert group (0: text, as the padding is).
SEQUENCE_KEYS = (
    "input_ids",
    "labels",
    "attention_mask",
    "mm_token_type_ids",
    "token_type_ids",
    "moe_mm_token_type_ids",
)
# The processors' pixel tensors of images and of videos.
PIXEL_KEYS = ("pixel_values", "pixel_values_videos")


def media_token_ids(processor: Any) -> set[int]:
    """Every media token id that the processor or its tokenizer names (see MEDIA_TOKEN_ATTRIBUTES)."""
    ids = set()
    for owner in (processor, processor.tokenizer):
        for name in MEDIA_TOKEN_ATTRIBUTES:
            value = getattr(owner, name, None)
            if isinstance(value, int):
                ids.add(value)
    return ids


def split_placeholders(text: str) -> list[dict[str, str]]:
    """'<image>\\nWhat is it?' -> [{'type': 'image'}, {'type': 'text', 'text': 'What is it?'}]."""
    parts: list[dict[str, str]] = []
    rest = text
    while rest:
        positions = [(rest.find(p), p) for p in (IMAGE_PLACEHOLDER, VIDEO_PLACEHOLDER) if p in rest]
        if not positions:
            parts.append({"type": "text", "text": rest})
            break
        start, placeholder = min(positions)
        parts.append({"type": "text", "text": rest[:start]})
        parts.append({"type": "image" if placeholder == IMAGE_PLACEHOLDER else "video"})
        rest = rest[start + len(placeholder) :]
    # A newline next to a placeholder is layout ("<image>\n"): the template lays media out itself.
    for i, part in enumerate(parts):
        if part["type"] != "text":
            continue
        text = part["text"]
        if i > 0:
            text = text.lstrip("\n")
        if i < len(parts) - 1:
            text = text.rstrip("\n")
        part["text"] = text
    if parts and parts[0]["type"] == "text":
        parts[0]["text"] = parts[0]["text"].lstrip()
    if parts and parts[-1]["type"] == "text":
        parts[-1]["text"] = parts[-1]["text"].rstrip()
    return [p for p in parts if p["type"] != "text" or p["text"]]


def timed_video_inputs(inputs: dict[str, Any], videos: list) -> dict[str, Any]:
    """Processor inputs for videos that vlmtune has already sampled (`vlmtune.data.video.decode_video`), for
    processors that write frame times into the prompt (Qwen3-VL, Qwen3.5, SmolVLM2): no second sampling
    (`do_sample_frames=False`), and each video's real frame rate and frame numbers, which a `DecodedVideo`
    carries (a plain list of frames has none: the processor then guesses, e.g. 24 fps)."""
    if videos:
        from transformers.video_utils import VideoMetadata

        inputs["do_sample_frames"] = False
        inputs["video_metadata"] = [
            VideoMetadata(
                total_num_frames=len(frames),
                fps=getattr(frames, "fps", None),
                frames_indices=getattr(frames, "indices", None),
            )
            for frames in videos
        ]
    return inputs


class VLMCollator:
    """Encodes one sample to input ids and labels (`encode`) and pads a list of encoded samples (`__call__`).

    A family collator subclasses this for what really differs (e.g. how media tensors of several samples are
    put together, `merge_media`); a family whose processor has a chat template usually needs nothing else.
    Class attributes cover the common differences without an override:
    """

    # Media-layout tokens that no processor attribute names (see `media_token_ids`), by their text: the
    # truncation guard must know them too (Ovis2's <IMG_ATOM>..., Llama 4's <|patch|>...).
    media_tokens: tuple[str, ...] = ()
    # The template reads a system message's content as a plain string (a list of parts would render as its repr).
    system_prompt_as_string: bool = False
    # The processor writes frame times into the prompt (Qwen3-VL, SmolVLM2): give it the real ones.
    timed_videos: bool = False
    # Media tensors whose per-sample shape varies beyond dim 0 (anyres tiles, per-sample image stacks, images
    # kept at their aspect ratio): zero-padded to the batch's largest before they are concatenated.
    padded_media_keys: tuple[str, ...] = ()
    # The token type id of reply tokens (a GRPO completion appended to a prompt gets it); PaliGemma's suffix is 1.
    reply_token_type_id: int = 0

    def __init__(
        self,
        processor: Any,
        reply_end: str | None,
        model_max_length: int = 2048,
        pad_to_multiple_of: int | None = None,
    ):
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.reply_end = reply_end
        self.model_max_length = model_max_length
        self.pad_to_multiple_of = pad_to_multiple_of
        self.pad_token_id = self.tokenizer.pad_token_id
        if self.pad_token_id is None:
            self.pad_token_id = self.tokenizer.eos_token_id
        self.media_token_ids = media_token_ids(processor)
        vocab = self.tokenizer.get_vocab()
        self.media_token_ids |= {vocab[token] for token in self.media_tokens if token in vocab}
        # What the template writes where an image/video goes, which the processor replaces: a media token, or
        # plain text that the tokenizer splits (Ovis2's "<image>").
        named = [getattr(processor, name, None) for name in ("image_token", "video_token")]
        self.placeholder_texts = [text for text in named if isinstance(text, str) and text]

    # --- rendering ----------------------------------------------------------------------------------------

    def to_messages(self, sample: Sample) -> list[dict[str, Any]]:
        eos = self.tokenizer.eos_token if self.reply_end is None else ""
        messages = []
        if sample.system_prompt:
            content = sample.system_prompt
            if not self.system_prompt_as_string:
                content = [{"type": "text", "text": sample.system_prompt}]
            messages.append({"role": "system", "content": content})
        for turn in sample.turns:
            if turn.role == ASSISTANT:
                content = [{"type": "text", "text": turn.text.strip() + eos}]
            else:
                content = split_placeholders(turn.text)
            messages.append({"role": turn.role, "content": content})
        return messages

    @property
    def model_name(self) -> str:
        """The checkpoint the processor came from (its path), for error messages."""
        return getattr(self.tokenizer, "name_or_path", "") or type(self.processor).__name__

    def render(self, messages: list[dict[str, Any]], add_generation_prompt: bool = False) -> str:
        return self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def render_checked(self, messages: list[dict[str, Any]], source: str, add_generation_prompt: bool = False) -> str:
        """`render`, with the template's own refusals (`raise_exception`) as a BadSample naming the sample, and any
        other failure of the template as a TemplateError naming the model."""
        import jinja2

        try:
            return self.render(messages, add_generation_prompt)
        except jinja2.TemplateError as error:
            if type(error) is jinja2.TemplateError:  # the template's raise_exception: it refuses this sample
                message = f"{source}: the chat template of {self.model_name} refuses this sample: {error}"
                raise BadSample(message) from None
            raise self.template_error(source, error) from None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as error:
            raise self.template_error(source, error) from None

    def template_error(self, source: str, error: Exception) -> TemplateError:
        return TemplateError(
            f"{source}: the chat template of {self.model_name} cannot render this conversation "
            f"({type(error).__name__}: {error}); check the template (chat_template.json) or pass a working one "
            "with --model_local_path"
        )

    def generation_header(self, messages: list[dict[str, Any]], source: str = "") -> str:
        """What the generation prompt adds before a reply ("<|im_start|>assistant\\n", "ASSISTANT:", ...), as the
        template writes it before the conversation's first reply."""
        first = next(i for i, message in enumerate(messages) if message["role"] == ASSISTANT)
        prompt = self.render_checked(messages[:first], source, add_generation_prompt=True)
        return prompt[len(os.path.commonprefix([prompt, self.render_checked(messages[:first], source)])) :]

    def reply_spans(self, messages: list[dict[str, Any]], text: str, source: str = "") -> list[tuple[int, int]]:
        """Character spans of every assistant reply and its end-of-turn text in the rendered `text`."""
        marked, replies = with_sentinels(messages)
        starts = reply_starts(self.render_checked(marked, source), replies, text, self.model_name, source)
        header = self.generation_header(messages, source)
        spans, previous_end = [], 0
        for index, start in starts.items():
            end = start + len(replies[index])
            if self.reply_end is not None:
                if not text.startswith(self.reply_end, end):
                    raise TemplateError(
                        f"{source}: the chat template of {self.model_name} does not close a reply with "
                        f"{self.reply_end!r} (found {text[end : end + 20]!r}); the family's reply_end does not fit "
                        "this template revision"
                    )
                end += len(self.reply_end)
            # What the model writes after the generation prompt (e.g. the space in "ASSISTANT: 7") is trained, where
            # the turn opens with that prompt; a turn that opens otherwise (llava-onevision's hub revision writes
            # "assistant \n", Qwen3.5 history turns lack the think block) trains its reply and end-of-turn only.
            start = self.trained_start(messages, index, text, header, previous_end, start, source)
            spans.append((start, end))
            previous_end = end
        self.check_generation_tags(messages, text, starts, replies, source)
        return spans

    def trained_start(
        self,
        messages: list[dict[str, Any]],
        index: int,
        text: str,
        header: str,
        previous_end: int,
        reply_start: int,
        source: str,
    ) -> int:
        """Where the trained span of the reply at `reply_start` begins: at the end of the generation prompt when
        the turn opens with it and only whitespace follows it, else at the reply itself."""
        if header:  # found right before the reply: one search, no rendering per turn
            at = text.rfind(header, previous_end, reply_start)
            prompt_end = at + len(header) if at >= 0 else -1
        else:  # a template without a generation prompt (LLaVA-NeXT's): the conversation so far is the prompt
            prompt = self.render_checked(messages[:index], source, add_generation_prompt=True)
            prompt_end = len(prompt) if text.startswith(prompt) else -1
        if previous_end <= prompt_end <= reply_start and not text[prompt_end:reply_start].strip():
            return prompt_end
        return reply_start

    def check_generation_tags(
        self, messages: list[dict[str, Any]], text: str, starts: dict[int, int], replies: dict[int, str], source: str
    ) -> None:
        """Where the template marks replies with `{% generation %}`, its blocks must agree with the located replies."""
        template = getattr(self.processor, "chat_template", None)
        if not isinstance(template, str) or not GENERATION_TAG.search(template):
            return
        located = [(start, start + len(replies[index])) for index, start in starts.items()]
        generation = generation_spans(self.tokenizer, template, messages)
        check_generation_spans(generation, located, self.model_name, source)

    # --- encoding -----------------------------------------------------------------------------------------

    def adds_bos(self, text: str) -> bool:
        """Whether tokenizing `text` should add special tokens: not when the template already wrote the bos."""
        bos = self.tokenizer.bos_token
        return not (bos and text.startswith(bos))

    def processor_inputs(self, text: str, images: list, videos: list) -> dict[str, Any]:
        inputs: dict[str, Any] = {"text": [text], "return_tensors": "pt", "add_special_tokens": self.adds_bos(text)}
        if images:
            inputs["images"] = images
        if videos:
            inputs["videos"] = videos
        return inputs

    def run_processor(self, **inputs: Any) -> Any:
        """Call the processor (placeholder expansion and media tensors), for training samples and for prompts.

        Override only where the processor rewrites the rendered text itself (PaliGemma's adds its own <bos>).
        """
        if self.timed_videos and inputs.get("videos"):
            inputs = timed_video_inputs(inputs, inputs["videos"])
        return self.processor(**inputs)

    def encode(self, sample: Sample, images: list, videos: list) -> dict[str, torch.Tensor]:
        messages = self.to_messages(sample)
        text = self.render_checked(messages, sample.source)
        spans = self.reply_spans(messages, text, sample.source)
        plain = self.tokenizer(text, return_offsets_mapping=True, add_special_tokens=self.adds_bos(text))
        in_reply = reply_flags(plain["offset_mapping"], spans)
        is_placeholder = self.placeholder_flags(text, plain["input_ids"], plain["offset_mapping"])
        features = dict(self.run_processor(**self.processor_inputs(text, images, videos)))
        input_ids = features["input_ids"][0]
        where = f"{sample.source} ({self.model_name})"
        labels = align_labels(plain["input_ids"], in_reply, input_ids.tolist(), is_placeholder, where)
        features["input_ids"] = input_ids
        features["labels"] = labels
        features.pop("attention_mask", None)  # rebuilt from real lengths when padding
        for key in SEQUENCE_KEYS:
            if key in features and key not in ("input_ids", "labels"):
                features[key] = features[key][0]
        return self.truncate(features, sample.source)

    def placeholder_flags(self, text: str, ids: list[int], offsets: list[tuple[int, int]]) -> np.ndarray:
        """Which unexpanded tokens the processor replaces: media tokens and the pieces of placeholder text."""
        in_text = reply_flags(offsets, placeholder_spans(text, self.placeholder_texts))
        return in_text | np.isin(np.asarray(ids, dtype=np.int64), list(self.media_token_ids))

    def truncate(self, features: dict[str, torch.Tensor], source: str) -> dict[str, torch.Tensor]:
        """Cut to `model_max_length`, never inside image/video tokens, and never leave nothing to train."""
        length = len(features["input_ids"])
        if length > self.model_max_length:
            media = [i for i, t in enumerate(features["input_ids"].tolist()) if t in self.media_token_ids]
            if media and media[-1] >= self.model_max_length:
                raise BadSample(
                    f"{source}: {length} tokens after image/video expansion; model_max_length="
                    f"{self.model_max_length} would cut its image/video tokens (raise model_max_length, or use "
                    "smaller or fewer images)"
                )
            for key in SEQUENCE_KEYS:
                if key in features:
                    features[key] = features[key][: self.model_max_length]
        if not (features["labels"] != IGNORE_INDEX).any():
            raise BadSample(
                f"{source}: no assistant token is left to train on within model_max_length={self.model_max_length} "
                f"({length} tokens); raise model_max_length or shorten the sample"
            )
        return features

    # --- batching -----------------------------------------------------------------------------------------

    def __call__(self, features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        longest = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            longest = -(-longest // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch = {
            "input_ids": pad([f["input_ids"] for f in features], longest, self.pad_token_id),
            "labels": pad([f["labels"] for f in features], longest, IGNORE_INDEX),
            "attention_mask": pad([torch.ones_like(f["input_ids"]) for f in features], longest, 0),
        }
        for key in features[0]:
            if key in batch:
                continue
            if key in SEQUENCE_KEYS:
                batch[key] = pad([f[key] for f in features], longest, 0)
        batch.update(self.merge_all_media(features))
        return batch

    def merge_all_media(self, features: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        """Every media tensor of the samples, put together in sample order (`merge_media` per key)."""
        media_keys = {key for f in features for key in f if key not in SEQUENCE_KEYS}
        return {key: self.merge_media(key, [f[key] for f in features if key in f]) for key in sorted(media_keys)}

    def merge_media(self, key: str, values: list[torch.Tensor]) -> torch.Tensor:
        """Put one media tensor of several samples together along dim 0 (padded first for `padded_media_keys`)."""
        if key in self.padded_media_keys:
            return pad_and_concat(values)
        return torch.cat(values, dim=0)


def pad_and_concat(values: list[torch.Tensor]) -> torch.Tensor:
    """Concatenate on dim 0 after zero-padding every other dim to the largest in the batch.

    For media whose per-sample shape varies beyond dim 0 (anyres tiles, per-sample image stacks); the models
    drop all-zero padding using their size tensors (`image_sizes`) or masks.
    """
    shape = [max(value.shape[d] for value in values) for d in range(1, values[0].dim())]
    padded = []
    for value in values:
        out = value.new_zeros((value.shape[0], *shape))
        out[tuple(slice(0, n) for n in value.shape)] = value
        padded.append(out)
    return torch.cat(padded, dim=0)


def pad(rows: list[torch.Tensor], length: int, value: int) -> torch.Tensor:
    """Right-pad 1-D tensors to `length` and stack them."""
    out = torch.full((len(rows), length), value, dtype=rows[0].dtype)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out
