"""Training batches: photos held in memory, blended on the fly by a synthesis recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..photos import load_rgb
from ..synthesis import SynthesisParams, synthesize


class BlendSampler:
    """Draws batches ``(input, background, interference)``, each ``(B, 3, crop, crop)`` float32.

    Photos are decoded once and kept in memory; every sample takes a random crop of an original
    and of another photo as the reference, with flips, then applies the ``kind`` recipe.
    """

    def __init__(self, paths: list[Path], kind: str, params: SynthesisParams, crop: int, seed: int) -> None:
        self.images = [load_rgb(p, crop) for p in paths]
        self.kind, self.params, self.crop = kind, params, crop
        self.rng = np.random.default_rng(seed)

    def _crop(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        y, x = self.rng.integers(0, h - self.crop + 1), self.rng.integers(0, w - self.crop + 1)
        patch = image[y : y + self.crop, x : x + self.crop]
        return patch[:, ::-1] if self.rng.random() < 0.5 else patch

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        i, j = self.rng.choice(len(self.images), 2, replace=False)
        return synthesize(self.kind, self._crop(self.images[i]), self._crop(self.images[j]), self.rng, self.params)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        samples = [self.sample() for _ in range(size)]
        return tuple(torch.from_numpy(np.stack(parts)).permute(0, 3, 1, 2).contiguous() for parts in zip(*samples))
