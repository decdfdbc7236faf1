"""Atomic outputs: write under a temporary name beside the target, rename only on success."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError


def check_writable(output: Path, source: str | None = None) -> None:
    """Fail before any work if ``output`` cannot be written (or would overwrite ``source``)."""
    if source is not None and "://" not in source and Path(source).exists():
        if output.exists() and output.resolve() == Path(source).resolve():
            raise OutputError(f"output is the same file as the input: {output}")
    if output.is_dir():
        raise OutputError(f"output is a folder: {output} (for one input, -o names the file to write)")
    parent = output.parent if str(output.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder is not writable: {parent}")


STAGING_TAG = "part"


def staging_path(output: Path) -> Path:
    """Hidden sibling of ``output`` with the same extension (so muxers pick the same format)."""
    return output.with_name(f".{output.stem}.{STAGING_TAG}-{os.getpid()}{output.suffix}")


@contextmanager
def atomic_output(output: Path) -> Iterator[Path]:
    """Yield a staging path; on success rename it to ``output``, on any error delete it."""
    staging = staging_path(output)
    try:
        yield staging
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    os.replace(staging, output)
