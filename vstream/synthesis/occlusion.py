"""Occluding smudges: dirt, grease and lens contamination, in the spirit of claims 11-12.

A smudge is a low-frequency, partly opaque blob: inside it the scene is scattered (blurred) and
covered by the smudge's own colour, a dirt tone mixed with a heavily blurred reference image
(claims 11-12's blurred reference, here as the blob's texture).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .base import SynthesisParams, register
from .regions import feather

DIRT_TONES = np.array([[0.35, 0.28, 0.2], [0.2, 0.2, 0.2], [0.55, 0.5, 0.42], [0.8, 0.8, 0.78]], np.float32)


@dataclass(frozen=True)
class OcclusionParams(SynthesisParams):
    """``blobs``: smudges per sample. ``size``: a smudge's extent as a fraction of the short side.
    ``feather``: edge softness (blur sigma) as a fraction of the smudge's size. ``strength``: peak
    opacity. ``scatter``: blur (pixels) of the scene seen through a smudge."""

    feather: tuple[float, float] = (0.1, 0.4)
    strength: tuple[float, float] = (0.3, 0.9)
    blobs: tuple[int, int] = (1, 6)
    size: tuple[float, float] = (0.05, 0.35)
    scatter: tuple[float, float] = (1.0, 6.0)


@register("occlusion", OcclusionParams)
def occlusion(background: np.ndarray, reference: np.ndarray, rng: np.random.Generator,
              params: OcclusionParams) -> np.ndarray:
    h, w = background.shape[:2]
    alpha = np.zeros((h, w, 1), np.float32)
    for _ in range(int(rng.integers(params.blobs[0], params.blobs[1] + 1))):
        alpha = np.maximum(alpha, _smudge(h, w, rng, params) * rng.uniform(*params.strength))
    texture = cv2.GaussianBlur(reference, (0, 0), 0.1 * min(h, w))
    tone = DIRT_TONES[rng.integers(len(DIRT_TONES))]
    colour = (1 - (mix := rng.uniform(0.0, 0.6))) * tone + mix * texture
    scattered = cv2.GaussianBlur(background, (0, 0), rng.uniform(*params.scatter))
    seen = background + np.minimum(1.0, 2 * alpha) * (scattered - background)
    return (1 - alpha) * seen + alpha * colour


def _smudge(h: int, w: int, rng: np.random.Generator, params: OcclusionParams) -> np.ndarray:
    """One irregular blob: thresholded smooth noise inside an ellipse, feathered, peak 1."""
    extent = rng.uniform(*params.size) * min(h, w)
    noise = cv2.resize(rng.random((6, 6)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    ellipse = np.zeros((h, w), np.float32)
    centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
    axes = (int(extent * rng.uniform(0.5, 1.0)), int(extent * rng.uniform(0.5, 1.0)))
    cv2.ellipse(ellipse, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
    blob = ellipse * (noise > rng.uniform(0.2, 0.5))
    if not blob.any():
        blob = ellipse
    return feather(blob, rng.uniform(*params.feather) * extent)
