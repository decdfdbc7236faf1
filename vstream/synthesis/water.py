"""Raindrops, running streaks and dried water marks on the glass in front of the lens.

A drop is a small lens: inside it the scene appears refracted (an inverted, shrunken and
blurred view of its surroundings), its rim catches the light, and the whole drop is out of
focus when the camera focuses on the road. Dried marks are faint mineral rings.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .base import SynthesisParams, register
from .lookalikes import bright_blobs


@dataclass(frozen=True)
class WaterParams(SynthesisParams):
    """``drops``: drops per 100×100 pixels. ``radius``: drop radius as a fraction of the short
    side. ``streak_fraction``: share of drops that run into vertical streaks. ``refraction``: how
    far around the drop its refracted view reaches, in drop radii. ``blur_sigma``: blur of the view
    inside a drop, in pixels. ``rim``: brightness of the lit rim. ``defocus``: blur of the whole
    layer, in pixels. ``ring_fraction``: share of samples with dried rings. ``strength``: opacity
    of a drop's refracted view over the scene behind it."""

    strength: tuple[float, float] = (0.6, 1.0)
    drops: tuple[float, float] = (1.5, 6.0)
    radius: tuple[float, float] = (0.02, 0.07)
    streak_fraction: float = 0.25
    refraction: tuple[float, float] = (1.5, 3.0)
    blur_sigma: tuple[float, float] = (0.5, 2.0)
    rim: tuple[float, float] = (0.05, 0.25)
    defocus: tuple[float, float] = (0.0, 1.5)
    ring_fraction: float = 0.3


@register("water", WaterParams, lookalike=bright_blobs)
def water(background: np.ndarray, reference: np.ndarray, rng: np.random.Generator,
          params: WaterParams) -> np.ndarray:
    h, w = background.shape[:2]
    height, map_x, map_y = _drop_lenses(h, w, rng, params)
    inside = (height > 0).astype(np.float32)[..., None]
    view = cv2.remap(background, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    view = cv2.GaussianBlur(view, (0, 0), rng.uniform(*params.blur_sigma))
    out = background + inside * rng.uniform(*params.strength) * (view - background)
    out = out + rng.uniform(*params.rim) * _rim_light(height)[..., None]
    if rng.random() < params.ring_fraction:
        out = _dried_rings(out, rng)
    sigma = rng.uniform(*params.defocus)
    if sigma > 0.3:  # defocus blurs the layer, not the scene behind it
        out = background + cv2.GaussianBlur(out - background, (0, 0), sigma)
    return out


def _drop_lenses(h: int, w: int, rng: np.random.Generator, params: WaterParams):
    """(height map, remap x, remap y): each drop a dome whose pixels look at an inverted view of
    the scene around it."""
    height = np.zeros((h, w), np.float32)
    map_y, map_x = np.mgrid[0:h, 0:w].astype(np.float32)
    count = max(1, int(rng.uniform(*params.drops) * h * w / 10_000))
    short = min(h, w)
    for _ in range(count):
        r = max(1.5, rng.uniform(*params.radius) * short)
        ry, rx = (r * rng.uniform(2.0, 5.0), r * 0.6) if rng.random() < params.streak_fraction else (r * rng.uniform(0.8, 1.2), r)
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        y0, y1 = int(max(0, cy - ry)), int(min(h, cy + ry + 1))
        x0, x1 = int(max(0, cx - rx)), int(min(w, cx + rx + 1))
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        dy, dx = (yy - cy) / ry, (xx - cx) / rx
        dome = np.sqrt(np.clip(1.0 - dy * dy - dx * dx, 0.0, 1.0))
        take = dome > height[y0:y1, x0:x1]
        power = rng.uniform(*params.refraction)
        height[y0:y1, x0:x1][take] = dome[take]
        map_x[y0:y1, x0:x1][take] = (cx - power * (xx - cx))[take]
        map_y[y0:y1, x0:x1][take] = (cy - power * (yy - cy))[take]
    return height, map_x, map_y


def _rim_light(height: np.ndarray) -> np.ndarray:
    """Bright where a drop's surface faces the light from above-left, darker opposite."""
    gy = cv2.Sobel(height, cv2.CV_32F, 0, 1, ksize=3)
    gx = cv2.Sobel(height, cv2.CV_32F, 1, 0, ksize=3)
    return np.clip(gx + gy, -1.0, 1.0) * (height > 0)


def _dried_rings(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Faint whitish rings (mineral left by dried drops), slightly blurred."""
    h, w = image.shape[:2]
    rings = np.zeros((h, w), np.float32)
    short = min(h, w)
    for _ in range(int(rng.integers(1, 8))):
        centre = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        axes = tuple(int(a) for a in rng.uniform(0.03, 0.12, 2) * short)
        cv2.ellipse(rings, centre, axes, rng.uniform(0, 180), 0, 360, 1.0, max(1, short // 100))
    rings = cv2.GaussianBlur(rings, (0, 0), 1.0)[..., None] * rng.uniform(0.1, 0.35)
    colour = np.array([0.85, 0.83, 0.78], np.float32) * rng.uniform(0.8, 1.1)
    return image * (1.0 - rings) + colour * rings
