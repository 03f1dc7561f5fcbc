"""Carry the reply flags of the unexpanded tokens over to the processor's expanded tokens, in linear time.

What a processor does to the rendered text is narrow: it replaces each image/video placeholder by a run of
media tokens (often with brackets, row markers, newlines or frame times around them) and leaves everything else
alone. So the unexpanded ids split at their placeholders (media tokens, or the tokens of a placeholder written as
plain text, e.g. Ovis2's "<image>") into text segments that reappear, unchanged and in
order, in the expanded ids. Only the segments that hold reply tokens need to be found, and each is found by one
left-to-right search from where the previous one ended (`str.find` over one character per token id, a linear C
search): labels are then copied position by position. The one or two tokens of a segment that touch a
placeholder may change (inserted text merges with them, e.g. Gemma 3's "\\n\\n" around an image), so they are
left out of the search, and a few more if the segment is not found with them.

If a reply's segment is not in the expanded ids, the processor changed more than its placeholders (e.g. tokens
of a reply): that is an error naming the sample, never a guess.

    labels = align_labels(plain_ids, in_reply, expanded_ids, is_placeholder, "data.json sample 3")
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from vlmtune.errors import BadSample

IGNORE_INDEX = -100
# Tokens next to a placeholder that inserted text may have merged with, tried in turn before giving up.
BOUNDARY_TRIMS = (1, 2, 3, 4)


def reply_flags(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each token (its character offsets), whether it starts inside one of the sorted, disjoint `spans`."""
    starts = np.array([start for start, _ in offsets], dtype=np.int64)
    flags = np.zeros(len(starts), dtype=bool)
    if len(spans) and len(starts):
        span_starts, span_ends = np.array(spans, dtype=np.int64).T
        after = np.searchsorted(span_ends, starts, side="right")  # the first span that ends after the token start
        inside = after < len(spans)
        flags[inside] = span_starts[after[inside]] <= starts[inside]
    return flags


def placeholder_spans(text: str, placeholders: Sequence[str]) -> list[tuple[int, int]]:
    """Sorted character spans of every occurrence of the placeholder strings in `text`."""
    spans = []
    for placeholder in placeholders:
        at = text.find(placeholder)
        while at >= 0:
            spans.append((at, at + len(placeholder)))
            at = text.find(placeholder, at + len(placeholder))
    return sorted(spans)


def text_segments(is_placeholder: Sequence[bool]) -> list[tuple[int, int]]:
    """[start, end) of every maximal run of tokens that are not placeholders."""
    text = np.concatenate([[False], ~np.asarray(is_placeholder, dtype=bool), [False]])
    edges = np.flatnonzero(np.diff(text.astype(np.int8)))
    return [(int(start), int(end)) for start, end in zip(edges[::2], edges[1::2], strict=True)]


def as_text(ids: Sequence[int]) -> str:
    """One character per token id, so that `str.find` searches token sequences (ids are < 0x110000)."""
    return "".join(map(chr, ids))


def align_labels(
    plain_ids: Sequence[int],
    in_reply: Sequence[bool],
    expanded_ids: Sequence[int],
    is_placeholder: Sequence[bool],
    source: str,
) -> torch.Tensor:
    """Labels for `expanded_ids`: the token id where the matching unexpanded token is in a reply, else -100.

    `in_reply` and `is_placeholder` flag the unexpanded tokens (`plain_ids`) that are trained and that the
    processor replaces (image/video placeholders).
    """
    labels = np.full(len(expanded_ids), IGNORE_INDEX, dtype=np.int64)
    plain, expanded = as_text(plain_ids), as_text(expanded_ids)
    plain_array, reply_array = np.asarray(plain_ids, dtype=np.int64), np.asarray(in_reply, dtype=bool)
    position = 0  # the expanded ids before this are taken
    for start, end in text_segments(is_placeholder):
        replies = np.flatnonzero(reply_array[start:end]) + start
        if not len(replies):
            continue
        found = find_segment(plain, expanded, position, start, end, int(replies[0]), int(replies[-1]) + 1)
        if found is None:
            raise BadSample(
                f"{source}: the processor changed tokens of an assistant reply (or the text around it) while "
                "expanding images/videos, so the trained tokens cannot be found in its output; check the sample's "
                "reply text (e.g. image/video placeholders or special tokens in it)"
            )
        core_start, match = found
        labels[match + replies - core_start] = plain_array[replies]
        position = match + end - core_start
    return torch.from_numpy(labels)


def find_segment(
    plain: str, expanded: str, position: int, start: int, end: int, first_reply: int, reply_end: int
) -> tuple[int, int] | None:
    """(first searched unexpanded index, its expanded index) of segment [start, end), or None.

    The segment's ends that touch a placeholder (any start > 0, any end < len(plain)) are trimmed by 1, 2, ...
    tokens, never into its replies, until its remaining core is found at or after `position`.
    """
    tried = set()
    for trim in BOUNDARY_TRIMS:
        core_start = min(start + trim, first_reply) if start > 0 else start
        core_end = max(end - trim, reply_end) if end < len(plain) else end
        if (core_start, core_end) in tried:
            continue
        tried.add((core_start, core_end))
        match = expanded.find(plain[core_start:core_end], position)
        if match >= 0:
            return core_start, match
    return None
