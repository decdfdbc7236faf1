"""Training data: photos from a folder, split by file-name hash, blended on the fly."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import torch

from ..decode import is_image
from ..synthesis import SynthesisParams, synthesize



def split_photos(folder: Path, val_percent: int) -> tuple[list[Path], list[Path]]:
    """(train, validation) photo paths; a photo is in validation when the first byte of the MD5 of
    its name, mod 100, is below ``val_percent`` — stable whatever else is in the folder."""
    photos = sorted(p for p in Path(folder).rglob("*") if is_image(p))
    if len(photos) < 4:
        raise ValueError(f"need at least 4 photos in {folder}, found {len(photos)}")
    val = [p for p in photos if hashlib.md5(p.name.encode()).digest()[0] % 100 < val_percent]
    return [p for p in photos if p not in val], val


def load_rgb(path: Path, min_side: int) -> np.ndarray:
    """A photo as ``(H, W, 3)`` uint8 RGB, upscaled if its short side is below ``min_side``."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot read image {path}")
    short = min(image.shape[:2])
    if short < min_side:
        image = cv2.resize(image, None, fx=min_side / short, fy=min_side / short, interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


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
