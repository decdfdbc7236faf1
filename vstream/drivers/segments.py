"""Live outputs: segment files, a push to an RTSP/RTMP server, or MPEG-TS on stdout.

Every sink encodes on its own thread behind a short queue, so a slow encoder shows up as dropped
input frames (counted by the live source) rather than as growing latency.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

import av

from ..errors import OutputError, redact
from ..outputs import check_writable, publish, stale_staging, staging_path
from ..stages.decode import VideoInfo
from ..stages.encode import EncodeSettings, VideoWriter
from ..stages.frame import Frame
from ..threads import Consumer
from .pipeline import Discontinuity

STDOUT = "-"
PUSH_FORMATS = {"rtsp": "rtsp", "rtsps": "rtsp", "rtmp": "flv", "rtmps": "flv"}
_QUEUE = 2  # frames waiting for the encoder

log = logging.getLogger(__name__)


class LiveSink(Protocol):
    """Where cleaned live frames go; :attr:`outputs` names what was written (redacted)."""

    outputs: list[str]

    def put(self, item: Frame | Discontinuity) -> None: ...

    def close(self) -> None: ...


def open_sink(
    output: str, settings: EncodeSettings, segment_time_s: float, on_written: Callable[[Frame], None]
) -> LiveSink:
    """``-`` → MPEG-TS on stdout; ``rtsp://``/``rtmp://`` → pushed there; else segment files."""
    if output == STDOUT:
        return StreamSink("pipe:1", "mpegts", {"flush_packets": "1"}, settings, on_written)
    scheme = urlsplit(output).scheme.lower()
    if scheme in PUSH_FORMATS:
        options = {"rtsp_transport": "tcp"} if PUSH_FORMATS[scheme] == "rtsp" else {}
        return StreamSink(output, PUSH_FORMATS[scheme], options, settings, on_written)
    if "://" in output:
        raise OutputError(f"cannot push to {redact(output)}: use rtsp://, rtsps://, rtmp:// or rtmps://")
    return SegmentSink(Path(output), segment_time_s, settings, on_written)


class _EncodingSink:
    """Encodes frames on a background thread into writers that subclasses open and close."""

    def __init__(self, settings: EncodeSettings, on_written: Callable[[Frame], None]) -> None:
        self.settings = settings
        self.on_written = on_written
        self.outputs: list[str] = []
        self.writer: VideoWriter | None = None
        self._consumer = Consumer(self._handle, depth=_QUEUE, name="vstream-encode")

    def put(self, item: Frame | Discontinuity) -> None:
        self._consumer.put(item)

    def close(self) -> None:
        """Encode what is queued, then drain the encoder and finalise the output."""
        try:
            self._consumer.close()
        finally:
            self._close_writer()

    def _handle(self, item: Frame | Discontinuity) -> None:
        if isinstance(item, Discontinuity):
            self._gap()
            return
        if self.writer is None:
            self.writer = self._open_writer(item)
        self._write(item)
        self.on_written(item)

    def _info(self, frame: Frame) -> VideoInfo:
        height, width = frame.size
        return VideoInfo(width, height, frame.time_base, None, 0, None, "")

    def _write(self, frame: Frame) -> None:
        self.writer.write(frame.i420, frame.pts)

    def _gap(self) -> None:
        """The input came back after an outage (timestamps are already rebased past it)."""

    def _open_writer(self, first: Frame) -> VideoWriter:
        raise NotImplementedError

    def _close_writer(self) -> None:
        if self.writer is not None:
            writer, self.writer = self.writer, None
            writer.close()


class StreamSink(_EncodingSink):
    """One continuous stream (stdout or a server), kept open across input outages."""

    def __init__(self, url: str, container_format: str, options: dict[str, str], settings: EncodeSettings,
                 on_written: Callable[[Frame], None]) -> None:
        super().__init__(settings, on_written)
        self.url, self.container_format, self.options = url, container_format, options

    def _write(self, frame: Frame) -> None:
        if frame.size != (self.writer.video.height, self.writer.video.width):
            raise OutputError(
                f"the input changed size to {frame.size[1]}x{frame.size[0]} after a reconnect; "
                f"one stream cannot (segment files can: a new one starts after every outage)"
            )
        super()._write(frame)

    def _open_writer(self, first: Frame) -> VideoWriter:
        writer = VideoWriter(self.url, self._info(first), self.settings, colour_tags=first.colour_tags,
                             container_format=self.container_format, container_options=self.options)
        self.outputs.append("stdout" if self.url == "pipe:1" else redact(self.url))
        return writer


# Muxer options that keep a segment playable up to about its last second if the process dies:
# fragmented MP4 (a fragment every second, a moov up front), Matroska clusters of a second.
_CRASH_SAFE = {
    ".mp4": {"movflags": "frag_keyframe+empty_moov+default_base_moof", "frag_duration": "1000000"},
    ".mkv": {"cluster_time_limit": "1000"},
}
_CRASH_SAFE[".mov"] = _CRASH_SAFE[".m4v"] = _CRASH_SAFE[".mp4"]
_CRASH_SAFE[".webm"] = _CRASH_SAFE[".mkv"]


class SegmentSink(_EncodingSink):
    """Segment files beside ``template``: ``cam.mkv`` → ``cam-20261125T072300Z.mkv``, one per
    ``segment_time_s`` and a new one after every outage.

    Each segment is written under a hidden staging name and renamed when it is finalised, so a
    visible name is always a finished file, never replaced (:func:`~vstream.outputs.publish`).
    MP4 and Matroska segments are written fragmented (:data:`_CRASH_SAFE`, as packets come), so
    the open segment of a run that is killed plays up to about its last second: the next run on
    the same ``template`` gives it its visible name.
    """

    def __init__(self, template: Path, segment_time_s: float, settings: EncodeSettings,
                 on_written: Callable[[Frame], None]) -> None:
        check_writable(template)
        super().__init__(settings, on_written)
        self.template = template
        self.segment_time_s = segment_time_s
        self._suffix = template.suffix or ".mkv"
        self._first_pts = 0
        self._path: Path | None = None
        self._recover()

    def _recover(self) -> None:
        """Publish the open segments of killed runs on this template; drop those with no frame."""
        pattern = re.compile(rf"{re.escape(self.template.stem)}-\d{{8}}T\d{{6}}Z(-\d+)?{re.escape(self._suffix)}")
        folder = self.template.parent if str(self.template.parent) else Path(".")
        for staging, segment in stale_staging(folder):
            if not pattern.fullmatch(segment.name):
                continue
            if _plays(staging):
                log.warning("kept %s, the open segment of a run that was killed",
                            publish(staging, segment))
            else:
                staging.unlink(missing_ok=True)

    def _write(self, frame: Frame) -> None:
        if frame.pts - self._first_pts >= self.segment_time_s / frame.time_base:
            self._close_writer()
            self.writer = self._open_writer(frame)
        self.writer.write(frame.i420, frame.pts - self._first_pts)

    def _gap(self) -> None:
        self._close_writer()

    def _open_writer(self, first: Frame) -> VideoWriter:
        self._path = self._segment_path()
        self._first_pts = first.pts
        options = {"flush_packets": "1", **_CRASH_SAFE.get(self._suffix.lower(), {})}
        return VideoWriter(staging_path(self._path), self._info(first), self.settings, colour_tags=first.colour_tags,
                           container_options=options)

    def _close_writer(self) -> None:
        if self.writer is None:
            return
        staging = staging_path(self._path)
        try:
            super()._close_writer()
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        self.outputs.append(str(publish(staging, self._path)))

    def _segment_path(self) -> Path:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        stem, suffix = self.template.stem, self._suffix
        path = self.template.with_name(f"{stem}-{stamp}{suffix}")
        n = 1
        while path.exists() or str(path) in self.outputs:
            n += 1
            path = self.template.with_name(f"{stem}-{stamp}-{n}{suffix}")
        return path


def _plays(path: Path) -> bool:
    """Whether a video frame decodes from ``path``."""
    try:
        with av.open(str(path)) as container:
            return next(container.decode(video=0), None) is not None
    except (av.FFmpegError, IndexError, OSError):
        return False
