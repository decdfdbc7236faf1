"""Machine-readable progress, as ffmpeg's ``-progress``: a block of ``key=value`` lines ending in
``progress=continue`` (``progress=end`` for the last), or one JSON object a line, written to a
file, ``-`` (stdout) or ``pipe:N`` (file descriptor N) and flushed after each block."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import TextIO

from ..errors import OutputError

FORMATS = ("kv", "json")
EVERY_S = 1.0  # at most one block a second, besides the last


class ProgressStream:
    """Where ``--progress`` goes. :meth:`update` writes at most every :data:`EVERY_S` seconds;
    :meth:`close` writes the last block, then closes the target (never stdout or a given fd)."""

    def __init__(self, target: str, fmt: str = "kv") -> None:
        self.fmt = fmt
        self._last = float("-inf")
        self._owned = False
        if target in ("-", "pipe:", "pipe:1"):
            self._out: TextIO = sys.stdout
        elif target.startswith("pipe:"):
            try:
                self._out = os.fdopen(int(target[5:]), "w", closefd=False)
            except (ValueError, OSError) as exc:
                raise OutputError(f"cannot write progress to {target}: {getattr(exc, 'strerror', None) or exc}") from None
        else:
            try:
                self._out = open(target, "w")
            except OSError as exc:
                raise OutputError(f"cannot write progress to {target}: {exc.strerror}") from None
            self._owned = True

    def update(self, values: dict[str, object]) -> None:
        now = time.monotonic()
        if now - self._last >= EVERY_S:
            self._last = now
            self._write(values, "continue")

    def close(self, values: dict[str, object]) -> None:
        self._write(values, "end")
        if self._owned:
            self._out.close()

    def _write(self, values: dict[str, object], state: str) -> None:
        values = {**values, "progress": state}
        if self.fmt == "json":
            text = json.dumps(values) + "\n"
        else:
            text = "".join(f"{key}={value}\n" for key, value in values.items())
        try:
            self._out.write(text)
            self._out.flush()
        except (OSError, ValueError):  # the reader went away: progress is not worth failing for
            pass
