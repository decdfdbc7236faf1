"""What a video encoder accepts: its CRF range, presets and tunes, checked before any frame is decoded.

FFmpeg's wrappers for x264 and x265 take any string as a preset or tune and any float as a CRF
(x264 clamps 60 to 51 without a word), so their valid values are listed here, as x264 and x265
document them. Other encoders are read from their FFmpeg options (range, named values). Last,
the encoder is opened once on a tiny frame with every option, so whatever it still refuses
fails here, in its own words, instead of after the first frame.
"""

from __future__ import annotations

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
_SILENT = {"libx265": ("x265-params", "log-level=none")}  # x265 prints its banner itself, past FFmpeg's log


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
    (crf, preset, tune: each checked against :func:`choices`) and the ``others``."""
    codec = video_encoder(name)
    formats = {f.name for f in codec.video_formats or ()}
    if formats and pix_fmt not in formats:
        raise ConfigError(f"encoder {name} cannot take pix_fmt {pix_fmt!r}; it takes {', '.join(sorted(formats))}")
    valid = choices(name)
    for key, value in rated.items():
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
    context.options = dict(options)
    if codec.name in _SILENT:
        key, silent = _SILENT[codec.name]
        context.options[key] = f"{options[key]}:{silent}" if options.get(key) else silent
    with av.logging.Capture() as logs:
        try:
            context.open()
        except av.FFmpegError as exc:
            said = [message for level, _, message in logs if level <= av.logging.ERROR]
            reason = said[-1].strip() if said else exc.strerror or str(exc)
            raise ConfigError(f"encoder {codec.name} refuses {_listed(options)}: {reason}") from None
    unused = sorted(context.options)
    if unused:
        raise ConfigError(f"encoder {codec.name} has no option {unused[0]!r}")


def _listed(options: dict[str, str]) -> str:
    return " ".join(f"{key}={value}" for key, value in options.items()) or "its defaults"
