"""The sample clip that ships with vstream (for the README's first command and ``vstream bench``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .errors import InputOpenError

SAMPLE_NAME = "sample_reflection.mp4"


def sample_clip() -> Path:
    """Path of the shipped sample: street footage with a synthetic window reflection."""
    path = Path(str(resources.files("vstream.data") / SAMPLE_NAME))
    if not path.is_file():
        raise InputOpenError(f"the sample clip is missing from this install: {path}")
    return path
