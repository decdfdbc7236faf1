"""Wiring of the stages: decode → pyramid → infer → smooth → reconstruct → encode.

The driver keeps frame order and a hard cap on frames in flight: decoding runs on one thread,
encoding on another, and inference on the runner's workers, so all of them overlap while memory
stays flat however long the video is.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import av
import numpy as np

from .. import stopping
from ..config import CleanConfig
from ..errors import OutputError
from ..outputs import atomic_output, check_writable, partial_path, publish, remove_stale_staging, staging_path
from ..stages import colour, pyramid, stills
from ..stages.avframes import turned
from ..stages.decode import Selection, VideoReader, is_image, read_image
from ..stages.encode import VideoWriter, check_muxer
from ..stages.frame import Frame
from ..stages.infer import InterferenceModel, providers_for
from ..stages.reconstruct import apply_residual_i420, clean_image
from ..stages.schedule import KeySchedule, carry
from ..stages.smooth import ResidualSmoother
from ..stages.stationary import StationaryLayer
from ..stagetimes import StageTimes
from ..threads import Consumer, Prefetcher
from .actors import LocalRunner, RayRunner, Runner
from .split import Span

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class CleanReport:
    """What a clean run did. ``interrupted``: stopped early; ``output`` then holds the frames done."""

    output: Path
    frames: int
    seconds: float
    startup_s: float = 0.0  # of ``seconds``: starting the workers (Ray) and loading the model
    footage_s: float = 0.0  # the input's duration, as its container states it (0 if it does not)
    scene_cuts: int = 0
    decode_errors: int = 0
    interrupted: bool = False
    inferred: int = 0  # frames the network ran on (the others carried a key frame's result)
    stage_ms: dict[str, float] = field(default_factory=dict)  # ms per frame written, of each stage

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def default_output(source: str, compare: bool = False) -> Path:
    """``clip.mp4`` → ``clip.clean.mp4`` (``clip.compare.mp4`` with ``compare``), beside the input.

    A URL's output goes in the current folder, named after the last part of its path (never
    after its host or credentials). Containers that cannot hold H.264 plus the input's audio
    get ``.mkv``; MPEG-TS (a camera's ``.ts``, a camcorder's ``.mts``) holds both, so it stays.
    """
    path = Path(Path(urlsplit(source).path).name or "stream") if "://" in source else Path(source)
    suffix = path.suffix.lower()
    if not is_image(path) and suffix not in (".mp4", ".mov", ".m4v", ".mkv", ".ts", ".mts", ".m2ts"):
        suffix = ".mkv"
    return path.with_name(f"{path.stem}.{'compare' if compare else 'clean'}{suffix}")


IN_PROCESS_UP_TO_CORES = 2


def resolve_workers(config: CleanConfig) -> int:
    """Ray actors to start: the config's count, else 0 (in-process) on a machine of up to
    :data:`IN_PROCESS_UP_TO_CORES` cores, else one per core.

    On 2 cores the encoder already keeps both busy and Ray's own processes cost more than they
    give: measured with ``vstream bench`` at 720p and a 7 ms network, clean/transcode was 0.77
    in-process against 0.44 with 2 actors.
    """
    if config.workers is not None:
        return config.workers
    cores = os.cpu_count() or 1
    return 0 if cores <= IN_PROCESS_UP_TO_CORES else cores


def open_runner(
    config: CleanConfig, workers: int, address: str | None = None, times: StageTimes | None = None
) -> Runner:
    """Start the inference workers for ``config``: in-process for ``workers == 0`` (its network
    time added to ``times``), else a pool of Ray actors taking ``config.batch`` frames a call
    (checks the device first)."""
    providers = providers_for(config.device)
    if workers == 0:
        return LocalRunner(config.model_path(), config.threads_per_worker, providers, times)
    return RayRunner(config.model_path(), workers, config.threads_per_worker, providers, address, config.batch)


def clean_still(
    source: str, output: Path, config: CleanConfig, compare: bool = False, overwrite: bool = True
) -> CleanReport:
    """Clean a still image into an image file (one frame, in-process, no Ray); ``overwrite``:
    as for :func:`clean_video`."""
    start = time.perf_counter()
    image = read_image(source)
    check_writable(output, source)
    if not stills.writable(output):
        raise OutputError(f"cannot write an image as {output}: use .png, .jpg, .tif, ...")
    model = InterferenceModel(config.model_path(), config.threads_per_worker, providers_for(config.device))
    cleaned = stills.clean(image, lambda rgb: clean_image(model, rgb, config.max_side, config.strength, config.residual_floor))
    result = stills.fitted(np.hstack([image, cleaned]) if compare else cleaned, output)
    remove_stale_staging(output)
    with atomic_output(output, overwrite) as staged:
        if not stills.write(staged.path, result):
            raise OutputError(f"cannot write an image as {output.suffix!r}")
    return CleanReport(staged.output, 1, time.perf_counter() - start)


def clean_video(
    source: str,
    output: Path,
    config: CleanConfig,
    *,
    compare: bool = False,
    address: str | None = None,
    on_start: Callable[[int], None] | None = None,
    on_frame: ProgressFn | None = None,
    span: Span | None = None,
    overwrite: bool = True,
    selection: Selection = Selection(),
) -> CleanReport:
    """Clean a video file (or any URL FFmpeg reads) into ``output``.

    ``on_start(total_frames)`` is called once the input is open (0 if unknown); ``on_frame(n)``
    after every ``n`` frames encoded. ``span``: only that segment of the input, video only,
    after its warm-up frames (:mod:`vstream.drivers.split`); ``selection``: a part of the input, with or
    without its audio (ignored with a ``span``, which has no audio). Ctrl-C (KeyboardInterrupt) stops reading,
    finishes the frames in flight and finalises a playable ``<output>.partial<ext>`` (numbered,
    ``.partial-2``, if that exists: a partial file is never replaced); nothing is ever left
    under ``output`` unless the run completed. Without ``overwrite``, a file that appeared under
    ``output`` meanwhile is not replaced either (see :func:`~vstream.outputs.publish`);
    :attr:`CleanReport.output` names the file written. Staging files of ``output`` left by a
    killed run are removed first.
    """
    start = time.perf_counter()
    with VideoReader(source, audio=selection.audio, output_pix_fmt=config.encode.pix_fmt) as reader:
        check_writable(output, source)
        check_muxer(output, config.encode, reader.info)
        remove_stale_staging(output)
        workers = resolve_workers(config)
        times = StageTimes()
        runner = open_runner(config, workers, address, times)
        startup_s = time.perf_counter() - start
        info = reader.info
        if on_start:
            on_start(selection.frames(info.frames, info.duration_s) if span is None else span.frames)
        staging = staging_path(output)
        stages = CleanStages(runner, ResidualSmoother(config.temporal), config, compare, times)
        sink = _FileSink(reader, config, staging, on_frame, span, compare, times)
        decoded = (reader.selected(selection) if span is None
                   else reader.items(False, span.warmup_pts, span.end_pts, span.first_index))
        if compare:
            decoded = _upright(decoded, reader)
        items = Prefetcher(times.timed("decode", decoded), depth=8, name="vstream-decode")
        try:
            try:
                interrupted = stages.run(items, sink.put, default_in_flight(config, workers, look_ahead=True))
            finally:
                items.stop()
                sink.close()
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        finally:
            runner.close()
    if not sink.frames_written:
        staging.unlink(missing_ok=True)
        final = output
    elif interrupted:
        final = publish(staging, partial_path(output))
    else:
        final = publish(staging, output, overwrite)
    return CleanReport(
        final, sink.frames_written, time.perf_counter() - start, startup_s,
        info.duration_s or 0.0, stages.smoother.cuts, reader.decode_errors, interrupted,
        stages.schedule.keys, times.ms_per_frame(sink.frames_written),
    )


def _upright(items: Iterable[Frame | av.Packet], reader: VideoReader) -> Iterator[Frame | av.Packet]:
    """``items`` with each frame turned as ``reader``'s input is displayed (its rotation is read at
    the first frame), so that a side-by-side is of the displayed pictures."""
    info = reader.info
    for item in items:
        if isinstance(item, Frame) and reader.rotation:
            item = dataclasses.replace(item, i420=turned(item.i420, info.width, info.height, reader.rotation))
        yield item


def default_in_flight(config: CleanConfig, workers: int, look_ahead: bool = False) -> int:
    """Frames submitted and not yet finished: the config's cap, else two batches per worker.

    ``look_ahead`` (files, not live feeds): at least the stationary layer's look-ahead when it is
    enabled, since a frame is cleaned with the layer estimated from the frames in flight after it.
    """
    frames = config.max_in_flight or 2 * max(1, workers) * (config.batch if workers else 1)
    if look_ahead and config.stationary.enabled:
        frames = max(frames, config.stationary.look_ahead)
    return frames


@dataclass(frozen=True)
class Discontinuity:
    """Put by a live source between frames when the input was lost and came back ``gap_s`` later.

    :meth:`CleanStages.run` finishes the frames before it, restarts temporal smoothing, and hands
    it on to the sink, which may start a new segment.
    """

    gap_s: float


Item = Frame | av.Packet | Discontinuity


class CleanStages:
    """pyramid → infer → smooth → reconstruct over a stream of frames, in order, with a hard cap
    on frames submitted and not yet finished. Shared by the file and the live pipelines, which
    differ only in their sources and sinks.

    The network runs only on the key frames of ``config.schedule`` (:mod:`vstream.stages.schedule`);
    the others carry the last key frame's residual. With ``config.stationary`` enabled, the
    stationary layer (:mod:`vstream.stages.stationary`) is observed as each frame comes in and
    joins the network's residual as it is finished, so a frame's estimate has seen the frames in
    flight after it. Each stage's time is added to ``times``.
    """

    def __init__(
        self, runner: Runner, smoother: ResidualSmoother, config: CleanConfig, compare: bool = False,
        times: StageTimes | None = None,
    ) -> None:
        self.runner = runner
        self.smoother = smoother
        self.schedule = KeySchedule(config.schedule, config.temporal.scene_cut)
        self.config = config
        self.compare = compare
        self.times = times or StageTimes()
        self.stationary = StationaryLayer(config.stationary, config.temporal.scene_cut) if config.stationary.enabled else None
        self._key_residual: np.ndarray | None = None

    def run(self, items: Iterable[Item], emit: Callable[[Item], None], max_in_flight: int) -> bool:
        """Clean every frame of ``items`` and ``emit`` it (other items pass through in order).

        Ctrl-C (KeyboardInterrupt) stops reading; the frames already submitted are still
        finished and emitted, unless a further signal hurries the stop (:mod:`vstream.stopping`).
        Returns whether it was interrupted.
        """
        in_flight: deque[tuple[Frame, np.ndarray, list[tuple[int, int]], np.ndarray | None, int | None]] = deque()
        interrupted = False
        try:
            for item in items:
                if isinstance(item, Frame):
                    with self.times.timing("pyramid"):
                        shapes = _shapes(item.size, self.config.max_side)
                        small = pyramid.downsample_i420(item.i420, len(shapes) - 1)
                    with self.times.timing("schedule"):
                        where = self.schedule.plan(item.index, small)
                    if where is None:
                        self.runner.submit(small)
                    epoch = None
                    if self.stationary is not None:
                        with self.times.timing("stationary"):
                            epoch = self.stationary.observe(small)
                    in_flight.append((item, small, shapes, where, epoch))
                    if len(in_flight) >= max_in_flight:
                        emit(self._finish(*in_flight.popleft()))
                    continue
                if isinstance(item, Discontinuity):
                    while in_flight:
                        emit(self._finish(*in_flight.popleft()))
                    self.smoother.reset()
                    self.schedule.reset()
                    if self.stationary is not None:
                        self.stationary.reset()
                emit(item)
        except KeyboardInterrupt:
            interrupted = True
        stopping.finishing()
        try:
            while in_flight and not stopping.hurried():  # drain: every frame submitted is emitted
                emit(self._finish(*in_flight.popleft()))
        except KeyboardInterrupt:
            interrupted = True
        return interrupted

    def _finish(
        self, frame: Frame, small: np.ndarray, shapes: list[tuple[int, int]], where: np.ndarray | None, epoch: int | None
    ) -> Frame:
        """``where``: None for a key frame (its result is the runner's next), else :func:`carry`'s map.
        ``epoch``: the stationary layer's, None when it is off."""
        if where is None:
            self._key_residual = self.runner.next_result()
            raw = self._key_residual
        else:
            with self.times.timing("schedule"):
                raw = carry(self._key_residual, where)
        if epoch is not None:
            with self.times.timing("stationary"):
                layer = self.stationary.layer(epoch, small.shape[:2])
            if layer is not None:
                raw = raw + layer
        with self.times.timing("smooth"):
            residual = self.smoother.smooth(small, raw)
        with self.times.timing("reconstruct"):
            cleaned = apply_residual_i420(frame.i420, residual, shapes, self.config.strength, self.config.residual_floor)
            out = colour.hstack(frame.i420, cleaned) if self.compare else cleaned
        return dataclasses.replace(frame, i420=out)


class _FileSink:
    """The output file of :func:`clean_video`: opened at the first frame (its width and the
    input's rotation), pass-through packets copied, encoding on its own thread. With a
    ``span``, its warm-up frames are dropped and no other stream is copied; with ``compare``,
    frames are input | cleaned, the size of the first one, upright (:func:`_upright`)."""

    def __init__(
        self, reader: VideoReader, config: CleanConfig, staging: Path, on_frame: ProgressFn | None, span: Span | None,
        compare: bool = False, times: StageTimes | None = None,
    ) -> None:
        self.reader = reader
        self.times = times or StageTimes()
        self.config = config
        self.staging = staging
        self.on_frame = on_frame
        self.span = span
        self.compare = compare
        self.writer: VideoWriter | None = None
        self.consumer: Consumer | None = None
        self.early_packets: list[av.Packet] = []
        self.frames_written = 0

    def put(self, item: Frame | av.Packet) -> None:
        if self.span is not None and isinstance(item, Frame) and item.pts < self.span.start_pts:
            return  # warm-up
        if self.consumer is None:
            if isinstance(item, av.Packet):  # the writer opens at the first frame
                self.early_packets.append(item)
                return
            self._open(item)
        self.consumer.put(item)

    def _open(self, first: Frame) -> None:
        info, rotation = self.reader.info, self.reader.rotation
        if self.compare and rotation:  # turned upright already: the picture's height is the displayed one
            info, rotation = dataclasses.replace(info, height=info.width if round(rotation / 90) % 2 else info.height), 0
        self.writer = VideoWriter(
            self.staging, info, self.config.encode, self.reader.copy_streams if self.span is None else [],
            width=first.size[1] if self.compare else None, rotation=rotation, colour_tags=self.reader.colour_tags,
            tags=self.reader.tags,
        )
        self.consumer = Consumer(self._write, depth=16, name="vstream-encode")
        for packet in self.early_packets:
            self.consumer.put(packet)
        self.early_packets.clear()

    def _write(self, item: Frame | av.Packet) -> None:
        if isinstance(item, av.Packet):
            self.writer.copy(item)
            return
        with self.times.timing("encode"):
            self.writer.write(item.i420, item.pts)
        self.frames_written += 1
        if self.on_frame:
            self.on_frame(1)

    def close(self) -> None:
        if self.writer is None:
            return
        try:
            self.consumer.close()
        finally:
            self.writer.close()


def _shapes(size: tuple[int, int], max_side: int) -> list[tuple[int, int]]:
    h, w = size
    return pyramid.level_shapes(h, w, pyramid.levels_for(h, w, max_side))
