"""vstream: a streaming video cleaner for reflections, shadows, water stains and smudges."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("vstream")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"
