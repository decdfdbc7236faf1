"""Domain errors. None of them depends on click; only the CLI turns them into exit codes."""

from __future__ import annotations

import re


class VStreamError(Exception):
    """Base class: a failure the user can act on, with a one-line message."""


class InputOpenError(VStreamError):
    """The input does not exist, cannot be opened, or holds no decodable video."""


class DecodeError(VStreamError):
    """The input opened but its video stream could not be decoded."""


class OutputError(VStreamError):
    """The output cannot be written where it was asked for."""


class ModelError(VStreamError):
    """The model file is missing, unreadable, or not a vstream model."""


class ModelMismatchError(ModelError):
    """The model's inputs or outputs disagree with the vstream model contract."""


class ConfigError(VStreamError):
    """A preset or config file holds an unknown key or a bad value."""


class ProviderError(VStreamError):
    """The requested ONNX Runtime execution provider is not available."""


def redact(text: str) -> str:
    """Hide the credentials of every URL in ``text``: all from ``scheme://`` to the ``@`` that
    ends them, whatever they hold (camera passwords often carry an unescaped ``@`` or ``/``).

    The credentials end at the last ``@`` before the first ``/`` after the first ``@`` (a URL
    ends at whitespace): ``rtsp://admin:p@ss@cam/x`` and ``rtsp://admin:pa/ss@cam/x`` both
    become ``rtsp://***@cam/x``, while an ``@`` in the path after the host stays
    (``rtsp://u:pw@cam/live@main`` → ``rtsp://***@cam/live@main``). With no ``@`` before the
    first ``/``, a later ``@`` may end a password holding ``/`` or belong to the path; it is
    taken as the former, since a hidden path costs less than a shown password:
    ``rtsp://cam/live@main`` → ``rtsp://***@main``.
    """
    return _CREDENTIALS.sub(r"\1***@", text)


_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^\s@]*@(?:[^\s/]*@)?")
