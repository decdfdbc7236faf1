"""Interference regions: where on the frame a layer goes, as soft masks."""

from __future__ import annotations

import cv2
import numpy as np

Range = tuple[float, float]

_SKY_SHADE = np.array([1.0, 0.3, -1.0])  # shade lit by the blue sky alone: red lost most, blue least


def feathered_mask(height: int, width: int, rng: np.random.Generator, full_fraction: float,
                   feather_range: Range) -> np.ndarray:
    """``(H, W, 1)`` float32 mask in [0, 1], peak 1: the whole frame (``full_fraction`` of the
    time, maybe framed by a pane edge) or an ellipse; its border is blurred by a sigma drawn from
    ``feather_range``, a fraction of the short side."""
    if rng.random() < full_fraction:
        mask = np.ones((height, width), np.float32)
        border = int(min(height, width) * rng.uniform(0.0, 0.15))
        if border:  # a pane edge or frame inside the view
            mask[: border // 2] = mask[height - border // 2 :] = 0
    else:
        mask = np.zeros((height, width), np.float32)
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.2, 0.6) * height, rng.uniform(0.2, 0.6) * width
        cv2.ellipse(mask, (int(cx), int(cy)), (int(rx), int(ry)), rng.uniform(0, 180), 0, 360, 1.0, -1)
    return feather(mask, rng.uniform(*feather_range) * min(height, width))


def cast_shape_mask(height: int, width: int, rng: np.random.Generator, feather_range: Range) -> np.ndarray:
    """``(H, W, 1)`` feathered mask of a shape an object casts: a polygon reaching into the frame
    (a building, a vehicle), one to three bars (poles, branches), or a blob (foliage); feathered
    as :func:`feathered_mask`."""
    mask = np.zeros((height, width), np.float32)
    shape = rng.choice(["polygon", "bars", "blob"], p=[0.5, 0.3, 0.2])
    scale = np.array([width, height])
    if shape == "polygon":
        points = rng.uniform(-0.3, 1.3, (int(rng.integers(3, 8)), 2)) * scale
        cv2.fillPoly(mask, [cv2.convexHull(points.astype(np.int32))], 1.0)
    elif shape == "bars":
        for _ in range(int(rng.integers(1, 4))):
            ends = rng.uniform(-0.2, 1.2, (2, 2)) * scale
            thickness = max(2, int(rng.uniform(0.04, 0.2) * min(height, width)))
            cv2.line(mask, tuple(ends[0].astype(int)), tuple(ends[1].astype(int)), 1.0, thickness)
    else:
        for _ in range(int(rng.integers(1, 4))):
            centre = (rng.uniform(0.1, 0.9, 2) * scale).astype(int)
            axes = (rng.uniform(0.1, 0.35, 2) * scale).astype(int)
            cv2.ellipse(mask, tuple(centre), tuple(axes), rng.uniform(0, 180), 0, 360, 1.0, -1)
    if not mask.any():  # the shape fell outside the frame: shade a corner instead
        mask[: height // 2, : width // 2] = 1.0
    return feather(mask, rng.uniform(*feather_range) * min(height, width))


def feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """``mask`` blurred by ``sigma`` pixels and renormalised to peak 1, as ``(H, W, 1)``."""
    if sigma > 0.5:
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return (mask / max(float(mask.max()), 1e-6))[..., None]


def shade_depth(rng: np.random.Generator, strength: Range, colour_cast: float) -> np.ndarray:
    """Per-channel share of light that shade takes: ``strength`` drawn uniformly, tinted bluish
    (as shade lit by the sky alone is) by up to ``colour_cast`` per channel; (3,) float32."""
    tint = 1.0 + colour_cast * _SKY_SHADE * rng.uniform(-0.3, 1.0)
    return np.clip(rng.uniform(*strength) * tint, 0.0, 0.95).astype(np.float32)
