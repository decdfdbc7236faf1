"""Scene content that looks like interference and is not: out-of-focus bright blobs.

Snow patches on a dark slope, the bokeh of street lamps and sun glints are round, soft and
bright, as raindrops and smudges are. Painted into the photo *before* a recipe runs, they are
part of the background label, so the network learns to leave them while it removes the layer
(a drop is told apart by the refracted scene inside it, not by being a bright disc).
"""

from __future__ import annotations

import cv2
import numpy as np

from .regions import feather


def bright_blobs(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (float32 in [0, 1]) with 1-4 soft bright blobs per 100×100 pixels, each one to
    three overlapping ellipses (a patch of snow, a lamp's bokeh), white or tinted, partly opaque."""
    h, w = image.shape[:2]
    short = min(h, w)
    out = image
    for _ in range(max(1, int(rng.uniform(1.0, 4.0) * h * w / 10_000))):
        mask = np.zeros((h, w), np.float32)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.015, 0.08) * short
        for _ in range(int(rng.integers(1, 4))):
            centre = (int(cx + rng.normal(0, r)), int(cy + rng.normal(0, r)))
            axes = (max(1, int(r * rng.uniform(0.5, 1.2))), max(1, int(r * rng.uniform(0.5, 1.2))))
            cv2.ellipse(mask, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        if not mask.any():
            continue
        colour = np.full(3, rng.uniform(0.85, 1.0), np.float32)
        if rng.random() < 0.4:  # a lamp's tint rather than snow's white
            colour = np.clip(colour * rng.uniform(0.7, 1.0, 3), 0.0, 1.0).astype(np.float32)
        alpha = feather(mask, rng.uniform(0.002, 0.012) * short) * rng.uniform(0.5, 1.0)
        out = out * (1.0 - alpha) + colour * alpha
    return out.astype(np.float32)
