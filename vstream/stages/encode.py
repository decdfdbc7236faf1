"""Encode stage: cleaned RGB frames → PyAV video stream; audio and subtitles copied untouched."""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from ..errors import ConfigError, OutputError, redact
from . import encoders
from .avframes import from_i420
from .decode import VideoInfo, is_image

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


def check_muxer(path: Path, settings: EncodeSettings, info: VideoInfo) -> None:
    """Fail before any work unless a container format goes by ``path``'s extension (FFmpeg picks
    the format from it) and holds the video of ``settings``; a still image's extension holds no video."""
    if path.suffix.lower().lstrip(".") not in _muxer_extensions():
        reason = f"no container format goes by {path.suffix!r}" if path.suffix else "no extension to tell the format by"
        raise OutputError(f"cannot write {path}: {reason}; use .mp4, .mkv, .mov, ...")
    if is_image(path):
        raise OutputError(f"cannot write a video to {path}: an image holds one frame; use .mp4, .mkv, .mov, ...")
    with av.open(str(path), "w") as target:  # FFmpeg's pick of muxer (.vob: svcd); no file is created yet
        refusal = muxer_refusal(target.format.name, _video_adder(settings, info, _PROBE_SIZE))
        if refusal:
            raise OutputError(f"cannot write {path}: {target.format.name} refuses {settings.codec} video: {refusal}; "
                              f"{_fitting(target, info)}")


_PROBE_SIZE = (64, 64)  # a picture any encoder opens at, to ask a muxer about a codec


@functools.cache
def _muxer_extensions() -> frozenset[str]:
    extensions = set()
    for name in av.formats_available:
        try:
            extensions.update(av.format.ContainerFormat(name, "w").extensions)
        except ValueError:  # a demuxer only
            continue
    return frozenset(e.lower() for e in extensions)


def _fitting(target: av.container.OutputContainer, info: VideoInfo) -> str:
    """What to do instead: the muxer's own video codec where its encoder is installed, else another container."""
    try:
        default = EncodeSettings(codec=target.default_video_codec)
    except ConfigError:
        return "use .mp4, .mkv, .mov, ..."
    if muxer_refusal(target.format.name, _video_adder(default, info, _PROBE_SIZE)) is None:
        return f"pass --codec {default.codec}, or use .mp4, .mkv, ..."
    return "use .mp4, .mkv, .mov, ..."


AddVideo = Callable[[av.container.OutputContainer], av.stream.Stream]


def _video_adder(settings: EncodeSettings, info: VideoInfo, size: tuple[int, int]) -> AddVideo:
    """Adds the encoded video stream to a container: the writer's own, and a probe's."""
    def add(container: av.container.OutputContainer) -> av.stream.Stream:
        options = encoders.own_log_options(settings.codec, settings.av_options)
        video = container.add_stream(settings.codec, rate=info.average_rate or Fraction(25), options=options)
        video.width, video.height = size
        video.pix_fmt = settings.pix_fmt
        video.time_base = video.codec_context.time_base = info.time_base
        return video
    return add


def muxer_refusal(format_name: str, add_video: AddVideo, copies: Sequence[av.stream.Stream] = ()) -> str | None:
    """Why muxer ``format_name`` refuses the video ``add_video`` adds, or copies of ``copies``
    beside it, in FFmpeg's words; None if it takes them.

    FFmpeg cannot always say beforehand whether a muxer takes a codec: ``avformat_query_codec``
    answers "unknown" for the codecs MPEG-TS and MPEG-PS do not name as their defaults, and PyAV's
    ``supported_codecs`` counts unknown as no. Only the muxer's header tells (MPEG-PS takes MP2
    and AC-3 but not AAC; MXF wants a video first; Matroska wants H.264's parameter sets), so the
    streams are added to an empty file of that format in memory and its header written.
    """
    probe = av.open(io.BytesIO(), "w", format=format_name)
    with encoders.ffmpeg_errors() as logs:
        try:
            add_video(probe)
            for stream in copies:
                probe.add_stream_from_template(stream)
            probe.start_encoding()
        except (ValueError, av.FFmpegError) as exc:  # ValueError: the muxer is sure, as PyAV asks it first
            return encoders.last_error(logs, exc)
        finally:
            with contextlib.suppress(av.FFmpegError):  # a trailer without packets (GIF, MXF) may fail
                probe.close()
    return None


def add_copies(
    container: av.container.OutputContainer, streams: Sequence[av.stream.Stream], add_video: AddVideo
) -> dict[int, av.stream.Stream]:
    """Add to ``container`` a copy of each input stream its muxer takes beside the video that
    ``add_video`` adds, with its tags (language, title) and disposition (default, forced); input
    index → output stream. A stream the muxer refuses is left out with a warning in its words."""
    copies: dict[int, av.stream.Stream] = {}
    for stream in streams:
        kept = [s for s in streams if s.index in copies]
        refusal = muxer_refusal(container.format.name, add_video, [*kept, stream])
        if refusal:
            log.warning("not copying %s stream %d (%s): %s cannot hold it: %s",
                        stream.type, stream.index, stream.codec_context.name, container.format.name, refusal)
            continue
        copy = container.add_stream_from_template(stream)
        copy.metadata.update(stream.metadata)
        copy.disposition = stream.disposition
        copies[stream.index] = copy
    return copies


class VideoWriter:
    """Open ``path`` for writing one video stream plus copies of the input's pass-through streams.

    Frames keep the input's pts and time base; the display rotation is carried over. Use as a
    context manager: leaving it drains the encoder and closes the file, also after an error.
    ``colour_tags`` (the input frames' colorspace, range, primaries, transfer) are set on the
    stream, which encoders write into the bitstream and muxers into the container, so players
    interpret the untouched planes as the input's. ``path`` may be a URL or
    ``pipe:1`` (with ``container_format``); ``container_options`` go to the muxer. ``tags``: the
    file's own metadata (title, creation_time); the video stream's (language, title) come with
    ``info``. The file is opened (its header written) here, so an unwritable one fails here.
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
        tags: dict[str, str] | None = None,
    ) -> None:
        add_video = _video_adder(settings, info, encoded_size(settings, width or info.width, info.height))
        try:
            self.container = av.open(str(path), "w", format=container_format, options=container_options or {})
            self.video = add_video(self.container)
        except (av.FFmpegError, ValueError) as exc:
            raise OutputError(redact(f"cannot write {path}: {exc}")) from None
        self.container.metadata.update(tags or {})
        self.video.metadata.update(info.tags)
        rate = info.average_rate or Fraction(25)
        if rotation:
            self.video.set_display_rotation(rotation)
        for tag, value in (colour_tags or {}).items():
            setattr(self.video.codec_context, tag, value)
        self._fallback_step = int(round(1 / (rate * info.time_base))) or 1
        self._copies = add_copies(self.container, copy_streams, add_video)
        self.frames = 0
        self.repaired = 0  # frames whose pts did not increase, moved just past the one before
        self._last_pts: int | None = None
        self._start(path)

    def _start(self, path: Path | str) -> None:
        """Open the encoder and the file and write its header: every stream is set up by now."""
        with encoders.ffmpeg_errors() as logs:
            try:
                self.container.start_encoding()
            except (av.FFmpegError, OSError) as exc:
                self.container.close()
                raise OutputError(redact(f"cannot write {path}: {encoders.last_error(logs, exc)}")) from None

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
