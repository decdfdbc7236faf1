"""Decode stage: PyAV container → :class:`~vstream.stages.frame.Frame` objects and pass-through packets."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import DecodeError, InputOpenError, redact
from .avframes import to_i420, working_format
from .frame import Frame

log = logging.getLogger(__name__)

COLOUR_TAGS = ("colorspace", "color_range", "color_primaries", "color_trc")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})
_ENCODING_TAGS = frozenset({"encoder", "major_brand", "minor_version", "compatible_brands"})
_CONTENT_TAGS = frozenset({"language", "title"})  # of the video stream; its other tags describe its encoding
STDIN = "-"  # the input name that reads stdin


def is_image(path: str | Path) -> bool:
    """True for a still image, which is cleaned as a one-frame input into an image output."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """A still image as stored: ``(H, W)`` grey, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, uint8
    or uint16 (other depths, such as float TIFF, are read as 8-bit RGB, with a warning)."""
    path = Path(path)
    if not path.is_file():
        raise InputOpenError(f"input not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputOpenError(f"not a readable image: {path}")
    if image.dtype not in (np.uint8, np.uint16):
        log.warning("%s has %s samples: cleaned as 8-bit RGB", path, image.dtype)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)


@dataclass(frozen=True)
class VideoInfo:
    """What the encoder and the progress bar need to know about the input's video stream."""

    width: int
    height: int
    time_base: Fraction
    average_rate: Fraction | None
    frames: int  # 0 when the container does not say
    duration_s: float | None
    codec: str
    tags: dict[str, str] = dataclasses.field(default_factory=dict)  # of the stream: language, title


@dataclass(frozen=True)
class Selection:
    """What of the input to clean, as ffmpeg's input options: from ``start_s`` (``-ss``) for
    ``duration_s`` (``-t``, None: to the end), with or without its audio (``-an``)."""

    start_s: float = 0.0
    duration_s: float | None = None
    audio: bool = True

    @property
    def trims(self) -> bool:
        return self.start_s > 0 or self.duration_s is not None

    def frames(self, total: int, seconds: float | None) -> int:
        """Of an input of ``total`` frames lasting ``seconds``, about how many are selected."""
        if not self.trims or not total or not seconds:
            return total
        kept = max(0.0, min(seconds - self.start_s, self.duration_s if self.duration_s is not None else seconds))
        return round(total * kept / seconds)


class VideoReader:
    """Open a media file and decode its first video stream.

    Use as a context manager. :meth:`items` yields the video frames as :class:`Frame` objects and,
    when ``passthrough`` is true, the audio and subtitle packets as ``av.Packet`` objects, both in
    demux order, so the writer can copy them without opening the input twice.
    """

    def __init__(
        self,
        source: str | Path,
        options: dict[str, str] | None = None,
        timeout: tuple[float, float] | None = None,
        live: bool = False,
        audio: bool = True,
        output_pix_fmt: str = "yuv420p",
    ) -> None:
        """``timeout``: (open, read) seconds for network input; ``live``: a camera feed, decoded
        with slice threading only (frame threading holds frames back) and read as it comes;
        ``audio`` False: audio streams are not passed through; ``output_pix_fmt``: the output's
        pixel format, which decides how much of the input's chroma and depth the frames keep
        (:func:`~vstream.stages.avframes.working_format`). ``source`` ``-`` reads stdin."""
        self.source = "pipe:0" if str(source) == STDIN else str(source)
        self.name = "stdin" if str(source) == STDIN else redact(self.source)
        if "://" not in self.source and not self.source.startswith("pipe:") and not Path(self.source).is_file():
            raise InputOpenError(f"input not found: {self.name}")
        started = time.monotonic()
        try:
            self.container = av.open(self.source, options=options or {}, timeout=timeout)
        except av.FFmpegError as exc:
            reason = _reason(exc)
            if timeout and time.monotonic() - started >= timeout[0]:
                reason = f"timed out: no answer within {timeout[0]:g} s"
            raise InputOpenError(f"cannot open {self.name}: {reason}") from None
        self.video = self._video_stream()
        self.video.thread_type = "SLICE" if live else "AUTO"
        self.copy_streams = [
            s for s in self.container.streams if s.type == "subtitle" or (audio and s.type == "audio")
        ]
        self.rotation = 0
        self.colour_tags: dict[str, int] = {}
        self.output_format = av.VideoFormat(output_pix_fmt)
        self.pix_fmt = "yuv420p"  # the frames' working format, decided at the first frame
        self.decode_errors = 0
        self.stop_reason: str | None = None  # why reading stopped early (None: end of input)
        self.read_timeout = timeout[1] if timeout else None

    def _video_stream(self) -> av.video.stream.VideoStream:
        """The first video stream that is not an attached picture (an audio file's cover art: one
        frame, not a video); cover art beside a video is left out with a warning."""
        streams = self.container.streams.video
        covers = [s for s in streams if s.disposition & av.stream.Disposition.attached_pic]
        videos = [s for s in streams if s not in covers]
        if not videos:
            self.container.close()
            only = " (only cover art, an attached picture)" if covers else ""
            raise InputOpenError(f"no video stream in {self.name}{only}")
        for cover in covers:
            log.warning("not copying the cover art of %s (stream %d, an attached picture)", self.name, cover.index)
        return videos[0]

    @property
    def tags(self) -> dict[str, str]:
        """The file's own metadata (title, creation_time, ...), without what describes its encoding
        (encoder, MP4 brands): the output's muxer writes its own."""
        return {k: v for k, v in self.container.metadata.items() if k.lower() not in _ENCODING_TAGS}

    @property
    def info(self) -> VideoInfo:
        v = self.video
        duration = None
        if v.duration is not None and v.time_base:
            duration = float(v.duration * v.time_base)
        elif self.container.duration:
            duration = self.container.duration / av.time_base
        return VideoInfo(
            width=v.codec_context.width,
            height=v.codec_context.height,
            time_base=v.time_base or Fraction(1, 90000),
            average_rate=v.average_rate or v.guessed_rate,
            frames=v.frames or 0,
            duration_s=duration,
            codec=v.codec_context.name,
            tags={key: value for key, value in v.metadata.items() if key.lower() in _CONTENT_TAGS},
        )

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.container.close()

    def video_packets(self) -> list[tuple[int | None, bool]]:
        """(pts, is keyframe) of every video packet, in demux order, read without decoding."""
        try:
            return [(p.pts, p.is_keyframe) for p in self.container.demux(self.video) if p.size]
        except av.FFmpegError as exc:
            raise DecodeError(f"cannot read {self.name}: {_reason(exc)}") from None

    def items(
        self, passthrough: bool = True, first_pts: int | None = None, end_pts: int | None = None, first_index: int = 0
    ) -> Iterator[Frame | av.Packet]:
        """Decoded frames (and pass-through packets) in demux order, numbered from ``first_index``
        (a segment's frames as in the whole file).

        ``first_pts``/``end_pts`` (in the video stream's time base) limit the frames to
        ``first_pts <= pts < end_pts``: decoding starts at the keyframe at or before
        ``first_pts`` (a seek) and stops at ``end_pts``. A packet that fails to decode is
        skipped and counted, as ffmpeg does; an input where no frame decodes raises
        :class:`DecodeError`, and so does a seek that lands past ``first_pts``. A whole input
        that ends before the frame count its container announces is logged as a warning.
        """
        streams = [self.video, *(self.copy_streams if passthrough else [])]
        index = 0
        seeking = first_pts is not None
        if seeking:
            self._seek(first_pts)
        try:
            for packet in self.container.demux(streams):
                if packet.stream is not self.video:
                    if packet.size:
                        yield packet
                    continue
                for frame in self._decode(packet):
                    if seeking and frame.pts > first_pts:
                        raise DecodeError(f"cannot seek precisely in {self.name}: landed past {first_pts}")
                    seeking = False
                    if end_pts is not None and frame.pts >= end_pts:
                        return
                    if first_pts is not None and frame.pts < first_pts:
                        continue
                    if index == 0:
                        self.rotation = int(frame.rotation or 0)
                        self.colour_tags = {k: getattr(frame, k) for k in COLOUR_TAGS}
                        self.pix_fmt = working_format(frame.format, self.output_format, self.name)
                    yield _to_frame(frame, first_index + index, self.pix_fmt, self.colour_tags)
                    index += 1
        except av.FFmpegError as exc:  # a truncated or corrupt container: keep what decoded
            self.decode_errors += 1
            self.stop_reason = _reason(exc)
            if isinstance(exc, av.ExitError) and self.read_timeout:  # PyAV's read timeout fired
                self.stop_reason = f"timed out: nothing received for {self.read_timeout:g} s"
            log.warning("stopped reading %s: %s", self.name, self.stop_reason)
        if index == 0:
            raise DecodeError(f"no decodable video frames in {self.name}")
        announced = self.video.frames or 0
        if first_pts is None and end_pts is None and index < announced:
            log.warning("%s ended early: %d of the %d frames its container announces were decoded",
                        self.name, index, announced)

    def selected(self, selection: Selection) -> Iterator[Frame | av.Packet]:
        """:meth:`items` of ``selection``, moved back by its start so the output starts where the
        input does (as ffmpeg does after ``-ss``); packets outside it are dropped."""
        if not selection.trims:
            yield from self.items()
            return
        duration = self.info.duration_s
        if duration is not None and selection.start_s >= duration:
            raise DecodeError(f"start {selection.start_s:g} s is past the end of {self.name} ({duration:.2f} s)")
        time_base = self.video.time_base
        shift = round(selection.start_s / time_base)
        first = (self.video.start_time or 0) + shift
        end = None if selection.duration_s is None else first + round(selection.duration_s / time_base)
        for item in self.items(True, first if shift else None, end):
            if isinstance(item, Frame):
                yield dataclasses.replace(item, pts=None if item.pts is None else item.pts - shift)
                continue
            if item.pts is None:
                continue
            moved = round(shift * time_base / item.time_base)
            at = item.pts - moved
            if at < 0 or (end is not None and (item.pts * item.time_base) >= end * time_base):
                continue
            item.pts, item.dts = at, None if item.dts is None else item.dts - moved
            yield item

    def _seek(self, pts: int) -> None:
        try:
            self.container.seek(pts, stream=self.video, backward=True, any_frame=False)
        except av.FFmpegError as exc:
            raise DecodeError(f"cannot seek in {self.name}: {_reason(exc)}") from None

    def _decode(self, packet: av.Packet) -> list[av.VideoFrame]:
        try:
            return packet.decode()
        except av.InvalidDataError as exc:
            self.decode_errors += 1
            log.warning("skipped a corrupt packet in %s: %s", self.name, _reason(exc))
            return []


def _to_frame(frame: av.VideoFrame, index: int, pix_fmt: str, colour_tags: dict[str, int]) -> Frame:
    return Frame(index, frame.pts, frame.time_base, to_i420(frame, pix_fmt), colour_tags)


def _reason(exc: av.FFmpegError) -> str:
    """FFmpeg's own words for an error, without the path PyAV appends."""
    return exc.strerror or str(exc)
