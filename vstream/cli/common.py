"""Pieces every vstream command shares: error translation, logging, progress, signals."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import click
import setproctitle
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..errors import VStreamError, redact
from ..stopping import EXIT_INTERRUPTED, STOPPED_BEFORE_WORK, stop_on_signals
from .progress import ProgressStream

quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar or status lines.")
verbose_option = click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")


def hide_credentials_from_process_list() -> None:
    """Show this process's command line with URL credentials hidden (:func:`redact`) wherever it
    is read: ``ps`` and ``/proc`` for every user of the machine, and Ray, which records a
    driver's command line as its job's entrypoint on the cluster it joins."""
    shown = [redact(arg) for arg in sys.orig_argv]
    if shown != sys.orig_argv:
        setproctitle.setproctitle(" ".join(shown))


def setup_logging(quiet: bool, verbose: bool) -> None:
    """Log records to stderr, every URL's credentials redacted, whichever library logs them."""
    level = logging.ERROR if quiet else logging.INFO if verbose else logging.WARNING
    handler = logging.StreamHandler()
    handler.setFormatter(_RedactingFormatter("vstream: %(levelname)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def status(message: str, quiet: bool = False) -> None:
    """A status line on stderr (stdout stays free for data such as ``--json`` or ``-o -``)."""
    if not quiet:
        click.echo(message, err=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn vstream's domain errors into one-line click errors (exit 1), credentials redacted."""
    try:
        yield
    except VStreamError as exc:
        raise click.ClickException(redact(str(exc))) from None
    except OSError as exc:
        raise click.ClickException(redact(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))) from None


@contextmanager
def graceful_stop() -> Iterator[None]:
    """SIGINT and SIGTERM as :func:`vstream.stopping.stop_on_signals` handles them; a stop that
    comes before anything was written exits 130 with a line, not click's ``Aborted!``."""
    try:
        with stop_on_signals():
            yield
    except KeyboardInterrupt:
        status(STOPPED_BEFORE_WORK)
        raise SystemExit(EXIT_INTERRUPTED) from None


PLAIN_EVERY_S = 5.0


class FrameProgress:
    """Frames, fps and ETA on stderr: a tqdm bar on a terminal, else (a log, CI) a plain line every
    :data:`PLAIN_EVERY_S` seconds; silent with ``quiet``. ``stream``: the same for programs."""

    def __init__(self, quiet: bool, description: str, stream: ProgressStream | None = None) -> None:
        self._quiet = quiet
        self._description = description
        self._stream = stream
        self._bar: tqdm | None = None
        self._logs = ExitStack()
        self._total = self._done = 0
        self._started = self._last_line = time.monotonic()

    def start(self, total: int) -> None:
        self._total = total
        self._started = self._last_line = time.monotonic()
        if not self._quiet and sys.stderr.isatty():
            self._bar = tqdm(total=total or None, unit="frame", desc=self._description, dynamic_ncols=True, smoothing=0.1)
            self._logs.enter_context(logging_redirect_tqdm())  # warnings above the bar, not through it

    def advance(self, n: int) -> None:
        self._done += n
        if self._bar is not None:
            self._bar.update(n)
        elif not self._quiet and time.monotonic() - self._last_line >= PLAIN_EVERY_S:
            self._last_line = time.monotonic()
            status(self.line())
        if self._stream is not None:
            self._stream.update(self.values())

    def values(self) -> dict[str, object]:
        """``frame``, ``total_frames`` (0: unknown), ``fps``, ``elapsed_s``: what ``--progress`` writes."""
        elapsed = time.monotonic() - self._started
        fps = self._done / elapsed if elapsed > 0 else 0.0
        return {"frame": self._done, "total_frames": self._total, "fps": round(fps, 2), "elapsed_s": round(elapsed, 2)}

    def line(self) -> str:
        """``cleaning: 120/250 frames, 31.0 fps, ETA 0m04s``."""
        values = self.values()
        line = f"{self._description}: {self._done}/{self._total or '?'} frames, {values['fps']:.1f} fps"
        if self._total and values["fps"]:
            line += f", ETA {eta_text(max(0, self._total - self._done) / values['fps'])}"
        return line

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._logs.close()
        if self._stream is not None:
            self._stream.close(self.values())


def eta_text(seconds: float) -> str:
    """``1h05m`` or ``4m09s``."""
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{seconds:02d}s"
