"""Laplacian pyramid (claim 9): the network sees only the smallest level.

Reconstruction from the pyramid is linear in the base level: rebuilding with ``base - r`` gives
``frame - expand(r)``, where ``expand`` is the same chain of ``cv2.pyrUp`` calls. The pipeline uses
that identity (:func:`expand`) so it never has to keep the detail levels of a frame in memory;
:func:`build` and :func:`reconstruct` are the textbook form it is tested against.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from . import colour


def levels_for(height: int, width: int, max_side: int) -> int:
    """Number of pyrDown steps until the long side is at most ``max_side`` (0 if it already is)."""
    if max_side < 16:
        raise ValueError(f"max_side must be at least 16, got {max_side}")
    long_side = max(height, width)
    return max(0, math.ceil(math.log2(long_side / max_side))) if long_side > max_side else 0


def level_shapes(height: int, width: int, levels: int) -> list[tuple[int, int]]:
    """(h, w) of every level, full size first, as ``cv2.pyrDown`` rounds them."""
    shapes = [(height, width)]
    for _ in range(levels):
        h, w = shapes[-1]
        shapes.append(((h + 1) // 2, (w + 1) // 2))
    return shapes


def downsample(image: np.ndarray, levels: int) -> np.ndarray:
    """Gaussian-pyramid top: ``levels`` pyrDown steps of an ``(H, W, C)`` image, dtype kept."""
    for _ in range(levels):
        image = cv2.pyrDown(image)
    return image


def expand(small: np.ndarray, shapes: list[tuple[int, int]]) -> np.ndarray:
    """pyrUp ``small`` (the size of ``shapes[-1]``) back through every level to ``shapes[0]``."""
    for h, w in reversed(shapes[:-1]):
        small = cv2.pyrUp(small, dstsize=(w, h))
    return small


def build(image: np.ndarray, levels: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Laplacian pyramid of a float32 ``(H, W, C)`` image: (detail levels, full size first; base)."""
    details = []
    current = image.astype(np.float32)
    for _ in range(levels):
        smaller = cv2.pyrDown(current)
        h, w = current.shape[:2]
        details.append(current - cv2.pyrUp(smaller, dstsize=(w, h)))
        current = smaller
    return details, current


def reconstruct(details: list[np.ndarray], base: np.ndarray) -> np.ndarray:
    """Invert :func:`build`: add each detail level back while expanding the base."""
    image = base
    for detail in reversed(details):
        h, w = detail.shape[:2]
        image = cv2.pyrUp(image, dstsize=(w, h)) + detail
    return image


def downsample_i420(i420: np.ndarray, levels: int) -> np.ndarray:
    """Smallest level of an I420 frame (or 4:4:4, or 16-bit: :mod:`vstream.stages.colour`) as ``(h, w, 3)`` uint8 RGB.

    Y takes ``levels`` pyrDown steps and U, V one fewer where they start at half size, so all
    three planes meet at the size of :func:`level_shapes`' last entry; only then are they converted.
    """
    y, u, v = colour.planes(i420)
    chroma_levels = levels if colour.full_chroma(i420) else levels - 1
    if chroma_levels < 0:  # 4:2:0 at full size
        return colour.to_rgb(colour.to_8bit(i420))
    y, u, v = (colour.to_8bit(downsample(plane, n)) for plane, n in ((y, levels), (u, chroma_levels), (v, chroma_levels)))
    return colour.yuv444_to_rgb(y, u, v)
