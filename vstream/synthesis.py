"""Synthetic training samples (claims 10-12): an original photo with an interference layer added.

Numpy/OpenCV only, so the runtime (``vstream synth``) can use it without torch. A recipe takes an
original and a reference image and returns ``(input, background, interference)``, all
``(H, W, 3)`` float32 in [0, 1], with ``input == background + interference`` exactly (the
interference label is the layer as it survives clipping). Recipes are registered by kind, so the
other kinds of claim 3 (shadow, water, occlusion) plug in beside reflection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

Sample = tuple[np.ndarray, np.ndarray, np.ndarray]
Recipe = Callable[[np.ndarray, np.ndarray, np.random.Generator, "SynthesisParams"], Sample]
RECIPES: dict[str, Recipe] = {}


@dataclass(frozen=True)
class SynthesisParams:
    """Ranges are (low, high), drawn uniformly per sample.

    ``clean_fraction``: share of samples with no interference at all (teaches "leave it alone").
    ``region``: "full" (the whole pane reflects) or "blob" (a feathered region of the frame);
    ``full_fraction`` is the share of full-frame regions. ``feather``: mask border blur sigma as a
    fraction of the short side. ``blur_sigma``: Gaussian blur of the reference, in pixels.
    ``strength``: peak opacity of the layer. ``ghost_fraction``: share of double reflections
    (thick glass), offset by ``ghost_shift`` pixels.
    """

    clean_fraction: float = 0.15
    full_fraction: float = 0.5
    feather: tuple[float, float] = (0.05, 0.25)
    blur_sigma: tuple[float, float] = (0.5, 5.0)
    strength: tuple[float, float] = (0.15, 0.6)
    ghost_fraction: float = 0.2
    ghost_shift: tuple[int, int] = (2, 8)


def register(kind: str) -> Callable[[Recipe], Recipe]:
    def wrap(recipe: Recipe) -> Recipe:
        RECIPES[kind] = recipe
        return recipe

    return wrap


def synthesize(kind: str, original: np.ndarray, reference: np.ndarray, rng: np.random.Generator,
               params: SynthesisParams) -> Sample:
    """One sample of ``kind`` from two same-size uint8 or float images; deterministic for ``rng``."""
    if kind not in RECIPES:
        raise ValueError(f"no synthesis recipe for {kind!r}; have {', '.join(sorted(RECIPES))}")
    background = _as_float(original)
    if rng.random() < params.clean_fraction:
        return background.copy(), background, np.zeros_like(background)
    return RECIPES[kind](background, _as_float(reference), rng, params)


def feathered_mask(height: int, width: int, rng: np.random.Generator, params: SynthesisParams) -> np.ndarray:
    """``(H, W, 1)`` float32 mask in [0, 1], peak 1: the interference region with a feathered border."""
    if rng.random() < params.full_fraction:
        mask = np.ones((height, width), np.float32)
        border = int(min(height, width) * rng.uniform(0.0, 0.15))
        if border:  # a pane edge or frame inside the view
            mask[: border // 2] = mask[height - border // 2 :] = 0
    else:
        mask = np.zeros((height, width), np.float32)
        cy, cx = rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width
        ry, rx = rng.uniform(0.2, 0.6) * height, rng.uniform(0.2, 0.6) * width
        cv2.ellipse(mask, (int(cx), int(cy)), (int(rx), int(ry)), rng.uniform(0, 180), 0, 360, 1.0, -1)
    sigma = rng.uniform(*params.feather) * min(height, width)
    mask = cv2.GaussianBlur(mask, (0, 0), sigma) if sigma > 0.5 else mask
    return (mask / max(float(mask.max()), 1e-6))[..., None]


@register("reflection")
def reflection(background: np.ndarray, reference: np.ndarray, rng: np.random.Generator,
               params: SynthesisParams) -> Sample:
    """Claims 10-12: blurred reference × normalised feathered mask, linearly superposed."""
    h, w = background.shape[:2]
    layer = cv2.GaussianBlur(reference, (0, 0), rng.uniform(*params.blur_sigma))
    if rng.random() < params.ghost_fraction:
        dy, dx = (int(rng.integers(*params.ghost_shift)) * int(rng.choice([-1, 1])) for _ in range(2))
        layer = 0.6 * layer + 0.4 * np.roll(layer, (dy, dx), axis=(0, 1))
    intermediate = feathered_mask(h, w, rng, params) * layer * rng.uniform(*params.strength)
    blended = np.clip(background + intermediate, 0.0, 1.0)
    return blended, background, blended - background


def _as_float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image.astype(np.float32)
