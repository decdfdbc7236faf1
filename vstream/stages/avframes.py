"""PyAV yuv420p frames ↔ I420 arrays (:mod:`vstream.stages.colour`), odd picture sizes included.

A yuv420p picture of odd width or height has chroma planes of ceil(W/2) × ceil(H/2), which the
``(H * 3 // 2, W)`` layout cannot hold. Such a picture is carried as the even-sized picture one
column and/or row larger: its Y plane with the last column/row repeated, its chroma planes as
they are (they already fit the larger picture). :func:`from_i420` crops it back.
"""

from __future__ import annotations

import av
import numpy as np

from . import colour


def to_i420(frame: av.VideoFrame) -> np.ndarray:
    """The I420 array of a yuv420p ``frame``, padded to even size if its size is odd."""
    if not (frame.width % 2 or frame.height % 2):
        return frame.to_ndarray()
    y, u, v = (_pixels(plane) for plane in frame.planes)
    y = np.pad(y, ((0, frame.height % 2), (0, frame.width % 2)), mode="edge")
    return colour.join(y, u, v)


def from_i420(i420: np.ndarray, width: int, height: int) -> av.VideoFrame:
    """A yuv420p frame of ``width`` × ``height`` from an I420 array of that size or padded from it.

    Copied plane by plane into the frame's own buffers: at 1080p that costs 0.10 ms against
    0.69 ms for ``VideoFrame.from_ndarray`` (CPU time, PyAV 18).
    """
    frame = av.VideoFrame(width, height, "yuv420p")
    for plane, pixels in zip(frame.planes, colour.planes(i420)):
        _pixels(plane)[:] = pixels[: plane.height, : plane.width]
    return frame


def _pixels(plane: av.video.plane.VideoPlane) -> np.ndarray:
    """A writable ``(height, width)`` view of a plane (its rows lie ``line_size`` bytes apart)."""
    return np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
