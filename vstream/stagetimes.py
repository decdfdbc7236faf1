"""CPU time spent in each stage of a clean run, for ``vstream bench``: one clock pair per call.

Each stage is timed with its own thread's CPU clock (decode, encode and in-process inference
have their own threads), so time spent waiting for a core that the encoder holds is not
counted: the figures are each stage's own cost, and they add up to CPU work, not wall time.
Threads that a library starts itself (FFmpeg's decoder, x264's encoder) are not counted.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")

STAGES = ("decode", "pyramid", "schedule", "infer", "stationary", "smooth", "reconstruct", "encode")


class StageTimes:
    """CPU seconds per stage; each stage is written by one thread only."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys(STAGES, 0.0)

    @contextmanager
    def timing(self, stage: str) -> Iterator[None]:
        start = time.thread_time()
        try:
            yield
        finally:
            self.seconds[stage] += time.thread_time() - start

    def timed(self, stage: str, items: Iterable[T]) -> Iterator[T]:
        """``items``, with the time spent producing each one added to ``stage``."""
        iterator = iter(items)
        while True:
            start = time.thread_time()
            item = next(iterator, _END)
            if item is _END:
                return
            self.seconds[stage] += time.thread_time() - start
            yield item

    def ms_per_frame(self, frames: int) -> dict[str, float]:
        """Milliseconds per frame of every stage that ran (the network's: over all frames, not
        only the key frames it ran on)."""
        return {s: 1000 * t / frames for s, t in self.seconds.items() if t and frames}


_END = object()
