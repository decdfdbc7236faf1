"""Footage archives: many files cleaned in parallel on Ray, resumable through a manifest.

Each file is one Ray task that decodes, cleans and encodes where it runs (workers read the
input themselves), with in-process inference; the driver only schedules, records and reports.
Outputs appear under their final names only when complete, and every finished file is written
to the manifest at once, so a driver killed at any point loses nothing finished: re-running the
same command skips it.
"""

from __future__ import annotations

import glob
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from .config import CleanConfig
from .errors import InputOpenError, VStreamError, redact
from .outputs import STAGING_TAG

MANIFEST_NAME = ".vstream-manifest.jsonl"
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
     ".flv", ".wmv", ".3gp", ".h264", ".hevc"}
)


def is_archive_spec(spec: str) -> bool:
    """A folder, a glob pattern, or ``@list.txt``: what ``vstream clean`` treats as many inputs."""
    return spec.startswith("@") or Path(spec).is_dir() or glob.has_magic(spec)


def expand(spec: str) -> tuple[Path, list[Path], list[Path]]:
    """(root, videos, skipped non-video files) of a folder, glob or ``@list.txt``.

    ``root`` is what output paths are made relative to, so OUTDIR mirrors the input tree.
    """
    if spec.startswith("@"):
        listing = Path(spec[1:])
        if not listing.is_file():
            raise InputOpenError(f"list file not found: {listing}")
        paths = [Path(line.strip()) for line in listing.read_text().splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
    elif Path(spec).is_dir():
        paths = sorted(p for p in Path(spec).rglob("*") if p.is_file())
    else:
        paths = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputOpenError(f"listed input not found: {missing[0]}")
    if not paths:
        raise InputOpenError(f"no files in {spec}")
    root = Path(spec) if Path(spec).is_dir() else Path(os.path.commonpath([p.resolve().parent for p in paths]))
    videos = [p for p in paths if p.suffix.lower() in VIDEO_SUFFIXES and not p.name.startswith(".")]
    skipped = [p for p in paths if p not in videos]
    return root, videos, skipped


def output_for(source: Path, root: Path, outdir: Path, suffix: str) -> Path:
    """``root/a/b.mp4`` → ``outdir/a/b{suffix}.mp4``."""
    relative = source.resolve().relative_to(root.resolve())
    return outdir / relative.with_name(f"{relative.stem}{suffix}{relative.suffix}")


class Manifest:
    """JSON lines in OUTDIR, one per finished file (``done`` or ``failed``), flushed and fsynced
    as each file finishes. The last line for an input wins."""

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / MANIFEST_NAME
        self.entries: dict[str, dict] = {}
        if self.path.is_file():
            for line in self.path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a crash mid-write
                    continue
                self.entries[entry["input"]] = entry

    def is_done(self, source: Path, output: Path) -> bool:
        entry = self.entries.get(str(source.resolve()))
        return entry is not None and entry["state"] == "done" and output.is_file()

    def record(self, source: Path, state: str, **details) -> None:
        entry = {"input": str(source.resolve()), "state": state, **details}
        self.entries[entry["input"]] = entry
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


@dataclass
class ArchiveReport:
    """Counts for the summary; ``failed`` maps inputs to their one-line errors."""

    done: int = 0
    skipped_done: int = 0
    skipped_other: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    footage_s: float = 0.0
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        return 123 if self.failed else 0


def _clean_file(source: str, output: str, config: CleanConfig) -> dict:
    """One file, start to finish, on whichever node runs it (a Ray task body)."""
    from .pipeline import clean_video

    try:
        report = clean_video(source, Path(output), config)
    except VStreamError as exc:
        return {"state": "failed", "error": redact(str(exc))}
    return {"state": "done", "frames": report.frames, "seconds": round(report.seconds, 3),
            "footage_s": round(report.footage_s, 3)}


def clean_archive(
    spec: str,
    outdir: Path,
    config: CleanConfig,
    *,
    suffix: str = "",
    address: str | None = None,
    jobs: int | None = None,
    on_file: Callable[[str, dict], None] | None = None,
) -> ArchiveReport:
    """Clean every video of ``spec`` into ``outdir``, ``jobs`` files at a time on Ray.

    Files already marked done in the manifest (with their output present) are skipped;
    a file that fails is recorded with its error and the rest go on.
    """
    from .actors import connect_ray

    start = time.perf_counter()
    root, videos, others = expand(spec)
    outdir.mkdir(parents=True, exist_ok=True)
    for stale in outdir.rglob(f".*.{STAGING_TAG}-*"):  # left by a run that was killed
        stale.unlink()
    manifest = Manifest(outdir)
    report = ArchiveReport(skipped_other=len(others))
    todo = []
    for source in videos:
        output = output_for(source, root, outdir, suffix)
        if manifest.is_done(source, output):
            report.skipped_done += 1
        else:
            todo.append((source, output))
    if not todo:
        report.seconds = time.perf_counter() - start
        return report
    ray, started = connect_ray(address, jobs or 1)
    task = ray.remote(num_cpus=1, max_retries=2)(_clean_file)
    per_file = replace(config, workers=0)  # inference in-process, inside each file's task
    try:
        pending = {}
        for source, output in todo:
            output.parent.mkdir(parents=True, exist_ok=True)
            pending[task.remote(str(source), str(output), per_file)] = source
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            source = pending.pop(ready[0])
            try:
                result = ray.get(ready[0])
            except ray.exceptions.RayError as exc:
                result = {"state": "failed", "error": redact(str(exc).splitlines()[0])}
            manifest.record(source, **result)
            if result["state"] == "done":
                report.done += 1
                report.frames += result["frames"]
                report.footage_s += result["footage_s"]
            else:
                report.failed[str(source)] = result["error"]
            if on_file:
                on_file(str(source), result)
    finally:
        if started:
            ray.shutdown()
    report.seconds = time.perf_counter() - start
    return report
