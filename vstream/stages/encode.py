"""Encode stage: cleaned RGB frames → PyAV video stream; audio and subtitles copied untouched."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import ConfigError, OutputError, redact
from . import encoders
from .avframes import from_i420
from .decode import VideoInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EncodeSettings:
    """Encoder options, named as in ffmpeg (``-c:v``, ``-crf``, ``-preset``, ``-tune``, ``-pix_fmt``,
    ``-g``, ``-b:v``, ``-maxrate``, ``-bufsize``); ``options`` go to the encoder as they are.

    ``bitrate`` is the alternative to ``crf``: when it is set, ``crf`` is not passed. ``crf``,
    ``preset`` and ``tune`` are passed only to an encoder that has them (libvpx-vp9 has no preset),
    and checked against what it accepts (:mod:`vstream.stages.encoders`) when the settings are made.
    ``codec`` may be ffmpeg's codec name (``h264``): it becomes the encoder's (``libx264``).
    ``preset`` and ``pix_fmt`` left as None become the encoder's defaults
    (:func:`~vstream.stages.encoders.default_preset`, :func:`~vstream.stages.encoders.default_pix_fmt`).
    """

    codec: str = "libx264"
    crf: float | None = 18
    preset: str | None = None  # veryfast for x264 and x265, else the encoder's own
    tune: str | None = None  # zerolatency for live output: no lookahead, no frames held back
    pix_fmt: str | None = None  # yuv420p where the encoder takes it
    gop: int | None = None  # frames from one keyframe to the next (None: the encoder's default)
    bitrate: str | None = None  # average bitrate, e.g. 4M or 800k
    maxrate: str | None = None
    bufsize: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.options, dict):
            raise ConfigError("encode.options must be a mapping of encoder option to value")
        if self.maxrate is not None and self.bufsize is None:
            raise ConfigError("maxrate needs bufsize (the rate control buffer), as in ffmpeg")
        if self.gop is not None and self.gop < 1:
            raise ConfigError(f"gop must be at least 1, got {self.gop}")
        codec = encoders.video_encoder(self.codec).name
        object.__setattr__(self, "codec", codec)  # frozen: the defaults are settled once, here
        if self.preset is None:
            object.__setattr__(self, "preset", encoders.default_preset(codec))
        if self.pix_fmt is None:
            object.__setattr__(self, "pix_fmt", encoders.default_pix_fmt(codec))
        encoders.check(self.codec, self.pix_fmt, self._rated(), self._others())

    @property
    def av_options(self) -> dict[str, str]:
        """The options for FFmpeg's encoder, as ffmpeg's command line would set them."""
        return {**self._rated(), **self._others()}

    def _rated(self) -> dict[str, str]:
        values = {"crf": None if self.bitrate is not None else self.crf, "preset": self.preset, "tune": self.tune}
        has = encoders.choices(self.codec)
        return {key: _text(value) for key, value in values.items() if value not in (None, "") and key in has}

    def _others(self) -> dict[str, str]:
        values = {"g": self.gop, "b": self.bitrate, "maxrate": self.maxrate, "bufsize": self.bufsize}
        chosen = {key: _text(value) for key, value in values.items() if value is not None}
        return {**chosen, **{str(key): _text(value) for key, value in self.options.items()}}


def _text(value: object) -> str:
    """An option value as FFmpeg reads it: 18.0 as ``18``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


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
    ``colour_tags`` (the input frames' colorspace, range, primaries, transfer) are set on the
    stream, which encoders write into the bitstream and muxers into the container, so players
    interpret the untouched planes as the input's. ``path`` may be a URL or
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
        options = encoders.own_log_options(settings.codec, settings.av_options)
        self.video = self.container.add_stream(settings.codec, rate=rate, options=options)
        self.video.width, self.video.height = encoded_size(settings, width or info.width, info.height)
        self.video.pix_fmt = settings.pix_fmt
        self.video.time_base = info.time_base
        self.video.codec_context.time_base = info.time_base
        if rotation:
            self.video.set_display_rotation(rotation)
        for tag, value in (colour_tags or {}).items():
            setattr(self.video.codec_context, tag, value)
        self._fallback_step = int(round(1 / (rate * info.time_base))) or 1
        self._copies = add_copies(self.container, copy_streams)
        self.frames = 0
        self.repaired = 0  # frames whose pts did not increase, moved just past the one before
        self._last_pts: int | None = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def write(self, i420: np.ndarray, pts: int | None) -> None:
        """Encode one I420 frame, or one in another working format (:mod:`vstream.stages.colour`, padded if odd-sized: :mod:`vstream.stages.avframes`)
        at ``pts`` (the input's, in its time base)."""
        frame = from_i420(i420, self.video.width, self.video.height)
        frame.pts = pts
        self.write_frame(frame)

    def write_frame(self, frame: av.VideoFrame) -> None:
        """Encode a PyAV frame as it is (the plain-transcode path of ``vstream bench``)."""
        if frame.pts is None:
            frame.pts = self.frames * self._fallback_step
        if self._last_pts is not None and frame.pts <= self._last_pts:  # muxers need increasing pts
            frame.pts = self._last_pts + 1
            self.repaired += 1
        self._last_pts = frame.pts
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
        if self.repaired:
            log.warning("%d frames had out-of-order or repeated timestamps; each was moved just past "
                        "the frame before it", self.repaired)
            self.repaired = 0
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
