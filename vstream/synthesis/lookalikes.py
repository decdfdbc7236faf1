"""Scene content that looks like interference and is not, one painter per kind that has one.

Painted into the photo *before* a recipe runs, it is part of the background label, so the network
learns to leave it while it removes the layer:

- :func:`bright_blobs` (water): snow patches, the bokeh of street lamps and sun glints are round,
  soft and bright, as raindrops are; a drop is told apart by the refracted scene inside it.
- :func:`scene_shading` (shadow): the shaded side of a round object, a slope turned from the sun,
  a vignette darken the scene as a cast shadow does; a cast shadow is told apart by its edge,
  a penumbra far narrower than the stretch over which such light falls off.
- :func:`scene_haze` (reflection): haze, mist and glare veil a scene as a reflection's blurred
  layer does; a reflection is told apart by the scene it carries, edges of its own, where haze
  is one colour that thickens smoothly.
"""

from __future__ import annotations

import cv2
import numpy as np

from .regions import feather, shade_depth


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


def scene_shading(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (float32 in [0, 1]) darkened by 20-70 % by light falling off, across a terminator
    line or around a lit spot, over 0.25-0.8 of the short side (a cast shadow's penumbra has a
    blur sigma of at most 0.05 of it), with shade's colour cast of up to 15 % per channel."""
    falloff = _falloff(*image.shape[:2], rng)
    depth = shade_depth(rng, (0.2, 0.7), colour_cast=0.15)
    return (image * (1.0 - depth * falloff[..., None])).astype(np.float32)


def scene_haze(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``image`` (float32 in [0, 1]) mixed by 15-60 % towards one airlight colour (grey 0.6-0.95,
    up to 10 % off per channel): evenly 30 % of the time (a washed-out photo), otherwise thickening
    as light falls off in :func:`scene_shading` (towards the horizon, near a light)."""
    veil = _falloff(*image.shape[:2], rng) if rng.random() < 0.7 else np.ones(image.shape[:2], np.float32)
    amount = rng.uniform(0.15, 0.6) * veil[..., None]
    airlight = np.clip(rng.uniform(0.6, 0.95) * rng.uniform(0.9, 1.1, 3), 0.0, 1.0)
    return (image * (1.0 - amount) + airlight * amount).astype(np.float32)


def _falloff(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """``(H, W)`` float32 in [0, 1] rising with no edge (smoothstep) over 0.25-0.8 of the short
    side, across a line or around a spot."""
    short = min(h, w)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = rng.uniform(0, h), rng.uniform(0, w)
    if rng.random() < 0.5:
        angle = rng.uniform(0, 2 * np.pi)
        distance = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    else:
        distance = np.hypot(x - cx, y - cy) - rng.uniform(0.1, 0.5) * short
    t = np.clip(distance / (rng.uniform(0.25, 0.8) * short) + 0.5, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
