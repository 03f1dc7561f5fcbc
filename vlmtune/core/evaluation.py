"""Generation-based evaluation: greedy replies to the eval samples, scored by exact match or a user metric.

A metric is `exact_match` (built in) or an import path `package.module:function` (imported with importlib,
never evaluated as code). The function is called as `function(predictions, references)` with two equal-length
lists of strings (the reply generated for each eval sample, and the sample's last assistant turn) and returns
a number or a dict of named numbers, e.g.

    def digit_accuracy(predictions: list[str], references: list[str]) -> dict[str, float]:
        return {"digit_accuracy": sum(p[:1] == r[:1] for p, r in zip(predictions, references)) / len(references)}

Under several processes each rank generates for its share of the samples (equal shares, so that ZeRO-3 and
FSDP ranks make the same number of generate calls) and the replies are gathered before scoring.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch

from vlmtune.arguments import BUILT_IN_METRIC, check_metric_spec
from vlmtune.core.inference import generate_replies
from vlmtune.datasets import Sample
from vlmtune.errors import ArgumentError

Metric = Callable[[list[str], list[str]], float | dict[str, float]]


def exact_match(predictions: list[str], references: list[str]) -> dict[str, float]:
    """Fraction of replies equal to the reference, ignoring surrounding whitespace."""
    hits = sum(p.strip() == r.strip() for p, r in zip(predictions, references, strict=True))
    return {"exact_match": hits / len(references)}


def resolve_metric(spec: str) -> Metric:
    """The metric function named by `spec` (see the module docstring)."""
    check_metric_spec(spec)
    if spec == BUILT_IN_METRIC:
        return exact_match
    module_name, function_name = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise ArgumentError(f"--eval_metric {spec}: cannot import module {module_name!r} ({error})") from error
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ArgumentError(f"--eval_metric {spec}: module {module_name!r} has no function {function_name!r}")
    return function


def rank_share(count: int, rank: int, world_size: int) -> list[int]:
    """Sample indices for one rank: equal shares for all ranks, the last index repeated to fill them."""
    per_rank = -(-count // world_size)
    indices = [min(i, count - 1) for i in range(per_rank * world_size)]
    return indices[rank * per_rank : (rank + 1) * per_rank]


def gather_replies(local: list[tuple[int, Any]]) -> dict[int, Any]:
    """Every rank's (index, reply) pairs (a reply: any picklable value), on every rank (a no-op in a single
    process)."""
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return dict(local)
    gathered: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(gathered, local)
    return {index: reply for part in gathered for index, reply in part}


def score(metric: Metric, predictions: list[str], references: list[str]) -> dict[str, float]:
    value = metric(predictions, references)
    if isinstance(value, dict):
        return {name: float(v) for name, v in value.items()}
    return {getattr(metric, "__name__", "metric"): float(value)}


def generation_metrics(
    model, collator, samples: list[Sample], metric: Metric, max_new_tokens: int, batch_size: int, num_frames: int
) -> dict[str, float]:
    """Generate a reply to every sample (split over the ranks) and score them all with `metric`."""
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    rank, world_size = (torch.distributed.get_rank(), torch.distributed.get_world_size()) if distributed else (0, 1)
    indices = rank_share(len(samples), rank, world_size)
    replies = generate_replies(model, collator, [samples[i] for i in indices], max_new_tokens, batch_size, num_frames)
    # A sample whose media cannot be read has a BadSample for a reply (logged where it was met): not scored.
    by_index = gather_replies([(i, r) for i, r in zip(indices, replies, strict=True) if isinstance(r, str)])
    scored = sorted(by_index)
    if not scored:
        return {}  # every sample was bad (each named in the log): nothing to score
    return score(metric, [by_index[i] for i in scored], [samples[i].turns[-1].text for i in scored])
