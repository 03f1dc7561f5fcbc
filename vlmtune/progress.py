"""Progress of a long loop on stderr, with its rate and an estimate of the time left.

    for sample in progress(samples, total=len(samples), desc="checking train.jsonl"):
        ...

On a terminal it is a tqdm bar, shown once the loop has run a second (quick loops stay silent). Elsewhere (a log
file, CI, a test) it prints nothing for a short loop and one plain line every `every` seconds for a long one, e.g.
`checking train.jsonl: 3,000/10,000 samples (30%), 1,024 samples/s, about 7 s left`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

Item = TypeVar("Item")


def progress(
    items: Iterable[Item],
    total: int | None,
    desc: str,
    unit: str = "sample",
    every: float = 30.0,
    delay: float = 1.0,
    stream: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Item]:
    """Yield `items`, showing how far along they are (`total` None: count and rate, no estimate): on a terminal
    from `delay` seconds on, elsewhere one line every `every` seconds."""
    stream = stream or sys.stderr
    if stream.isatty():
        from tqdm.auto import tqdm  # installed with transformers (through huggingface_hub)

        yield from tqdm(items, total=total, desc=desc, unit=f" {unit}", file=stream, delay=delay, mininterval=0.5)
        return
    start = clock()
    due = start + every
    for done, item in enumerate(items, start=1):
        yield item
        now = clock()
        if now >= due:
            print(progress_line(desc, done, total, now - start, unit), file=stream, flush=True)
            due = now + every


def progress_line(desc: str, done: int, total: int | None, elapsed: float, unit: str) -> str:
    rate = done / elapsed if elapsed > 0 else 0.0
    if total is None:
        return f"{desc}: {done:,} {unit}s, {rate:,.0f} {unit}s/s"
    left = f", about {format_seconds((total - done) / rate)} left" if rate > 0 and done < total else ""
    return f"{desc}: {done:,}/{total:,} {unit}s ({done / total:.0%}), {rate:,.0f} {unit}s/s{left}"


def format_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min {seconds % 60:02.0f} s"
    return f"{seconds // 3600:.0f} h {seconds % 3600 // 60:02.0f} min"
