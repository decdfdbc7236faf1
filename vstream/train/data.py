"""Training batches: photos held in memory, blended on the fly by a synthesis recipe."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import torch

from ..evaluation.photos import load_rgb
from ..synthesis import SynthesisParams, synthesize
from ..synthesis.base import Sample, clean_sample


class BlendSampler:
    """Draws batches ``(input, background, interference)``, each ``(B, 3, crop, crop)`` float32.

    Photos are decoded once and kept in memory. Every sample takes a view of an original and of
    another photo as the reference, with flips, and applies the ``kind`` recipe to them.

    Without ``scene`` a view is a ``crop`` × ``crop`` patch at the photo's own resolution. With
    ``scene`` it is a random square of 60-100% of the photo's short side resized to ``scene`` ×
    ``scene``: a whole scene at the scale the network meets at the pyramid top (a 720p frame's is
    320 × 180) and that the eval sets are written at, so recipe sizes given as fractions of the
    image mean the same in training and use. The blend is then cropped to ``crop``.

    Once :attr:`clean_weights` is set (one probability per photo, see :mod:`.mining`), a share
    ``hard_clean`` of the samples are clean views of photos drawn by those weights.
    """

    def __init__(self, paths: list[Path], kind: str, params: SynthesisParams, crop: int, seed: int,
                 scene: int | None = None, hard_clean: float = 0.0) -> None:
        if scene is not None and scene < crop:
            raise ValueError(f"data.scene ({scene}) must be at least data.crop ({crop})")
        if not 0.0 <= hard_clean < 1.0:
            raise ValueError(f"data.hard_clean must be in [0, 1), got {hard_clean}")
        self.images = [load_rgb(p, scene or crop) for p in paths]
        self.kind, self.params, self.crop, self.scene = kind, params, crop, scene
        self.hard_clean = hard_clean
        self.clean_weights: np.ndarray | None = None
        self.rng = np.random.default_rng(seed)

    def _square(self, image: np.ndarray, side: int) -> np.ndarray:
        h, w = image.shape[:2]
        y, x = self.rng.integers(0, h - side + 1), self.rng.integers(0, w - side + 1)
        return image[y : y + side, x : x + side]

    def _view(self, image: np.ndarray) -> np.ndarray:
        if self.scene is None:
            view = self._square(image, self.crop)
        else:
            side = max(self.scene, int(self.rng.uniform(0.6, 1.0) * min(image.shape[:2])))
            view = cv2.resize(self._square(image, side), (self.scene, self.scene), interpolation=cv2.INTER_AREA)
        return view[:, ::-1] if self.rng.random() < 0.5 else view

    def whole_scenes(self, multiple: int = 8) -> Iterator[np.ndarray]:
        """Each photo whole, scaled so its short side is ``scene`` (or ``crop``), sides cut down to
        multiples of ``multiple`` (the network's): the photos as the network meets them, to score."""
        side = self.scene or self.crop
        for image in self.images:
            scale = side / min(image.shape[:2])
            h, w = (round(n * scale) // multiple * multiple for n in image.shape[:2])
            yield cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)

    def sample(self) -> Sample:
        if self.clean_weights is not None and self.rng.random() < self.hard_clean:
            blend = clean_sample(self._view(self.images[self.rng.choice(len(self.images), p=self.clean_weights)]))
        else:
            i, j = self.rng.choice(len(self.images), 2, replace=False)
            blend = synthesize(self.kind, self._view(self.images[i]), self._view(self.images[j]), self.rng, self.params)
        if self.scene is None:
            return blend
        y, x = self.rng.integers(0, self.scene - self.crop + 1, size=2)
        return tuple(part[y : y + self.crop, x : x + self.crop] for part in blend)

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        samples = [self.sample() for _ in range(size)]
        return tuple(torch.from_numpy(np.stack(parts)).permute(0, 3, 1, 2).contiguous() for parts in zip(*samples))
