"""Bounded hand-offs between pipeline threads, so decode, inference and encode overlap."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")
_END = object()
_POLL_S = 0.1


class Prefetcher(Generic[T]):
    """Iterate ``source`` on a background thread, at most ``depth`` items ahead of the consumer.

    Exceptions from the source are re-raised in the consumer. :meth:`stop` ends the thread early.
    """

    def __init__(self, source: Iterable[T], depth: int, name: str) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name=name, daemon=True)
        self._thread.start()

    def _run(self, source: Iterable[T]) -> None:
        try:
            for item in source:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer, which re-raises it
            self._put(exc)
            return
        self._put(_END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


class Consumer(Generic[T]):
    """Feed items to ``handle`` on a background thread through a queue of ``depth`` items.

    :meth:`put` re-raises, in the producer, an exception the handler raised; :meth:`close`
    waits for the queue to drain and re-raises likewise.
    """

    def __init__(self, handle: Callable[[T], None], depth: int, name: str) -> None:
        self._handle = handle
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _END:
            if self._error is None:
                try:
                    self._handle(item)
                except BaseException as exc:
                    self._error = exc

    def put(self, item: T) -> None:
        self._raise_error()
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(_END)
        self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
