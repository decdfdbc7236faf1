"""Wall time spent in each stage of a clean run, for ``vstream bench``: one clock pair per call.

Each stage is timed on the thread that runs it (decode, encode and in-process inference have their
own), so the figures are each stage's own cost, not the run's wall time split up.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

STAGES = ("decode", "pyramid", "schedule", "infer", "smooth", "reconstruct", "encode")


class StageTimes:
    """Seconds per stage; each stage is written by one thread only."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] += time.perf_counter() - start

    def timed(self, stage: str, items: Iterable[T]) -> Iterator[T]:
        """``items``, with the time spent producing each one added to ``stage``."""
        iterator = iter(items)
        while True:
            start = time.perf_counter()
            item = next(iterator, _END)
            if item is _END:
                return
            self.seconds[stage] += time.perf_counter() - start
            yield item

    def ms_per_frame(self, frames: int) -> dict[str, float]:
        """Milliseconds per frame of every stage that ran (the network's: over all frames, not
        only the key frames it ran on)."""
        return {s: 1000 * t / frames for s, t in self.seconds.items() if t and frames}


_END = object()
