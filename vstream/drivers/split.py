"""Long files cut into keyframe-aligned segments that are cleaned apart and joined by stream copy.

A segment is the input's frames ``start_pts <= pts < end_pts``, ``start_pts`` a keyframe, so a
worker decodes it from the path with a seek. It is cleaned after a warm-up (the frames just
before it, run through the network and the smoother but not written) so that its smoothing
state matches the sequential run's, and encoded alone into a hidden file beside the output.
:func:`join` copies the segments' video packets and the input's audio and subtitle packets
into the output: no re-encode, the input's timestamps, frame count and audio kept.
"""

from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av

from ..errors import OutputError, redact
from ..outputs import atomic_output
from ..stages.decode import VideoReader
from ..stages.encode import add_copies
from ..stages.schedule import ScheduleConfig
from ..stages.smooth import SmoothingConfig
from ..stages.stationary import StationaryConfig

# Containers with a seek index, where a seek lands on the keyframe asked for.
SPLITTABLE = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm"})
_RESIDUAL_SPAN = 2.0 * 255.0  # residuals lie in [-1, 1]: two of them differ by at most 510 levels
_TOLERANCE = 0.5  # levels: an error below half a level rounds to at most one level (1/255)


@dataclass(frozen=True)
class Span:
    """The input's frames ``start_pts <= pts < end_pts`` (video time base; ``end_pts`` None: to
    the end), cleaned after warm-up frames from ``warmup_pts`` on; ``frames`` are written.
    ``first_index``: the warm-up's first frame's number in the whole file (key frames are chosen
    by it, :mod:`vstream.stages.schedule`)."""

    warmup_pts: int
    start_pts: int
    end_pts: int | None
    frames: int
    first_index: int = 0


def warmup_frames(smoothing: SmoothingConfig, schedule: ScheduleConfig, stationary: StationaryConfig | None = None) -> int:
    """Warm-up frames that bring a segment's smoothed residual within 1/255 of the sequential run's.

    A segment's smoother starts from the first warm-up frame's residual instead of the
    sequential run's average there: an error of at most 2 (residuals lie in [-1, 1]), 510
    levels once scaled to pixels. Each later frame moves the average towards the new residual
    by a weight of at least ``alpha`` (more where the picture moved, all the way at a scene
    cut), so the error shrinks by a factor of at most ``1 - alpha`` a frame: after ``n`` frames
    it is at most ``510 * (1 - alpha) ** n``. Soft-thresholding it (``residual_floor``),
    expanding it to full size (pyrUp: weights >= 0 summing to 1) and converting it to Y/U/V
    (rows of absolute sum < 1) do not enlarge it, so ``n`` is chosen to bring it under half a
    level, which rounds to at most one level apart.
    The default ``alpha`` of 0.4 needs 14 frames; ``alpha`` 1 (no smoothing) needs none.
    All that holds once the smoother gets the sequential run's residuals: with key frames
    scheduled (:mod:`vstream.stages.schedule`) a segment picks the whole file's key frames from its
    first frame numbered a multiple of ``max_gap`` on, so ``max_gap - 1`` frames more.

    An enabled ``stationary`` layer (:mod:`vstream.stages.stationary`) holds evidence from all the
    footage before: a look-behind of twice its ``memory`` gives a segment three quarters of the
    weight the sequential run has (on moving footage), so the joins are close, not bit-exact.
    """
    if stationary is not None and stationary.enabled:
        return max(warmup_frames(smoothing, schedule), math.ceil(2 * stationary.memory) + stationary.gap)
    keys = 0 if schedule.every_frame else schedule.max_gap - 1
    if smoothing.alpha >= 1.0:
        return keys
    return keys + math.ceil(math.log(_TOLERANCE / _RESIDUAL_SPAN) / math.log(1.0 - smoothing.alpha))


def plan(source: str, segment_s: float, warmup: int) -> tuple[list[Span] | None, int, float]:
    """(segments, frames, seconds) of ``source`` cut into segments of about ``segment_s``.

    Segments start at the first keyframe at or after each even cut of the duration; each is
    preceded by ``warmup`` frames (fewer at the start of the file). Segments is None where the
    file is cleaned whole: ``segment_s`` 0, shorter than 1.5 segments, a container without a
    seek index, or frames without timestamps. Frames is then the container's count (or an
    estimate from the duration); only a file that is split is read through (its packets, not
    decoded).
    """
    with VideoReader(source) as reader:
        info = reader.info
        seconds = info.duration_s or 0.0
        frames = info.frames or round(seconds * float(info.average_rate or 0))
        count = round(seconds / segment_s) if segment_s > 0 else 0
        if count < 2 or Path(source).suffix.lower() not in SPLITTABLE:
            return None, frames, seconds
        packets = reader.video_packets()
    if any(pts is None for pts, _ in packets):
        return None, frames, seconds
    order = sorted(pts for pts, _ in packets)
    keyframes = sorted(pts for pts, key in packets if key)
    first, last = order[0], order[-1]
    starts = [first]
    for k in range(1, count):
        at = bisect_left(keyframes, first + (last - first) * k / count)
        if at < len(keyframes) and keyframes[at] > starts[-1]:
            starts.append(keyframes[at])
    if len(starts) < 2:
        return None, len(order), seconds
    bounds = [bisect_left(order, pts) for pts in starts] + [len(order)]
    spans = [
        Span(order[max(0, i - warmup)], order[i], order[j] if j < len(order) else None, j - i, max(0, i - warmup))
        for i, j in zip(bounds, bounds[1:])
    ]
    return spans, len(order), seconds


def segment_path(output: Path, index: int) -> Path:
    """Hidden file beside ``output`` for its segment ``index`` (same container as ``output``)."""
    return output.with_name(f".{output.stem}.seg{index:04d}{output.suffix}")


def join(source: str, segments: list[Path], output: Path, audio: bool = True) -> None:
    """Write ``output`` (atomically) from the video packets of ``segments``, in order, and the
    audio (unless ``audio`` is False) and subtitle packets of ``source``, interleaved by time;
    nothing is re-encoded."""
    try:
        with atomic_output(output) as staged, VideoReader(source, audio=audio) as reader, av.open(str(staged.path), "w") as out:
            with av.open(str(segments[0])) as first:
                video = out.add_stream_from_template(first.streams.video[0])
            video.metadata.update(reader.info.tags)
            out.metadata.update(reader.tags)
            copies = add_copies(out, reader.copy_streams, lambda probe: probe.add_stream_from_template(video))
            copied = [s for s in reader.copy_streams if s.index in copies]
            others = reader.container.demux(copied) if copied else iter(())
            for packet in heapq.merge(_packets_of(segments), others, key=_time):
                if packet.size:
                    packet.stream = video if packet.stream.type == "video" else copies[packet.stream.index]
                    out.mux(packet)
    except av.FFmpegError as exc:
        raise OutputError(redact(f"cannot join the segments of {output}: {exc}")) from None


def _packets_of(segments: list[Path]) -> Iterator[av.Packet]:
    for path in segments:
        with av.open(str(path)) as container:
            yield from container.demux(container.streams.video[0])


def _time(packet: av.Packet) -> float:
    stamp = packet.dts if packet.dts is not None else packet.pts or 0
    return float(stamp * packet.time_base)
