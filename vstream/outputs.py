"""Atomic outputs: write under a temporary name beside the target, rename only on success."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    _try_create(output)


def _try_create(output: Path) -> None:
    """Create and delete ``output``'s staging file: some folders refuse new files whatever their
    permissions say (``/proc``, a read-only mount for root)."""
    staging = staging_path(output)
    try:
        os.close(os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except FileExistsError:  # this process's own, being written
        return
    except OSError as exc:
        raise OutputError(f"cannot write {output}: {exc.strerror}") from None
    staging.unlink()


STAGING_TAG = "part"
_STAGING_NAME = re.compile(rf"\.(?P<stem>.+)\.{STAGING_TAG}-(?P<pid>\d+)(?P<suffix>(\.[^.]*)?)")


def staging_path(output: Path) -> Path:
    """Hidden sibling of ``output`` with the same extension (so muxers pick the same format),
    named after this process, so a later run can tell whether its writer is still alive."""
    return output.with_name(f".{output.stem}.{STAGING_TAG}-{os.getpid()}{output.suffix}")


def numbered(path: Path, n: int) -> Path:
    """``out.mp4`` → ``out-2.mp4`` for ``n`` = 2 (``n`` = 1: ``path`` itself)."""
    return path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")


def partial_path(output: Path) -> Path:
    """Where an interrupted run leaves what it wrote: ``out.mp4`` → ``out.partial.mp4``."""
    return output.with_name(f"{output.stem}.partial{output.suffix}")


def publish(staging: Path, output: Path, overwrite: bool = False) -> Path:
    """Give the finished ``staging`` file the name ``output`` and return the name used.

    With ``overwrite`` it replaces ``output`` atomically. Without, it never replaces a file, even
    one that appeared while this run was writing (another run to the same output): the name is
    claimed with a hard link, which fails if the name exists, and if it does the file goes to
    the first free ``numbered`` name instead (``out-2.mp4``, ``out-3.mp4`` …).
    """
    if overwrite:
        os.replace(staging, output)
        return output
    n = 1
    while not _claim(staging, numbered(output, n)):
        n += 1
    return numbered(output, n)


def _claim(staging: Path, target: Path) -> bool:
    """Move ``staging`` to ``target`` unless ``target`` exists. Where the file system has no hard
    links (FAT, some network shares), the name is reserved by creating it exclusively, then
    renamed over: the name briefly holds an empty file, never a half-written one."""
    try:
        os.link(staging, target)
    except FileExistsError:
        return False
    except OSError:
        try:
            os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            return False
        os.replace(staging, target)
        return True
    staging.unlink()
    return True


def stale_staging(folder: Path) -> Iterator[tuple[Path, Path]]:
    """(staging file, the output it was for) of each staging file in ``folder`` whose process
    is gone: left by a run killed with SIGKILL, or a crash. Never a running process's."""
    for entry in os.scandir(folder):
        match = _STAGING_NAME.fullmatch(entry.name)
        if match and entry.is_file(follow_symlinks=False) and not _alive(int(match["pid"])):
            yield Path(entry.path), folder / f"{match['stem']}{match['suffix']}"


def remove_stale_staging(output: Path) -> None:
    """Delete the staging files of ``output`` left by killed runs."""
    folder = output.parent if str(output.parent) else Path(".")
    for staging, target in stale_staging(folder):
        if target.name == output.name:
            staging.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@dataclass
class Staged:
    """A file being written at ``path``; ``output``: its final name (once published, the name used)."""

    path: Path
    output: Path


@contextmanager
def atomic_output(output: Path, overwrite: bool = True) -> Iterator[Staged]:
    """Yield a :class:`Staged` file to write; on success :func:`publish` it, on any error delete it."""
    staged = Staged(staging_path(output), output)
    try:
        yield staged
    except BaseException:
        staged.path.unlink(missing_ok=True)
        raise
    staged.output = publish(staged.path, output, overwrite)
