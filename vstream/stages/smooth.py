"""Temporal smoothing of the interference residual, reset on scene cuts.

The residual (what the network removes, at the smallest pyramid level) flickers from frame to
frame even when the reflection does not. :class:`ResidualSmoother` averages it over time with an
exponential moving average whose weight drops to "current frame only" where the picture itself
moved, so a moving object never drags a ghost of its old residual along, and the state is reset
entirely at a scene cut.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class SmoothingConfig:
    """``alpha``: weight of the newest residual in the average (1 disables smoothing).
    ``motion``: per-pixel mean absolute change (0..1) at which a pixel counts as moved.
    ``scene_cut``: frame-mean absolute change (0..1) above which the average is reset."""

    alpha: float = 0.4
    motion: float = 0.06
    scene_cut: float = 0.18

    def __post_init__(self) -> None:
        for name in ("alpha", "motion", "scene_cut"):
            value = getattr(self, name)
            if not 0.0 < value <= 1.0:
                raise ValueError(f"temporal.{name} must be in (0, 1], got {value}")


def luma(small: np.ndarray) -> np.ndarray:
    """``(h, w)`` uint8 luma of a small level ``(h, w, 3)`` uint8 RGB."""
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)


def change(luma: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """Per-pixel absolute change between two same-size uint8 lumas, ``(h, w)`` float32 in [0, 1]."""
    return cv2.absdiff(luma, previous).astype(np.float32) * np.float32(1.0 / 255.0)


def is_cut(change: np.ndarray, scene_cut: float) -> bool:
    """Whether a :func:`change` map is a scene cut: its mean above ``scene_cut``."""
    return cv2.mean(change)[0] > scene_cut


def moved(change: np.ndarray, motion: float) -> np.ndarray:
    """How much each pixel of a :func:`change` map moved: 0 (still) to 1 (at ``motion`` or more)."""
    return np.minimum(change * np.float32(1.0 / motion), 1.0)


class ResidualSmoother:
    """Stateful smoother; feed frames in display order.

    Arrays are ``(h, w, 3)``: ``small`` uint8 RGB (the network's input), ``residual`` float32.
    """

    def __init__(self, config: SmoothingConfig) -> None:
        self.config = config
        self._previous: np.ndarray | None = None  # last small frame's uint8 luma
        self._average: np.ndarray | None = None
        self.cuts = 0

    def reset(self) -> None:
        self._previous = self._average = None

    def smooth(self, small: np.ndarray, residual: np.ndarray) -> np.ndarray:
        """Smoothed residual for this frame (same shape and dtype as ``residual``)."""
        current = luma(small)
        previous, self._previous = self._previous, current
        if previous is None or previous.shape != current.shape or self._average is None:
            self._average = residual
            return residual
        changed = change(current, previous)
        if is_cut(changed, self.config.scene_cut):
            self.cuts += 1
            self._average = residual
            return residual
        # Per-pixel weight of the new residual: alpha where still, 1 where the picture moved.
        weight = self.config.alpha + (1.0 - self.config.alpha) * moved(changed, self.config.motion)[..., None]
        self._average = self._average + weight * (residual - self._average)
        return self._average
