"""Hard and soft shadows: a feathered region that darkens the scene multiplicatively."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import SynthesisParams, register
from .lookalikes import scene_shading
from .regions import cast_shape_mask, shade_depth


@dataclass(frozen=True)
class ShadowParams(SynthesisParams):
    """``strength``: the share of light blocked in the umbra. ``feather``: penumbra width (blur
    sigma) as a fraction of the short side. ``colour_cast``: the largest per-channel deviation of
    the shadow's tint (a shadow is lit by the sky only, so it turns bluish)."""

    feather: tuple[float, float] = (0.003, 0.05)
    strength: tuple[float, float] = (0.3, 0.8)
    colour_cast: float = 0.15


@register("shadow", ShadowParams, lookalike=scene_shading)
def shadow(background: np.ndarray, reference: np.ndarray, rng: np.random.Generator,
           params: ShadowParams) -> np.ndarray:
    """``background × shadow map``, map = 1 − depth × tint × mask, per channel; the shadow map
    itself is ``1 + interference / background`` wherever the background is not black."""
    h, w = background.shape[:2]
    mask = cast_shape_mask(h, w, rng, params.feather)
    depth = shade_depth(rng, params.strength, params.colour_cast)
    return background * (1.0 - depth * mask)
