"""Encode stage: cleaned RGB frames → PyAV video stream; audio and subtitles copied untouched."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from .avframes import from_i420
from .decode import VideoInfo
from .errors import ConfigError, OutputError, redact

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder options, named as in ffmpeg (``-c:v``, ``-crf``, ``-preset``, ``-tune``, ``-pix_fmt``)."""

    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "veryfast"
    tune: str | None = None  # zerolatency for live output: no lookahead, no frames held back
    pix_fmt: str = "yuv420p"

    def __post_init__(self) -> None:
        try:
            codec = av.Codec(self.codec, "w")
        except (av.FFmpegError, ValueError):  # PyAV raises UnknownCodecError, a ValueError
            raise ConfigError(f"unknown video encoder {self.codec!r}") from None
        if codec.type != "video":
            raise ConfigError(f"{self.codec!r} is not a video encoder")
        formats = {f.name for f in codec.video_formats or ()}
        if formats and self.pix_fmt not in formats:
            raise ConfigError(
                f"encoder {self.codec} cannot take pix_fmt {self.pix_fmt!r}; "
                f"it takes {', '.join(sorted(formats))}"
            )

    @property
    def options(self) -> dict[str, str]:
        options = {}
        if self.crf is not None:
            options["crf"] = str(self.crf)
        if self.preset:
            options["preset"] = self.preset
        if self.tune:
            options["tune"] = self.tune
        return options


def check_muxer(path: Path) -> None:
    """Fail before any work if no container format goes by ``path``'s extension (FFmpeg picks
    the format from it)."""
    if path.suffix.lower().lstrip(".") not in _muxer_extensions():
        reason = f"no container format goes by {path.suffix!r}" if path.suffix else "no extension to tell the format by"
        raise OutputError(f"cannot write {path}: {reason}; use .mp4, .mkv, .mov, ...")


@functools.cache
def _muxer_extensions() -> frozenset[str]:
    extensions = set()
    for name in av.formats_available:
        try:
            extensions.update(av.format.ContainerFormat(name, "w").extensions)
        except ValueError:  # a demuxer only
            continue
    return frozenset(e.lower() for e in extensions)


def add_copies(container: av.container.OutputContainer, streams: list[av.stream.Stream]) -> dict[int, av.stream.Stream]:
    """Add to ``container`` a copy of each input stream it can hold; input index → output stream."""
    copies = {}
    for stream in streams:
        if stream.codec_context.name not in container.supported_codecs:
            log.warning(
                "not copying %s stream %d (%s): %s cannot hold it",
                stream.type, stream.index, stream.codec_context.name, container.format.name,
            )
            continue
        copies[stream.index] = container.add_stream_from_template(stream)
    return copies


class VideoWriter:
    """Open ``path`` for writing one video stream plus copies of the input's pass-through streams.

    Frames keep the input's pts and time base; the display rotation is carried over. Use as a
    context manager: leaving it drains the encoder and closes the file, also after an error.
    ``colour_tags`` (the input frames' colorspace, range, primaries, transfer) are set on every
    frame, so players interpret the untouched planes as the input's. ``path`` may be a URL or
    ``pipe:1`` (with ``container_format``); ``container_options`` go to the muxer.
    """

    def __init__(
        self,
        path: Path | str,
        info: VideoInfo,
        settings: EncodeSettings,
        copy_streams: list[av.stream.Stream] = (),
        width: int | None = None,
        rotation: int = 0,
        colour_tags: dict[str, int] | None = None,
        container_format: str | None = None,
        container_options: dict[str, str] | None = None,
    ) -> None:
        try:
            self.container = av.open(str(path), "w", format=container_format, options=container_options or {})
        except (av.FFmpegError, ValueError) as exc:
            raise OutputError(redact(f"cannot write {path}: {exc}")) from None
        rate = info.average_rate or Fraction(25)
        self.video = self.container.add_stream(settings.codec, rate=rate, options=settings.options)
        self.video.width, self.video.height = encoded_size(settings, width or info.width, info.height)
        self.video.pix_fmt = settings.pix_fmt
        self.video.time_base = info.time_base
        self.video.codec_context.time_base = info.time_base
        if rotation:
            self.video.set_display_rotation(rotation)
        self.colour_tags = colour_tags or {}
        self._fallback_step = int(round(1 / (rate * info.time_base))) or 1
        self._copies = add_copies(self.container, copy_streams)
        self.frames = 0

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def write(self, i420: np.ndarray, pts: int | None) -> None:
        """Encode one I420 frame (:mod:`vstream.colour`, padded if odd-sized: :mod:`vstream.avframes`)
        at ``pts`` (the input's, in its time base)."""
        frame = from_i420(i420, self.video.width, self.video.height)
        frame.pts = pts
        for tag, value in self.colour_tags.items():
            setattr(frame, tag, value)
        self.write_frame(frame)

    def write_frame(self, frame: av.VideoFrame) -> None:
        """Encode a PyAV frame as it is (the plain-transcode path of ``vstream bench``)."""
        if frame.pts is None:
            frame.pts = self.frames * self._fallback_step
        # The pts are in the input's time base, which the codec context keeps; the stream's
        # changes to the muxer's (1/1000 for Matroska) once the first packet is muxed.
        frame.time_base = self.video.codec_context.time_base
        self.container.mux(self.video.encode(frame))
        self.frames += 1

    def copy(self, packet: av.Packet) -> None:
        """Mux an audio/subtitle packet from the input unchanged (ignored if its stream was dropped)."""
        stream = self._copies.get(packet.stream.index)
        if stream is not None:
            packet.stream = stream
            self.container.mux(packet)

    def close(self) -> None:
        """Drain the encoder and close the file (idempotent)."""
        if self.container is None:
            return
        try:
            self.container.mux(self.video.encode(None))
        finally:
            self.container.close()
            self.container = None


def encoded_size(settings: EncodeSettings, width: int, height: int) -> tuple[int, int]:
    """``width`` × ``height``, or where the encoder cannot take that odd size (x264 and x265 at
    4:2:0) the even size one larger, the picture's last column/row repeated, with a warning."""
    if not (width % 2 or height % 2) or _opens_at(settings, width, height):
        return width, height
    even = width + width % 2, height + height % 2
    log.warning("%s cannot encode %s at %dx%d: writing %dx%d, the last column/row repeated "
                "(--pix-fmt yuv444p or --codec libvpx-vp9 keeps %dx%d)",
                settings.codec, settings.pix_fmt, width, height, *even, width, height)
    return even


def _opens_at(settings: EncodeSettings, width: int, height: int) -> bool:
    context = av.CodecContext.create(settings.codec, "w")
    context.width, context.height, context.pix_fmt = width, height, settings.pix_fmt
    context.time_base = Fraction(1, 25)
    try:
        context.open()
    except av.FFmpegError:
        return False
    return True
