"""What a video encoder accepts: its CRF range, presets and tunes, checked before any frame is decoded.

FFmpeg's wrappers for x264 and x265 take any string as a preset or tune and any float as a CRF
(x264 clamps 60 to 51 without a word), so their valid values are listed here, as x264 and x265
document them. Other encoders are read from their FFmpeg options (range, named values). Last,
the encoder is opened once on a tiny frame with every option, so whatever it still refuses
fails here, in its own words, instead of after the first frame.

Names are ffmpeg's: a codec name (``h264``, ``hevc``, ``av1``) stands for the encoder FFmpeg
picks for it (libx264, libx265, libsvtav1). The preset and pixel format the user does not give
are each encoder's own (:func:`default_preset`, :func:`default_pix_fmt`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import av
import av.logging

from ..errors import ConfigError

X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo")
X264_TUNES = ("film", "animation", "grain", "stillimage", "psnr", "ssim", "fastdecode", "zerolatency")
X265_TUNES = ("psnr", "ssim", "grain", "zerolatency", "fastdecode", "animation")


@dataclass(frozen=True)
class Choices:
    """Valid values of one encoder option: named ones, or else a numeric range."""

    names: tuple[str, ...] = ()
    low: float | None = None
    high: float | None = None

    def allows(self, value: str) -> bool:
        if self.low is None:
            return value in self.names
        try:
            return self.low <= float(value) <= self.high
        except ValueError:
            return False

    def __str__(self) -> str:
        return ", ".join(self.names) if self.low is None else f"{self.low:g}-{self.high:g}"


_X264 = {"crf": Choices(low=0, high=51), "preset": Choices(X264_PRESETS), "tune": Choices(X264_TUNES)}
_KNOWN: dict[str, dict[str, Choices]] = {
    "libx264": _X264,
    "libx264rgb": _X264,
    "libx265": {**_X264, "tune": Choices(X265_TUNES)},
}
_RATED = ("crf", "preset", "tune")  # options this module knows the valid values of
DEFAULT_PRESET = "veryfast"  # for the encoders that take x264's preset names


@contextmanager
def ffmpeg_errors() -> Iterator[list[tuple[int, str, str]]]:
    """The messages FFmpeg logs in this thread inside the block, up to errors (PyAV drops FFmpeg's
    log unless a level is set, which leaves its exceptions saying only ``Invalid argument``)."""
    previous = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)
    try:
        with av.logging.Capture() as logs:
            yield logs
    finally:
        av.logging.set_level(previous)


def last_error(logs: list[tuple[int, str, str]], exc: Exception) -> str:
    """The last line FFmpeg logged at error level (it may log one line in pieces), else the
    exception's own words."""
    text = "".join(message for level, _, message in logs if level <= av.logging.ERROR)
    said = [line.strip() for line in text.splitlines() if line.strip()]
    return said[-1] if said else getattr(exc, "strerror", None) or str(exc)


@lru_cache(maxsize=None)
def video_encoder(name: str) -> av.Codec:
    """The FFmpeg video encoder called ``name``, or a :class:`ConfigError`."""
    try:
        codec = av.Codec(name, "w")
    except (av.FFmpegError, ValueError):  # PyAV raises UnknownCodecError, a ValueError
        raise ConfigError(f"unknown video encoder {name!r}") from None
    if codec.type != "video":
        raise ConfigError(f"{name!r} is not a video encoder")
    return codec


def default_preset(name: str) -> str | None:
    """:data:`DEFAULT_PRESET` for an encoder that has it (x264, x265), else None: the encoder's own."""
    presets = choices(name).get("preset")
    return DEFAULT_PRESET if presets is not None and DEFAULT_PRESET in presets.names else None


def default_pix_fmt(name: str) -> str:
    """yuv420p, the planes' own format, where the encoder takes it as it is; else the encoder's own
    first choice, as ffmpeg picks it (mjpeg's yuvj420p: limited-range yuv420p is not JPEG; gif's rgb8)."""
    formats = [f.name for f in video_encoder(name).video_formats or ()]
    if not formats or ("yuv420p" in formats and formats[0] != "yuvj420p"):
        return "yuv420p"
    return formats[0]


def own_log_options(name: str, options: dict[str, str]) -> dict[str, str]:
    """``options`` plus what makes the encoder's own log, which x265 and SVT-AV1 print past FFmpeg's,
    follow vstream's log level (``-q``: errors only; default: warnings; ``-v``: info)."""
    level = logging.getLogger("vstream").getEffectiveLevel()
    x265, svt = ("error", "1") if level >= logging.ERROR else ("warning", "2") if level >= logging.WARNING else ("info", "3")
    if name == "libsvtav1":
        os.environ.setdefault("SVT_LOG", svt)  # read by SVT-AV1 when it first logs; a user's own stays
    if name != "libx265":
        return options
    given = options.get("x265-params")
    return {**options, "x265-params": f"log-level={x265}:{given}" if given else f"log-level={x265}"}  # the user's last


@lru_cache(maxsize=None)
def choices(name: str) -> dict[str, Choices]:
    """The valid values of ``name``'s crf, preset and tune (only those it has)."""
    if name in _KNOWN:
        return _KNOWN[name]
    found = {}
    for option in av.CodecContext.create(video_encoder(name)).supported_options.private:
        if option.name in _RATED:
            names = tuple(c.name for c in option.choices)
            numeric = not names and option.type.name in ("INT", "INT64", "FLOAT", "DOUBLE")
            low, high = (max(0.0, option.min), option.max) if numeric else (None, None)  # -1: unset
            found[option.name] = Choices(names, low, high)
    return found


def check(name: str, pix_fmt: str, rated: dict[str, str], others: dict[str, str]) -> None:
    """Raise :class:`ConfigError` unless encoder ``name`` takes ``pix_fmt``, the ``rated`` options
    (crf, preset, tune: each checked against :func:`choices`, also where ``others`` sets them,
    as ``--encoder-opt crf=100`` or ``encode.options``) and the ``others``."""
    codec = video_encoder(name)
    formats = {f.name for f in codec.video_formats or ()}
    if formats and pix_fmt not in formats:
        raise ConfigError(f"encoder {name} cannot take pix_fmt {pix_fmt!r}; it takes {', '.join(sorted(formats))}")
    valid = choices(name)
    for key, value in {**rated, **others}.items():
        if key in valid and not valid[key].allows(value):
            raise ConfigError(f"{key} {value} is not valid for {name}; valid: {valid[key]}")
    _try_open(codec, pix_fmt, {**rated, **others})


def _try_open(codec: av.Codec, pix_fmt: str, options: dict[str, str]) -> None:
    """Open ``codec`` on a 64x64 picture with ``options``; a refusal or an unused option is an error."""
    context = av.CodecContext.create(codec)
    context.width = context.height = 64
    context.pix_fmt = pix_fmt
    context.time_base = Fraction(1, 25)
    context.framerate = Fraction(25)
    context.options = own_log_options(codec.name, dict(options))
    with ffmpeg_errors() as logs:
        try:
            context.open()
        except av.FFmpegError as exc:
            listed = _listed({"pix_fmt": pix_fmt, **options})
            raise ConfigError(f"encoder {codec.name} refuses {listed}: {last_error(logs, exc)}") from None
    unused = sorted(context.options)
    if unused:
        raise ConfigError(f"encoder {codec.name} has no option {unused[0]!r}")


def _listed(options: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in options.items())
