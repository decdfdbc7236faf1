"""Footage archives: many files cleaned in parallel on Ray, resumable through a manifest.

Each file is probed by a Ray task (its length, and for a long file its keyframe-aligned
segments, :mod:`vstream.drivers.split`), then cleaned by one task, or one task per segment and a task
that joins them. Every task decodes, cleans and encodes where it runs (workers read the input
themselves), with in-process inference; the driver only schedules, records and reports.
Outputs and segments appear under their final names only when complete, and every finished
file and segment is written to the manifest at once, so a driver killed at any point loses
nothing finished: re-running the same command skips it.
"""

from __future__ import annotations

import glob
import json
import logging
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import astuple, dataclass, field, replace
from pathlib import Path

from .. import stopping
from ..config import CleanConfig
from ..errors import InputOpenError, VStreamError, redact
from ..outputs import STAGING_TAG
from ..stages.decode import IMAGE_SUFFIXES, Selection, is_image
from .pipeline import clean_still, clean_video, default_output
from .split import Span, join, plan, segment_path, warmup_frames

MANIFEST_NAME = ".vstream-manifest.jsonl"
DEFAULT_SEGMENT_S = 60.0
_POLL_S = 0.2  # while stopping: how often to look for a second signal
VIDEO_SUFFIXES = frozenset(
    {".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".ts", ".mts", ".m2ts", ".mpg", ".mpeg",
     ".flv", ".wmv", ".3gp", ".h264", ".hevc", ".mxf", ".ogv", ".vob", ".gif"}
)
CLEANED_SUFFIXES = VIDEO_SUFFIXES | IMAGE_SUFFIXES  # a still image is cleaned into an image, as on its own


def is_archive_spec(spec: str) -> bool:
    """A folder, a glob pattern, or ``@list.txt``: what ``vstream clean`` treats as many inputs.

    An existing file is that one file, whatever its name holds (``[1080p]``, ``?``, a leading ``@``).
    """
    if Path(spec).is_file():
        return False
    return spec.startswith("@") or Path(spec).is_dir() or glob.has_magic(spec)


def expand(spec: str) -> tuple[Path, list[Path], list[Path]]:
    """(root, videos and images, skipped other files) of a folder, glob or ``@list.txt``.

    ``root`` is what output paths are made relative to, so OUTDIR mirrors the input tree.
    Raises :class:`InputOpenError` when ``spec`` holds no video, before anything is written.
    """
    if spec.startswith("@"):
        listing = Path(spec[1:])
        if not listing.is_file():
            raise InputOpenError(f"list file not found: {listing} (and no file is named {spec})")
        paths = [Path(line.strip()) for line in listing.read_text().splitlines()
                 if line.strip() and not line.lstrip().startswith("#")]
    elif Path(spec).is_dir():
        paths = sorted(p for p in Path(spec).rglob("*") if p.is_file())
    else:
        paths = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise InputOpenError(f"listed input not found: {missing[0]}")
    if not paths and glob.has_magic(spec) and not Path(spec).is_dir():
        raise InputOpenError(f"input not found: {spec} (no file has that name, and as a pattern it matches none)")
    videos = [p for p in paths if p.suffix.lower() in CLEANED_SUFFIXES and not p.name.startswith(".")]
    skipped = [p for p in paths if p not in videos]
    if not videos:
        raise InputOpenError(f"no videos found in {spec}" + (f" ({len(skipped)} other files)" if skipped else ""))
    root = Path(spec) if Path(spec).is_dir() else Path(os.path.commonpath([p.resolve().parent for p in paths]))
    return root, videos, skipped


def outputs_for(sources: list[Path], root: Path, outdir: Path, suffix: str) -> list[Path]:
    """:func:`output_for` of each of ``sources``, where two would share a name (``a.ogv`` and
    ``a.vob`` both into ``a.mkv``) the changed ones keeping their own extension (``a.ogv.mkv``)."""
    outputs = [output_for(source, root, outdir, suffix) for source in sources]
    shared = {output for output in outputs if outputs.count(output) > 1}
    return [output.with_name(f"{source.stem}{suffix}{source.suffix}{output.suffix}")
            if output in shared and output.suffix != source.suffix.lower() else output
            for source, output in zip(sources, outputs)]


def output_for(source: Path, root: Path, outdir: Path, suffix: str) -> Path:
    """``root/a/b.mp4`` → ``outdir/a/b{suffix}.mp4``, in the container a single file's output
    gets (:func:`~vstream.drivers.pipeline.default_output`: ``b.webm`` → ``b{suffix}.mkv``)."""
    relative = source.resolve().relative_to(root.resolve())
    return outdir / relative.with_name(f"{relative.stem}{suffix}{default_output(str(source)).suffix}")


class Manifest:
    """JSON lines in OUTDIR, flushed and fsynced as each file or segment finishes. A file's last
    line wins (``split``: its segment plan; ``done``; ``failed``) and drops the segment lines
    before it, so a new plan or a retry starts its segments afresh."""

    def __init__(self, outdir: Path) -> None:
        self.path = outdir / MANIFEST_NAME
        self.entries: dict[str, dict] = {}
        self.segments: dict[str, set[int]] = {}  # input → segments done under its current plan
        if self.path.is_file():
            text = self.path.read_text()
            for line in text.splitlines():
                try:
                    self._add(json.loads(line))
                except json.JSONDecodeError:  # a line cut short by a crash mid-write
                    continue
            if text and not text.endswith("\n"):  # so the next line does not continue the cut one
                with self.path.open("a") as handle:
                    handle.write("\n")

    def _add(self, entry: dict) -> None:
        if "segment" in entry:
            self.segments.setdefault(entry["input"], set()).add(entry["segment"])
        else:
            self.entries[entry["input"]] = entry
            self.segments.pop(entry["input"], None)

    def is_done(self, source: Path, output: Path) -> bool:
        entry = self.entries.get(str(source.resolve()))
        return entry is not None and entry["state"] == "done" and output.is_file()

    def plan(self, source: Path, segment_s: float, warmup: int) -> tuple[list[Span], float] | None:
        """(segments, footage seconds) recorded for ``source`` if it was split with the same settings."""
        entry = self.entries.get(str(source.resolve()))
        if entry is None or entry["state"] != "split" or (entry["segment_s"], entry["warmup"]) != (segment_s, warmup):
            return None
        return [Span(*span) for span in entry["spans"]], entry["footage_s"]

    def segments_done(self, source: Path) -> set[int]:
        return self.segments.get(str(source.resolve()), set())

    def record(self, source: Path, state: str, **details) -> None:
        entry = {"input": str(source.resolve()), "state": state, **details}
        self._add(entry)
        with self.path.open("a") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())


@dataclass
class ArchiveReport:
    """Counts for the summary; ``failed`` maps inputs to their one-line errors."""

    done: int = 0
    skipped_done: int = 0
    skipped_other: list[str] = field(default_factory=list)  # files that are neither videos nor images
    failed: dict[str, str] = field(default_factory=dict)
    frames: int = 0
    footage_s: float = 0.0
    seconds: float = 0.0
    startup_s: float = 0.0  # of ``seconds``: connecting to (or starting) Ray
    interrupted: bool = False  # stopped by Ctrl-C/SIGTERM; the same command resumes

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else 123 if self.failed else 0


@dataclass(frozen=True)
class Progress:
    """The whole job so far: files finished (done or failed) and frames cleaned, of this run's."""

    files_done: int
    files_total: int
    frames_done: int
    frames_total: int
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (None before the first frames)."""
        return max(0, self.frames_total - self.frames_done) / self.fps if self.fps else None


@dataclass
class _File:
    """One input's work in this run. ``spans`` None: cleaned whole."""

    source: Path
    output: Path
    spans: list[Span] | None = None
    done: set[int] = field(default_factory=set)
    frames: int = 0  # to clean in this run (known once probed)
    cleaned: int = 0
    footage_s: float = 0.0
    failed: bool = False
    warnings: dict[str, None] = field(default_factory=dict)  # its tasks' warnings, each once, in order

    @property
    def parts(self) -> list[Path]:
        return [segment_path(self.output, i) for i in range(len(self.spans or ()))]


def _task(fn: Callable[..., dict], *args) -> dict:
    """A Ray task body: ``fn(*args)`` on whichever node runs it, an error as a failed result with
    its cause in one line, and with the warnings vstream logged meanwhile (the driver shows them)."""
    with _Warnings() as warnings:
        try:
            result = fn(*args)
        except Exception as exc:  # its own words, not Ray's wrapper of them
            result = {"state": "failed", "error": _reason(exc)}
    return {**result, "warnings": warnings.messages}


class _Warnings(logging.Handler):
    """Collects the warnings vstream's loggers emit inside the block (a task's, on a worker)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []
        self._logger = logging.getLogger("vstream")

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(redact(record.getMessage()))

    def __enter__(self) -> _Warnings:
        self._level = self._logger.level
        self._logger.setLevel(min(self._logger.getEffectiveLevel(), logging.WARNING))
        self._logger.addHandler(self)
        return self

    def __exit__(self, *exc_info) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


_ANSI_CODES = re.compile(r"\x1b\[[0-9;]*m")


def _reason(exc: BaseException) -> str:
    """One line for the summary and the manifest: a domain error's message; else the error's type
    and first line (of what a task raised, for Ray's error about it), without terminal colours."""
    if isinstance(exc, VStreamError):
        return redact(str(exc))
    cause = getattr(exc, "cause", None)  # RayTaskError: what the task raised
    if isinstance(cause, BaseException):
        return _reason(cause)
    lines = _ANSI_CODES.sub("", str(exc)).strip().splitlines()
    return redact(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)


def _probe(source: str, segment_s: float, warmup: int, selection: Selection) -> dict:
    if is_image(source):
        return {"state": "planned", "spans": None, "frames": 1, "footage_s": 0.0}
    spans, frames, seconds = plan(source, segment_s, warmup)
    return {"state": "planned", "spans": spans, "frames": selection.frames(frames, seconds), "footage_s": seconds}


def _clean(source: str, output: str, config: CleanConfig, span: Span | None, selection: Selection) -> dict:
    if is_image(source):
        report = clean_still(source, Path(output), config)
    else:
        report = clean_video(source, Path(output), config, span=span, selection=selection)
    return {"state": "done", "frames": report.frames, "seconds": round(report.seconds, 3),
            "footage_s": round(report.footage_s, 3)}


def _join(source: str, parts: list[str], output: str, audio: bool) -> dict:
    join(source, [Path(p) for p in parts], Path(output), audio)
    return {"state": "done"}


def clean_archive(
    spec: str,
    outdir: Path,
    config: CleanConfig,
    *,
    suffix: str = "",
    address: str | None = None,
    jobs: int | None = None,
    segment_s: float = DEFAULT_SEGMENT_S,
    on_file: Callable[[str, dict], None] | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    selection: Selection = Selection(),
) -> ArchiveReport:
    """Clean every video (and image) of ``spec`` into ``outdir``, ``jobs`` Ray tasks at a time
    (default: the cluster's CPUs); files of 1.5 × ``segment_s`` or more are split (0: never).

    Files already marked done in the manifest (with their output present) are skipped, and so
    are the finished segments of a split file; a file that fails is recorded with its error and
    the rest go on. ``on_file`` hears of every file done or failed (with the ``warnings`` its
    tasks logged), ``on_progress`` of every task finished. Ctrl-C (KeyboardInterrupt) starts no
    more tasks and waits for the running ones to finish and be recorded; a second signal
    (:func:`vstream.stopping.hurried`, or a second KeyboardInterrupt) cancels them instead. Either way what finished is kept.
    ``selection`` applies to every file; a file cut short by it is cleaned whole
    (not split).
    """
    from .actors import connect_ray

    start = time.perf_counter()
    root, videos, others = expand(spec)
    outdir.mkdir(parents=True, exist_ok=True)
    _sweep_staging(outdir)  # left by a run that was killed
    manifest = Manifest(outdir)
    report = ArchiveReport(skipped_other=[str(p) for p in others])
    todo = []
    for source, output in zip(videos, outputs_for(videos, root, outdir, suffix)):
        if manifest.is_done(source, output):
            report.skipped_done += 1
            for i in range(manifest.entries[str(source.resolve())].get("segments", 0)):
                segment_path(output, i).unlink(missing_ok=True)  # left by a driver killed after its join
        else:
            output.parent.mkdir(parents=True, exist_ok=True)
            todo.append(_File(source, output))
    if todo:
        ray, started = connect_ray(address, jobs or 1)
        report.startup_s = time.perf_counter() - start
        try:
            runner = _Scheduler(ray, manifest, report, replace(config, workers=0), 0 if selection.trims else segment_s,
                                on_file, on_progress, selection)
            runner.run(todo, jobs or max(1, int(ray.cluster_resources().get("CPU", 1))))
        finally:
            if started:
                ray.shutdown()
        _sweep_staging(outdir)  # left by a worker killed mid-task, whose task Ray ran again
    report.seconds = time.perf_counter() - start
    return report


def _sweep_staging(outdir: Path) -> None:
    """Remove half-written staging files; only safe while no task of this archive runs."""
    for stale in outdir.rglob(f".*.{STAGING_TAG}-*"):
        stale.unlink()


class _Scheduler:
    """The driver's loop: probe each file, clean it whole or segment by segment, join its
    segments; at most ``jobs`` Ray tasks in flight; results recorded as they arrive."""

    def __init__(self, ray, manifest: Manifest, report: ArchiveReport, config: CleanConfig, segment_s: float,
                 on_file: Callable[[str, dict], None] | None, on_progress: Callable[[Progress], None] | None,
                 selection: Selection) -> None:
        self.ray = ray
        self.task = ray.remote(num_cpus=1, max_retries=2)(_task)
        self.manifest = manifest
        self.report = report
        self.config = config  # inference in-process, inside each task
        self.segment_s = segment_s
        self.warmup = warmup_frames(config.temporal, config.schedule, config.stationary)
        self.on_file = on_file
        self.on_progress = on_progress
        self.selection = selection
        # Work not yet submitted: (file, step, task function, its arguments); step is "probe",
        # "clean" (the whole file), a segment's index, or "join".
        self.queue: deque[tuple[_File, str | int, Callable[..., dict], tuple]] = deque()
        self.started = time.perf_counter()
        self.files: list[_File] = []

    def run(self, files: list[_File], jobs: int) -> None:
        self.files = files
        for file in files:
            recorded = self.manifest.plan(file.source, self.segment_s, self.warmup)
            if recorded is None:
                self.queue.append((file, "probe", _probe, (str(file.source), self.segment_s, self.warmup, self.selection)))
            else:
                file.spans, file.footage_s = recorded
                file.done = {i for i in self.manifest.segments_done(file.source) if file.parts[i].is_file()}
                file.frames = sum(s.frames for i, s in enumerate(file.spans) if i not in file.done)
                self._queue_segments(file)
        pending: dict = {}
        while pending or (self.queue and not self.report.interrupted):
            try:
                self._next(pending, jobs)
            except KeyboardInterrupt:
                if self.report.interrupted:  # a second one, with no handler to turn it into a hurry
                    break
                self.report.interrupted = True
                stopping.finishing()
            if self.report.interrupted and stopping.hurried():
                break
        for ref, (file, step) in pending.items():  # left by a hurried stop
            # One that finished meanwhile is kept, not cancelled: cancelling a task as it completes
            # can abort Ray 2.60's driver ("Tried to complete task that was not pending").
            if self.ray.wait([ref], timeout=0)[0]:
                self._record(ref, file, step)
            else:
                self.ray.cancel(ref, force=True)

    def _next(self, pending: dict, jobs: int) -> None:
        """Start tasks up to ``jobs`` (unless stopping), then record the next one to finish."""
        while self.queue and len(pending) < jobs and not self.report.interrupted:
            file, step, fn, args = self.queue.popleft()
            if not file.failed:
                pending[self.task.remote(fn, *args)] = (file, step)
        if pending:
            # A stop is waited out in short steps, so that a second signal is heard.
            ready, _ = self.ray.wait(list(pending), num_returns=1, timeout=_POLL_S if self.report.interrupted else None)
            if ready:
                self._record(ready[0], *pending.pop(ready[0]))

    def _record(self, ref, file: _File, step: str | int) -> None:
        try:
            result = self.ray.get(ref)
        except self.ray.exceptions.RayError as exc:
            result = {"state": "failed", "error": _reason(exc)}
        file.warnings.update(dict.fromkeys(result.pop("warnings", ())))
        if file.failed:
            return
        if result["state"] == "failed":
            self._fail(file, result)
        else:
            self._finished(file, step, result)
        if self.on_progress:
            self.on_progress(self.progress())

    def progress(self) -> Progress:
        going = [f for f in self.files if not f.failed]
        return Progress(self.report.done + len(self.report.failed), len(self.files), sum(f.cleaned for f in going),
                        sum(f.frames for f in going), time.perf_counter() - self.started)

    def _finished(self, file: _File, step: str | int, result: dict) -> None:
        if step == "probe":
            file.frames, file.footage_s = result["frames"], result["footage_s"]
            file.spans = result["spans"]
            if file.spans is None:
                self.queue.append((file, "clean", _clean, (str(file.source), str(file.output), self.config, None,
                                                           self.selection)))
            else:
                self.manifest.record(file.source, "split", spans=[astuple(s) for s in file.spans],
                                     segment_s=self.segment_s, warmup=self.warmup, footage_s=file.footage_s)
                self._queue_segments(file)
        elif step == "clean":
            file.cleaned += result["frames"]
            self._done(file, result)
        elif step == "join":
            self._done(file, {"state": "done", "frames": sum(s.frames for s in file.spans),
                              "footage_s": file.footage_s, "segments": len(file.spans)})
            for part in file.parts:
                part.unlink(missing_ok=True)
        else:
            file.cleaned += result["frames"]
            self.manifest.record(file.source, "done", segment=step, frames=result["frames"])
            file.done.add(step)
            if len(file.done) == len(file.spans):
                self._queue_join(file)

    def _queue_segments(self, file: _File) -> None:
        for i, span in enumerate(file.spans):
            if i not in file.done:
                self.queue.append((file, i, _clean, (str(file.source), str(file.parts[i]), self.config, span,
                                                     self.selection)))
        if len(file.done) == len(file.spans):
            self._queue_join(file)

    def _queue_join(self, file: _File) -> None:
        self.queue.appendleft((file, "join", _join, (str(file.source), [str(p) for p in file.parts], str(file.output),
                                                     self.selection.audio)))

    def _done(self, file: _File, result: dict) -> None:
        self.manifest.record(file.source, **result)
        self.report.done += 1
        self.report.frames += result["frames"]
        self.report.footage_s += result.get("footage_s") or file.footage_s
        self._tell(file, result)

    def _fail(self, file: _File, result: dict) -> None:
        file.failed = True
        self.manifest.record(file.source, **result)
        self.report.failed[str(file.source)] = result["error"]
        self._tell(file, result)

    def _tell(self, file: _File, result: dict) -> None:
        if self.on_file:
            self.on_file(str(file.source), {**result, "warnings": list(file.warnings)})
