"""Option value types that ffmpeg users know: times (``-ss 1:30``) and ``KEY=VALUE`` pairs."""

from __future__ import annotations

import re

import click

_CLOCK = re.compile(r"(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)")
_SECONDS = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(s|ms|us)?")
_UNITS = {None: 1.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}


class Time(click.ParamType):
    """Seconds, as ffmpeg writes a time: ``90``, ``1.5``, ``250ms``, ``1:30`` or ``01:02:03.5``."""

    name = "TIME"

    def __init__(self, positive: bool = False) -> None:
        self.positive = positive

    def convert(self, value, param, ctx) -> float:
        if isinstance(value, float):
            return value
        text = str(value).strip()
        if clock := _CLOCK.fullmatch(text):
            seconds = int(clock[1] or 0) * 3600 + int(clock[2]) * 60 + float(clock[3])
        elif plain := _SECONDS.fullmatch(text):
            seconds = float(plain[1]) * _UNITS[plain[2]]
        else:
            self.fail(f"{value!r} is not a time: seconds (90, 1.5, 250ms) or [HH:]MM:SS[.ms]", param, ctx)
        if self.positive and seconds <= 0:
            self.fail(f"{value!r} must be more than 0", param, ctx)
        return seconds


class KeyValue(click.ParamType):
    """``KEY=VALUE`` as a ``(key, value)`` pair."""

    name = "KEY=VALUE"

    def convert(self, value, param, ctx) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        key, sep, text = str(value).partition("=")
        if not sep or not key:
            self.fail(f"{value!r} is not KEY=VALUE", param, ctx)
        return key, text
