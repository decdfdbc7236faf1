"""Pieces every vstream command shares: error translation, logging, progress, signals."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import click
from tqdm import tqdm

from ..errors import VStreamError, redact
from ..stopping import stop_on_signals

quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar or status lines.")
verbose_option = click.option("-v", "--verbose", is_flag=True, help="Log what each stage does.")


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


EXIT_INTERRUPTED = 130


@contextmanager
def graceful_stop() -> Iterator[None]:
    """SIGINT and SIGTERM as :func:`vstream.stopping.stop_on_signals` handles them; a stop that
    comes before anything was written exits 130 with a line, not click's ``Aborted!``."""
    try:
        with stop_on_signals():
            yield
    except KeyboardInterrupt:
        status("interrupted: nothing written")
        raise SystemExit(EXIT_INTERRUPTED) from None


class FrameProgress:
    """tqdm bar on stderr with frames, fps and ETA; silent with ``quiet``."""

    def __init__(self, quiet: bool, description: str) -> None:
        self._quiet = quiet
        self._description = description
        self._bar: tqdm | None = None

    def start(self, total: int) -> None:
        self._bar = tqdm(
            total=total or None, unit="frame", desc=self._description, disable=self._quiet,
            dynamic_ncols=True, smoothing=0.1,
        )

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.update(n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
