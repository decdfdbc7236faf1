"""Full-resolution reconstruction: subtract the expanded interference residual from the frame."""

from __future__ import annotations

import cv2
import numpy as np

from . import colour, pyramid


def removal(residual: np.ndarray, strength: float = 1.0, floor: float = 0.0) -> np.ndarray:
    """What is actually removed, in 0..255 units: ``residual`` soft-thresholded by ``floor`` (a
    correction smaller than ``floor`` is dropped, a larger one reduced by it), times ``strength``.

    The floor keeps the network's small, image-wide corrections — noise below its training
    tolerance (the truncated pixel loss ignores differences up to 0.01) — off clean footage.
    """
    if floor > 0:
        residual = np.sign(residual) * np.maximum(np.abs(residual) - np.float32(floor), 0.0)
    return residual * np.float32(255.0 * strength)


def apply_residual(
    rgb: np.ndarray, residual: np.ndarray, shapes: list[tuple[int, int]], strength: float = 1.0, floor: float = 0.0
) -> np.ndarray:
    """Clean a full-size frame with a residual computed on its smallest pyramid level.

    Args:
        rgb: ``(H, W, 3)`` uint8 or uint16 frame, ``H, W == shapes[0]``.
        residual: ``(h, w, 3)`` float32 in [-1, 1] at ``shapes[-1]``, what the model removes.
        shapes: the pyramid's level shapes (:func:`vstream.stages.pyramid.level_shapes`).
        strength: 0 keeps the frame, 1 removes the full residual.
        floor: corrections below this (0..1) are dropped; see :func:`removal`.

    Returns:
        ``(H, W, 3)`` of ``rgb``'s dtype. Equal to the Laplacian reconstruction with base ``base - residual``.
    """
    full = pyramid.expand(removal(residual, strength, floor) * colour.unit(rgb), shapes)
    return _subtract(rgb, full)


def _subtract(pixels: np.ndarray, correction: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``pixels`` less ``correction`` (float32, in ``pixels``' units), saturating and rounded:
    3x numpy's clip+round; written into ``out`` if given."""
    depth = cv2.CV_16U if pixels.dtype == np.uint16 else cv2.CV_8U
    return cv2.subtract(pixels, correction, dst=out, dtype=depth)


def apply_residual_i420(
    i420: np.ndarray, residual: np.ndarray, shapes: list[tuple[int, int]], strength: float = 1.0, floor: float = 0.0
) -> np.ndarray:
    """:func:`apply_residual` for an I420 frame (or 4:4:4, or 16-bit: :mod:`vstream.stages.colour`), in its own planes.

    The RGB residual becomes a Y/U/V correction at the small level (the conversion is linear);
    Y's is expanded through every level, U's and V's too at 4:4:4, else through all but the first
    (they start at half size; with no level at all they are halved). A pixel whose correction rounds to zero
    comes out bit-identical; where nothing is removed at all (clean footage under ``floor``) the
    frame is returned as it is, uncopied.
    """
    removed = removal(residual, strength, floor)
    if not removed.any():
        return i420
    delta = colour.rgb_delta_to_yuv(removed * colour.unit(i420))
    y, u, v = colour.planes(i420)
    delta_y, delta_u, delta_v = cv2.split(delta)
    if colour.full_chroma(i420):
        delta_u, delta_v = (pyramid.expand(d, shapes) for d in (delta_u, delta_v))
    elif len(shapes) == 1:  # the network saw the full frame: halve the chroma correction instead
        delta_u, delta_v = (cv2.resize(d, u.shape[::-1], interpolation=cv2.INTER_AREA) for d in (delta_u, delta_v))
    else:
        delta_u, delta_v = (pyramid.expand(d, shapes[1:]) for d in (delta_u, delta_v))
    corrections = (pyramid.expand(delta_y, shapes), delta_u, delta_v)
    cleaned = np.empty_like(i420)
    for plane, correction, out in zip((y, u, v), corrections, colour.planes(cleaned)):
        _subtract(plane, correction, out)  # written in place: no joining copy
    return cleaned


def clean_image(model, rgb: np.ndarray, max_side: int, strength: float = 1.0, floor: float = 0.0) -> np.ndarray:
    """Clean one still ``(H, W, 3)`` uint8 or uint16 RGB image with ``model`` (:class:`~vstream.stages.infer.InterferenceModel`)."""
    shapes = pyramid.level_shapes(*rgb.shape[:2], pyramid.levels_for(*rgb.shape[:2], max_side))
    small = colour.to_8bit(pyramid.downsample(rgb, len(shapes) - 1))
    return apply_residual(rgb, model.residual(small), shapes, strength, floor)
