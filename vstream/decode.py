"""Decode stage: PyAV container → :class:`~vstream.frame.Frame` objects and pass-through packets."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from .errors import DecodeError, InputOpenError, redact
from .frame import Frame

log = logging.getLogger(__name__)

COLOUR_TAGS = ("colorspace", "color_range", "color_primaries", "color_trc")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})


def is_image(path: str | Path) -> bool:
    """True for a still image, which is cleaned as a one-frame input into an image output."""
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | Path) -> np.ndarray:
    """A still image as ``(H, W, 3)`` uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise InputOpenError(f"input not found: {path}")
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputOpenError(f"not a readable image: {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


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
    ) -> None:
        """``timeout``: (open, read) seconds for network input; ``live``: a camera feed, decoded
        with slice threading only (frame threading holds frames back) and read as it comes."""
        self.source = str(source)
        self.name = redact(self.source)
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
        if not self.container.streams.video:
            self.container.close()
            raise InputOpenError(f"no video stream in {self.name}")
        self.video = self.container.streams.video[0]
        width, height = self.video.codec_context.width, self.video.codec_context.height
        if width % 2 or height % 2:
            self.container.close()
            raise InputOpenError(
                f"{self.name} is {width}x{height}: odd frame sizes are not supported (yuv420p)"
            )
        self.video.thread_type = "SLICE" if live else "AUTO"
        self.copy_streams = [
            s for s in self.container.streams if s.type in ("audio", "subtitle")
        ]
        self.rotation = 0
        self.colour_tags: dict[str, int] = {}
        self.decode_errors = 0
        self.stop_reason: str | None = None  # why reading stopped early (None: end of input)
        self.read_timeout = timeout[1] if timeout else None

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
        self, passthrough: bool = True, first_pts: int | None = None, end_pts: int | None = None
    ) -> Iterator[Frame | av.Packet]:
        """Decoded frames (and pass-through packets) in demux order.

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
                    yield _to_frame(frame, index)
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


def _to_frame(frame: av.VideoFrame, index: int) -> Frame:
    if frame.format.name != "yuv420p":  # e.g. yuvj420p, yuv422p, rgb: converted once, here
        frame = frame.reformat(format="yuv420p")
    return Frame(index=index, pts=frame.pts, time_base=frame.time_base, i420=frame.to_ndarray())


def _reason(exc: av.FFmpegError) -> str:
    """FFmpeg's own words for an error, without the path PyAV appends."""
    return exc.strerror or str(exc)
